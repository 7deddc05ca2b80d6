// Command jitter analyses timer tick log lines written by bench/lua/rtimer.lua:
//
//	... jit <tag> <sec>.<fraction> ...
//
// The marker word ("jit", see -prefix) may appear anywhere in a line, so engine log
// prefixes (Kamailio's " 6(9598) INFO: <core> [core/kemi.c:106]: sr_kemi_core_info(): ")
// need no stripping. The timestamp is $TV(Sn): seconds, a dot and a decimal fraction
// (Kamailio prints microseconds zero-padded to 6 digits).
//
// For each tag it prints the tick count, mean interval, p50/p99/max of
// |interval - nominal|, the total drift (last - first - (n-1)*nominal) in ms and as a
// percentage of the elapsed time, and gaps (intervals > 1.5x nominal, with the number
// of ticks they swallowed).
//
// A gap means different things for the two engines: Kamailio never skips a tick, so a
// gap is lateness that every later tick inherits (drift); kemi skips the ticks a late
// run covered and comes back on its grid, so a gap holds whole missed periods. The
// last column, "skipdrift%", is therefore the drift counting each gap as the whole
// number of periods it spans (elapsed - sum(max(1, round(interval/nominal))) *
// nominal): the drift of an engine that skips rather than delays. Without gaps it
// equals drift%.
//
// Usage:
//
//	jitter [-tags t100,t10] [-interval 100ms] [-skip 1] [-label kamailio] [-noheader] [file ...]
//
// Reads stdin when no file is given. A tag's nominal interval is taken from
// "tag=duration" in -tags, else from -interval, else from the digits in the tag
// read as milliseconds (t100 -> 100ms).
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

type tagSpec struct {
	name    string
	nominal time.Duration
}

type result struct {
	tag       string
	nominal   time.Duration
	n         int
	mean      time.Duration
	p50       time.Duration
	p99       time.Duration
	max       time.Duration
	drift     time.Duration
	driftPct  float64
	skipDrift time.Duration // drift counting each gap as its whole periods
	skipPct   float64
	gaps      int
	gapMissed int
	elapsed   time.Duration
}

func main() {
	tags := flag.String("tags", "t100,t10", "comma-separated tags, each optionally tag=duration")
	interval := flag.Duration("interval", 0, "nominal interval for tags without =duration (default: digits of the tag as ms)")
	prefix := flag.String("prefix", "jit", "marker word preceding the tag")
	skip := flag.Int("skip", 0, "ignore the first N ticks of each tag (start-up)")
	label := flag.String("label", "-", "first column of each row (e.g. the engine name)")
	noHeader := flag.Bool("noheader", false, "do not print the header row")
	flag.Parse()

	specs, err := parseTags(*tags, *interval)
	if err != nil {
		fatal(err)
	}
	samples := make(map[string][]int64, len(specs))
	for _, s := range specs {
		samples[s.name] = nil
	}

	var inputs []io.Reader
	if flag.NArg() == 0 {
		inputs = append(inputs, os.Stdin)
	}
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		inputs = append(inputs, f)
	}
	for _, r := range inputs {
		if err := scan(r, *prefix, samples); err != nil {
			fatal(err)
		}
	}

	if !*noHeader {
		fmt.Printf("%-14s %-6s %7s %9s %11s %11s %11s %11s %10s %8s %-12s %s\n",
			"engine", "timer", "ticks", "nominal", "mean", "p50|dev|", "p99|dev|", "max|dev|", "drift", "drift%", "gaps(missed)", "skipdrift%")
	}
	for _, s := range specs {
		ts := samples[s.name]
		if len(ts) > *skip {
			ts = ts[*skip:]
		} else {
			ts = nil
		}
		r, ok := analyse(s, ts)
		if !ok {
			fmt.Printf("%-14s %-6s %7d  (need at least 2 ticks)\n", *label, s.name, len(ts))
			continue
		}
		fmt.Printf("%-14s %-6s %7d %9s %11s %11s %11s %11s %10s %7.3f%% %-12s %.4f%%\n",
			*label, r.tag, r.n, fmtDur(r.nominal), fmtDur(r.mean), fmtDur(r.p50), fmtDur(r.p99), fmtDur(r.max),
			fmtMs(r.drift), r.driftPct, fmt.Sprintf("%d(%d)", r.gaps, r.gapMissed), r.skipPct)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "jitter:", err)
	os.Exit(2)
}

