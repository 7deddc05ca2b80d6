package luatest

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"kemi/luavm"
)

// Cover modes, as go test's -covermode: "set" reports whether a line ran,
// "count" how often.
const (
	CoverSet   = "set"
	CoverCount = "count"
)

// CoverReport is the line coverage of the scripts under test (the engine's
// scripts, not the test files) after a run.
type CoverReport struct {
	Mode  string
	Files []luavm.FileCoverage // paths relative to the current directory when they are below it
}

// NewCoverReport collects c's counts; mode "" is CoverSet.
func NewCoverReport(c *luavm.Coverage, mode string) *CoverReport {
	if mode == "" {
		mode = CoverSet
	}
	r := &CoverReport{Mode: mode, Files: c.Files()}
	wd, _ := os.Getwd()
	for i := range r.Files {
		r.Files[i].Path = displayPath(wd, r.Files[i].Path)
	}
	return r
}

func displayPath(wd, p string) string {
	if wd == "" {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, abs); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return p
}

// count is a line's count as the mode reports it.
func (r *CoverReport) count(n int64) int64 {
	if r.Mode == CoverSet && n > 0 {
		return 1
	}
	return n
}

// Total returns the lines run and the lines of every file.
func (r *CoverReport) Total() (hit, total int) {
	for i := range r.Files {
		h, t := r.Files[i].Covered()
		hit += h
		total += t
	}
	return hit, total
}

func percent(hit, total int) float64 {
	if total == 0 {
		return 100
	}
	return 100 * float64(hit) / float64(total)
}

// WriteSummary prints one line per script and the total:
//
//	coverage: 85.0% of 40 lines  scripts/proxy.lua
//	coverage: 82.3% of 96 lines  total
func (r *CoverReport) WriteSummary(w io.Writer) error {
	width := 0
	for _, f := range r.Files {
		width = max(width, len(fmt.Sprint(len(f.Lines))))
	}
	hit, total := r.Total()
	width = max(width, len(fmt.Sprint(total)))
	for i := range r.Files {
		h, t := r.Files[i].Covered()
		if _, err := fmt.Fprintf(w, "coverage: %5.1f%% of %*d lines  %s\n", percent(h, t), width, t, r.Files[i].Path); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "coverage: %5.1f%% of %*d lines  total\n", percent(hit, total), width, total)
	return err
}

// WriteLcov writes the lcov tracefile format (genhtml, Codecov, Coveralls):
// one record per script, a DA line per statement line.
func (r *CoverReport) WriteLcov(w io.Writer) error {
	var b strings.Builder
	b.WriteString("TN:kemi\n")
	for i := range r.Files {
		f := &r.Files[i]
		fmt.Fprintf(&b, "SF:%s\n", f.Path)
		for _, l := range f.Lines {
			fmt.Fprintf(&b, "DA:%d,%d\n", l.Line, r.count(l.Count))
		}
		h, t := f.Covered()
		fmt.Fprintf(&b, "LH:%d\nLF:%d\nend_of_record\n", h, t)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Cobertura's XML, as GitLab, Jenkins and Azure read it.
type cobertura struct {
	XMLName    xml.Name       `xml:"coverage"`
	LineRate   string         `xml:"line-rate,attr"`
	BranchRate string         `xml:"branch-rate,attr"`
	Lines      int            `xml:"lines-valid,attr"`
	Covered    int            `xml:"lines-covered,attr"`
	Version    string         `xml:"version,attr"`
	Timestamp  int64          `xml:"timestamp,attr"`
	Sources    []string       `xml:"sources>source"`
	Packages   []coberturaPkg `xml:"packages>package"`
}

type coberturaPkg struct {
	Name     string           `xml:"name,attr"`
	LineRate string           `xml:"line-rate,attr"`
	Classes  []coberturaClass `xml:"classes>class"`
}

type coberturaClass struct {
	Name     string          `xml:"name,attr"`
	File     string          `xml:"filename,attr"`
	LineRate string          `xml:"line-rate,attr"`
	Methods  struct{}        `xml:"methods"`
	Lines    []coberturaLine `xml:"lines>line"`
}

type coberturaLine struct {
	Number int   `xml:"number,attr"`
	Hits   int64 `xml:"hits,attr"`
}

func rate(hit, total int) string {
	return fmt.Sprintf("%.4f", percent(hit, total)/100)
}

// WriteCobertura writes Cobertura XML: one package, a class per script.
func (r *CoverReport) WriteCobertura(w io.Writer, now time.Time) error {
	hit, total := r.Total()
	wd, _ := os.Getwd()
	doc := cobertura{LineRate: rate(hit, total), BranchRate: "0", Lines: total, Covered: hit, Version: "kemi", Timestamp: now.Unix(), Sources: []string{wd}}
	pkg := coberturaPkg{Name: "scripts", LineRate: doc.LineRate}
	for i := range r.Files {
		f := &r.Files[i]
		h, t := f.Covered()
		c := coberturaClass{Name: strings.TrimSuffix(filepath.Base(f.Path), ".lua"), File: f.Path, LineRate: rate(h, t)}
		for _, l := range f.Lines {
			c.Lines = append(c.Lines, coberturaLine{Number: l.Line, Hits: r.count(l.Count)})
		}
		pkg.Classes = append(pkg.Classes, c)
	}
	doc.Packages = []coberturaPkg{pkg}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteProfile writes the profile to path: Cobertura XML when the name
// ends in .xml, lcov otherwise.
func (r *CoverReport) WriteProfile(path string) error {
	fh, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("coverage profile: %w", err)
	}
	if strings.HasSuffix(strings.ToLower(path), ".xml") {
		err = r.WriteCobertura(fh, time.Now())
	} else {
		err = r.WriteLcov(fh)
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("coverage profile: %w", err)
	}
	return nil
}
