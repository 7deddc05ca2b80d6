// Command pct prints the distribution of a column of numbers: count, min, mean,
// p50, p90, p99, p99.9 and max (nearest-rank percentiles).
//
// Usage:
//
//	pct [-col N] [-sep ';'] [-sub X] [-label L] [-kv] [file ...]
//
// Reads stdin when no file is given. Lines whose selected field is not a number
// (headers, blank lines) are skipped. -sub subtracts X from every value (e.g. the
// nominal async delay from sipp response times). With -kv the output is one
// "key=value" pair per word, otherwise a header line and a row.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	col := flag.Int("col", 1, "1-based field number")
	sep := flag.String("sep", "", "field separator (default: runs of white space)")
	sub := flag.Float64("sub", 0, "value subtracted from every sample")
	label := flag.String("label", "-", "first column of the output row")
	kv := flag.Bool("kv", false, "print key=value pairs instead of a table")
	noHeader := flag.Bool("noheader", false, "do not print the header row")
	flag.Parse()

	var vals []float64
	read := func(r io.Reader) error {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			var f []string
			if *sep == "" {
				f = strings.Fields(sc.Text())
			} else {
				f = strings.Split(sc.Text(), *sep)
			}
			if *col < 1 || *col > len(f) {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(f[*col-1]), 64)
			if err != nil || math.IsNaN(v) {
				continue
			}
			vals = append(vals, v-*sub)
		}
		return sc.Err()
	}
	if flag.NArg() == 0 {
		if err := read(os.Stdin); err != nil {
			fatal(err)
		}
	}
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fatal(err)
		}
		err = read(f)
		f.Close()
		if err != nil {
			fatal(err)
		}
	}

	names := []string{"n", "min", "mean", "p50", "p90", "p99", "p99.9", "max"}
	out := make([]string, len(names))
	out[0] = strconv.Itoa(len(vals))
	if len(vals) == 0 {
		for i := 1; i < len(out); i++ {
			out[i] = "-"
		}
	} else {
		slices.Sort(vals)
		var sum float64
		for _, v := range vals {
			sum += v
		}
		for i, v := range []float64{vals[0], sum / float64(len(vals)), rank(vals, 50), rank(vals, 90), rank(vals, 99), rank(vals, 99.9), vals[len(vals)-1]} {
			out[i+1] = strconv.FormatFloat(v, 'f', 3, 64)
		}
	}
	if *kv {
		for i, n := range names {
			if i > 0 {
				fmt.Print(" ")
			}
			fmt.Printf("%s=%s", n, out[i])
		}
		fmt.Println()
		return
	}
	if !*noHeader {
		fmt.Printf("%-14s", "engine")
		for _, n := range names {
			fmt.Printf(" %10s", n)
		}
		fmt.Println()
	}
	fmt.Printf("%-14s", *label)
	for _, v := range out {
		fmt.Printf(" %10s", v)
	}
	fmt.Println()
}

func rank(sorted []float64, p float64) float64 {
	r := int(math.Ceil(p*float64(len(sorted))/100 - 1e-9))
	r = min(max(r, 1), len(sorted))
	return sorted[r-1]
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "pct:", err)
	os.Exit(2)
}