var digits = regexp.MustCompile(`[0-9]+`)

func parseTags(s string, interval time.Duration) ([]tagSpec, error) {
	var specs []tagSpec
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, dur, hasDur := strings.Cut(part, "=")
		spec := tagSpec{name: name, nominal: interval}
		switch {
		case hasDur:
			d, err := time.ParseDuration(dur)
			if err != nil {
				return nil, fmt.Errorf("tag %q: %w", name, err)
			}
			spec.nominal = d
		case interval == 0:
			m := digits.FindString(name)
			if m == "" {
				return nil, fmt.Errorf("tag %q: no interval (use -interval or %s=100ms)", name, name)
			}
			ms, err := strconv.Atoi(m)
			if err != nil {
				return nil, fmt.Errorf("tag %q: %w", name, err)
			}
			spec.nominal = time.Duration(ms) * time.Millisecond
		}
		if spec.nominal <= 0 {
			return nil, fmt.Errorf("tag %q: interval must be positive", name)
		}
		specs = append(specs, spec)
	}
	if len(specs) == 0 {
		return nil, errors.New("no tags")
	}
	return specs, nil
}

// scan collects the timestamps (ns since the epoch) of the wanted tags.
func scan(r io.Reader, prefix string, samples map[string][]int64) error {
	re := regexp.MustCompile(`(?:^|[\s:\]>"'=])` + regexp.QuoteMeta(prefix) + `\s+(\S+)\s+([0-9]+(?:\.[0-9]+)?)`)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		for _, m := range re.FindAllStringSubmatch(sc.Text(), -1) {
			if _, want := samples[m[1]]; !want {
				continue
			}
			ns, err := parseStamp(m[2])
			if err != nil {
				continue
			}
			samples[m[1]] = append(samples[m[1]], ns)
		}
	}
	return sc.Err()
}

// parseStamp parses "sec.fraction" exactly (no float rounding) into nanoseconds.
func parseStamp(s string) (int64, error) {
	secStr, frac, _ := strings.Cut(s, ".")
	sec, err := strconv.ParseInt(secStr, 10, 64)
	if err != nil {
		return 0, err
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	var ns int64
	if frac != "" {
		v, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, err
		}
		ns = v * int64(math.Pow10(9-len(frac)))
	}
	return sec*int64(time.Second) + ns, nil
}

func analyse(s tagSpec, ts []int64) (result, bool) {
	if len(ts) < 2 {
		return result{}, false
	}
	slices.Sort(ts)
	nom := int64(s.nominal)
	devs := make([]int64, 0, len(ts)-1)
	r := result{tag: s.name, nominal: s.nominal, n: len(ts)}
	var periods int64 // intervals, a gap counting as the periods it spans
	for i := 1; i < len(ts); i++ {
		d := ts[i] - ts[i-1]
		dev := d - nom
		if dev < 0 {
			dev = -dev
		}
		devs = append(devs, dev)
		p := int64(1)
		if d*2 > nom*3 {
			r.gaps++
			p = int64(math.Round(float64(d) / float64(nom)))
			r.gapMissed += int(p) - 1
		}
		periods += p
	}
	slices.Sort(devs)
	elapsed := ts[len(ts)-1] - ts[0]
	r.elapsed = time.Duration(elapsed)
	r.mean = time.Duration(elapsed / int64(len(ts)-1))
	r.p50 = time.Duration(pct(devs, 50))
	r.p99 = time.Duration(pct(devs, 99))
	r.max = time.Duration(devs[len(devs)-1])
	r.drift = time.Duration(elapsed - int64(len(ts)-1)*nom)
	r.skipDrift = time.Duration(elapsed - periods*nom)
	if elapsed > 0 {
		r.driftPct = 100 * float64(r.drift) / float64(elapsed)
		r.skipPct = 100 * float64(r.skipDrift) / float64(elapsed)
	}
	return r, true
}

// pct is the nearest-rank percentile of sorted values.
func pct(sorted []int64, p float64) int64 {
	rank := int(math.Ceil(p*float64(len(sorted))/100 - 1e-9))
	rank = max(rank, 1)
	rank = min(rank, len(sorted))
	return sorted[rank-1]
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second || d <= -time.Second:
		return fmt.Sprintf("%.3fs", d.Seconds())
	case d >= time.Millisecond || d <= -time.Millisecond:
		return fmt.Sprintf("%.3fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1fus", float64(d)/1e3)
	}
}

func fmtMs(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/1e6) }
