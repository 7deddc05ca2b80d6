package luatest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"kemi/luavm"
)

// DefaultDir is where `kemi test` looks for test files without arguments.
const DefaultDir = "tests/lua"

// DefaultTimeout bounds one test (and every wait for the engine in it).
const DefaultTimeout = 30 * time.Second

// Options configures a run.
type Options struct {
	// Config is the configuration for test files that do not choose one
	// with t.config; "" looks for kemi.cfg next to each test file, then in
	// the current directory.
	Config string
	// Defines are #!define names for the configuration (kamailio -A).
	Defines map[string]string
	// Run selects the tests whose full name ("describe / it") matches;
	// nil runs every test.
	Run *regexp.Regexp
	// Verbose prints every test's output (print and engine log lines), not
	// only failing tests', and captures the engine's debug lines.
	Verbose bool
	// Format is "text" (default), "tap", "junit" or "json".
	Format string
	// Tags, when not empty, selects the tests carrying one of these tags
	// (busted's: "#name" words in the test's full name, describe blocks
	// included); ExcludeTags leaves out the tests carrying one of those.
	Tags, ExcludeTags []string
	// Shuffle, when set, runs the files and each file's tests in an order
	// drawn from this seed (go test's -shuffle): tests that depend on an
	// earlier test's leftovers show up. The same seed gives the same order.
	Shuffle *uint64
	// FailFast stops the run after the first failing test.
	FailFast bool
	// List prints the selected tests' names ("file: describe / it"), one a
	// line, without running them (no engine starts).
	List bool
	// Timeout bounds each test; 0 is DefaultTimeout.
	Timeout time.Duration
	// Out receives the report; nil is os.Stdout.
	Out io.Writer
	// Cover, when set, instruments the engine's scripts (not the test
	// files) and counts the lines they run (NewCoverReport reads it).
	Cover *luavm.Coverage
}

// Status is the result of one test.
type Status int

const (
	Pass Status = iota
	Fail
	Skip
)

func (s Status) String() string {
	switch s {
	case Pass:
		return "ok"
	case Fail:
		return "FAIL"
	}
	return "skip"
}

// Result is one test's result. A file that cannot run (a syntax error, a
// configuration that does not load) gives one failed Result named "(file)".
type Result struct {
	File    string // the test file, as found
	Name    string // "describe / it", or the t.test name
	Status  Status
	Failure *Failure // set when Status is Fail
	Reason  string   // why it was skipped
	Output  []string // print and engine log lines, in order
	Elapsed time.Duration
}

// Failure says why a test failed: an assertion (with Expected and Actual
// when it compares values) or a Lua error.
type Failure struct {
	File      string // where: the failing assert call, or the error
	Line      int
	Message   string
	Expected  string // formatted Lua values; HasValues says if they are set
	Actual    string
	HasValues bool
	Traceback string
}

// Where is "file:line", or "" when unknown.
func (f *Failure) Where() string {
	if f.File == "" {
		return ""
	}
	if f.Line <= 0 {
		return f.File
	}
	return fmt.Sprintf("%s:%d", f.File, f.Line)
}

// Summary counts the results of a run.
type Summary struct {
	Passed, Failed, Skipped int
	Results                 []Result
	Elapsed                 time.Duration
}

// String is the summary line: "N passed, N failed" and ", N skipped" when
// some were.
func (s *Summary) String() string {
	out := fmt.Sprintf("%d passed, %d failed", s.Passed, s.Failed)
	if s.Skipped > 0 {
		out += fmt.Sprintf(", %d skipped", s.Skipped)
	}
	return out
}

// Run finds the test files under paths (DefaultDir when empty), runs them
// in order and writes the report. The error is for a run that could not
// happen (no test file, a bad option); failing tests are counted in the
// Summary, not returned as an error.
func Run(ctx context.Context, paths []string, o Options) (*Summary, error) {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	rep, err := newReporter(o.Format, o.Out, o.Verbose)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		paths = []string{DefaultDir}
	}
	files, err := Discover(paths)
	if err != nil {
		return nil, err
	}
	var rng *rand.Rand
	if o.Shuffle != nil {
		rng = rand.New(rand.NewPCG(*o.Shuffle, 0x6b656d69))
		rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	}
	if o.List {
		return list(ctx, files, o)
	}
	start := time.Now()
	sum := &Summary{}
	rep.begin()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if o.FailFast && sum.Failed > 0 {
			break
		}
		fr := newFileRun(f, &o)
		fr.rng = rng
		fr.stop = func() bool { return o.FailFast && sum.Failed > 0 }
		fr.run(ctx, func(r Result) {
			switch r.Status {
			case Pass:
				sum.Passed++
			case Fail:
				sum.Failed++
			case Skip:
				sum.Skipped++
			}
			sum.Results = append(sum.Results, r)
			rep.result(&r)
		})
	}
	sum.Elapsed = time.Since(start)
	if err := rep.end(sum); err != nil {
		return sum, fmt.Errorf("write report: %w", err)
	}
	if len(sum.Results) == 0 && (o.Run != nil || len(o.Tags) > 0) {
		return sum, noMatch(&o, len(files))
	}
	return sum, nil
}

// NoMatchError is a -run or -tags that selects no test: a typo in a name
// should not pass as a green run.
type NoMatchError struct {
	Selection string // `-run "x"`, `-tags a,b`, or both
	Files     int
}

func (e *NoMatchError) Error() string {
	return fmt.Sprintf("no test matches %s in %d test file(s): kemi test -list prints the names", e.Selection, e.Files)
}

func noMatch(o *Options, files int) *NoMatchError {
	var sel []string
	if o.Run != nil {
		sel = append(sel, fmt.Sprintf("-run %q", o.Run.String()))
	}
	if len(o.Tags) > 0 {
		sel = append(sel, "-tags "+strings.Join(o.Tags, ","))
	}
	return &NoMatchError{Selection: strings.Join(sel, " "), Files: files}
}

// list prints the names of the selected tests of files; a file that
// cannot load is reported as by a run and counted failed.
func list(ctx context.Context, files []string, o Options) (*Summary, error) {
	sum := &Summary{}
	p := printer{w: o.Out}
	for _, path := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		f := newFileRun(path, &o)
		fl := f.load(ctx)
		f.L.Close()
		if fl != nil {
			sum.Failed++
			r := Result{File: path, Name: "(file)", Status: Fail, Failure: fl}
			sum.Results = append(sum.Results, r)
			tr := textReporter{printer: p}
			tr.result(&r)
			p.err = tr.err
			continue
		}
		for _, tc := range f.tests {
			if name := tc.fullName(); f.selected(name) {
				p.printf("%s: %s\n", path, name)
				sum.Results = append(sum.Results, Result{File: path, Name: name, Status: Skip, Reason: "listed"})
			}
		}
	}
	if p.err != nil {
		return sum, fmt.Errorf("write list: %w", p.err)
	}
	if len(sum.Results) == 0 && (o.Run != nil || len(o.Tags) > 0) {
		return sum, noMatch(&o, len(files))
	}
	return sum, nil
}

// Discover lists the test files named by paths: a file is taken as it is, a
// directory is searched recursively for *_test.lua files. Files come sorted
// within each directory, directories in argument order, without duplicates.
func Discover(paths []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("find tests: %w", err)
		}
		if !st.IsDir() {
			add(filepath.Clean(p))
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(d.Name(), "_test.lua") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("find tests: %w", err)
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("find tests: no *_test.lua file under %s", p)
		}
		slices.Sort(found)
		for _, f := range found {
			add(f)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("find tests: no test file")
	}
	return out, nil
}
