package luatest

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// reporter writes results as they come and the summary at the end.
type reporter interface {
	begin()
	result(r *Result)
	end(s *Summary) error
}

func newReporter(format string, w io.Writer, verbose bool) (reporter, error) {
	switch format {
	case "", "text":
		return &textReporter{printer: printer{w: w}, verbose: verbose}, nil
	case "tap":
		return &tapReporter{printer: printer{w: w}, verbose: verbose}, nil
	case "junit":
		return &junitReporter{w: w}, nil
	case "json":
		return &jsonReporter{w: w}, nil
	}
	return nil, fmt.Errorf("unknown report format %q (text, tap, junit or json)", format)
}

// textReporter prints one line per test ("ok", "FAIL", "skip", then
// "file: name"), under a failure its location, expected and actual values
// and output, and the summary line last:
//
//	FAIL tests/examples/failing_test.lua: OPTIONS is answered 200
//	    tests/examples/failing_test.lua:9: t.equal failed
//	        expected: 200
//	        actual:   404
//	1 passed, 1 failed
type textReporter struct {
	printer
	verbose bool
}

// printer writes formatted output and keeps the first write error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (t *textReporter) begin() {}

func (t *textReporter) result(r *Result) {
	switch r.Status {
	case Pass:
		t.printf("ok   %s: %s\n", r.File, r.Name)
	case Skip:
		if r.Reason != "" {
			t.printf("skip %s: %s (%s)\n", r.File, r.Name, r.Reason)
		} else {
			t.printf("skip %s: %s\n", r.File, r.Name)
		}
	case Fail:
		t.printf("FAIL %s: %s\n", r.File, r.Name)
		fl := r.Failure
		if w := fl.Where(); w != "" {
			t.printf("    %s: %s\n", w, indent(fl.Message, "    "))
		} else {
			t.printf("    %s\n", indent(fl.Message, "    "))
		}
		if fl.HasValues {
			t.printf("        expected: %s\n", indent(fl.Expected, "                  "))
			t.printf("        actual:   %s\n", indent(fl.Actual, "                  "))
		} else if fl.Traceback != "" || t.verbose {
			if tb := strings.TrimSpace(fl.Traceback); tb != "" {
				t.printf("    %s\n", indent(tb, "    "))
			}
		}
	}
	if len(r.Output) > 0 && (r.Status == Fail || t.verbose) {
		t.printf("    output:\n")
		for _, l := range r.Output {
			t.printf("        | %s\n", l)
		}
	}
}

func (t *textReporter) end(s *Summary) error {
	t.printf("%s\n", s)
	return t.err
}

func indent(s, prefix string) string {
	return strings.ReplaceAll(s, "\n", "\n"+prefix)
}

// tapReporter writes TAP version 13: one "ok N - file: name" line per
// test, a YAML block under failures, "# SKIP" for skipped tests, the plan
// at the end.
type tapReporter struct {
	printer
	n       int
	verbose bool // -v: every test's output as "# " diagnostics
}

func (t *tapReporter) begin() { t.printf("TAP version 13\n") }

func (t *tapReporter) result(r *Result) {
	t.n++
	desc := tapEscape(r.File + ": " + r.Name)
	switch r.Status {
	case Pass:
		t.printf("ok %d - %s\n", t.n, desc)
	case Skip:
		t.printf("ok %d - %s # SKIP %s\n", t.n, desc, tapEscape(r.Reason))
	case Fail:
		t.printf("not ok %d - %s\n", t.n, desc)
		fl := r.Failure
		t.printf("  ---\n")
		t.printf("  message: %s\n", strconv.Quote(fl.Message))
		if w := fl.Where(); w != "" {
			t.printf("  at: %s\n", strconv.Quote(w))
		}
		if fl.HasValues {
			t.printf("  expected: %s\n", strconv.Quote(fl.Expected))
			t.printf("  actual: %s\n", strconv.Quote(fl.Actual))
		}
		if len(r.Output) > 0 {
			t.printf("  output: %s\n", strconv.Quote(strings.Join(r.Output, "\n")))
		}
		t.printf("  ...\n")
	}
	if t.verbose && r.Status != Fail {
		for _, l := range r.Output {
			t.printf("# %s\n", tapEscape(l))
		}
	}
}

func (t *tapReporter) end(s *Summary) error {
	t.printf("1..%d\n# %s\n", t.n, s)
	return t.err
}

// tapEscape keeps a description on one line and away from directives.
func tapEscape(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "#", `\#`)
}

// junitReporter writes JUnit XML at the end: one testsuite per file, one
// testcase per test (classname = the file), failure and skipped elements,
// output in system-out.
type junitReporter struct {
	w      io.Writer
	suites []*junitSuite
}

type junitSuites struct {
	XMLName  xml.Name      `xml:"testsuites"`
	Tests    int           `xml:"tests,attr"`
	Failures int           `xml:"failures,attr"`
	Skipped  int           `xml:"skipped,attr"`
	Time     string        `xml:"time,attr"`
	Suites   []*junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Time     string       `xml:"time,attr"`
	Cases    []*junitCase `xml:"testcase"`
	elapsed  float64
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Skipped   *junitSkipped `xml:"skipped,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

type junitText struct {
	Text string `xml:",cdata"`
}

type junitSkipped struct {
	Message string `xml:"message,attr,omitempty"`
}

func (j *junitReporter) begin() {}

func (j *junitReporter) result(r *Result) {
	var s *junitSuite
	if n := len(j.suites); n > 0 && j.suites[n-1].Name == r.File {
		s = j.suites[n-1]
	} else {
		s = &junitSuite{Name: r.File}
		j.suites = append(j.suites, s)
	}
	c := &junitCase{Name: r.Name, Classname: r.File, Time: seconds(r.Elapsed.Seconds())}
	s.elapsed += r.Elapsed.Seconds()
	s.Tests++
	switch r.Status {
	case Fail:
		s.Failures++
		fl := r.Failure
		msg := fl.Message
		if w := fl.Where(); w != "" {
			msg = w + ": " + msg
		}
		var text strings.Builder
		text.WriteString(msg + "\n")
		if fl.HasValues {
			fmt.Fprintf(&text, "expected: %s\nactual:   %s\n", fl.Expected, fl.Actual)
		}
		if fl.Traceback != "" {
			text.WriteString(fl.Traceback + "\n")
		}
		kind := "error"
		if fl.HasValues || strings.HasPrefix(fl.Message, "t.") || strings.Contains(fl.Message, "(t.") {
			kind = "assertion"
		}
		c.Failure = &junitFailure{Message: msg, Type: kind, Text: text.String()}
	case Skip:
		s.Skipped++
		c.Skipped = &junitSkipped{Message: r.Reason}
	}
	if len(r.Output) > 0 {
		c.SystemOut = &junitText{strings.Join(r.Output, "\n") + "\n"}
	}
	s.Cases = append(s.Cases, c)
}

func (j *junitReporter) end(s *Summary) error {
	doc := junitSuites{Tests: s.Passed + s.Failed + s.Skipped, Failures: s.Failed, Skipped: s.Skipped,
		Time: seconds(s.Elapsed.Seconds()), Suites: j.suites}
	for _, su := range j.suites {
		su.Time = seconds(su.elapsed)
	}
	w := bufio.NewWriter(j.w)
	w.WriteString(xml.Header)
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	w.WriteString("\n")
	return w.Flush()
}

// seconds formats a duration for JUnit's time attributes, to the
// microsecond: most tests take less than a millisecond of real time.
func seconds(s float64) string { return strconv.FormatFloat(s, 'f', 6, 64) }

// jsonReporter writes one JSON object per line: a "test" object per test
// as it finishes, then a "summary" object.
//
//	{"type":"test","file":"tests/lua/a_test.lua","name":"MESSAGE / is queued","status":"pass","elapsed_ms":1.234}
//	{"type":"test",...,"status":"fail","failure":{"file":"...","line":18,"message":"...","expected":"202","actual":"501"},"output":["..."]}
//	{"type":"summary","passed":1,"failed":1,"skipped":0,"elapsed_ms":20.5}
type jsonReporter struct {
	w   io.Writer
	err error
}

type jsonFailure struct {
	File      string  `json:"file,omitempty"`
	Line      int     `json:"line,omitempty"`
	Message   string  `json:"message"`
	Expected  *string `json:"expected,omitempty"`
	Actual    *string `json:"actual,omitempty"`
	Traceback string  `json:"traceback,omitempty"`
}

type jsonTest struct {
	Type      string       `json:"type"`
	File      string       `json:"file"`
	Name      string       `json:"name"`
	Status    string       `json:"status"`
	ElapsedMs float64      `json:"elapsed_ms"`
	Reason    string       `json:"reason,omitempty"`
	Failure   *jsonFailure `json:"failure,omitempty"`
	Output    []string     `json:"output,omitempty"`
}

type jsonSummary struct {
	Type      string  `json:"type"`
	Passed    int     `json:"passed"`
	Failed    int     `json:"failed"`
	Skipped   int     `json:"skipped"`
	ElapsedMs float64 `json:"elapsed_ms"`
}

func (j *jsonReporter) write(v any) {
	if j.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		j.err = err
		return
	}
	_, j.err = j.w.Write(append(b, '\n'))
}

func (j *jsonReporter) begin() {}

func (j *jsonReporter) result(r *Result) {
	status := map[Status]string{Pass: "pass", Fail: "fail", Skip: "skip"}[r.Status]
	t := jsonTest{Type: "test", File: r.File, Name: r.Name, Status: status, ElapsedMs: ms(r.Elapsed), Reason: r.Reason, Output: r.Output}
	if fl := r.Failure; fl != nil {
		t.Failure = &jsonFailure{File: fl.File, Line: fl.Line, Message: fl.Message, Traceback: fl.Traceback}
		if fl.HasValues {
			t.Failure.Expected, t.Failure.Actual = &fl.Expected, &fl.Actual
		}
	}
	j.write(t)
}

func (j *jsonReporter) end(s *Summary) error {
	j.write(jsonSummary{Type: "summary", Passed: s.Passed, Failed: s.Failed, Skipped: s.Skipped, ElapsedMs: ms(s.Elapsed)})
	return j.err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
