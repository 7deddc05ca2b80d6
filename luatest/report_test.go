package luatest_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/luatest"
)

// lineOf returns the 1-based line of the first line of path containing s.
func lineOf(t *testing.T, path, s string) int {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line containing %q", path, s)
	return 0
}

// TestFailingExampleReport checks the text report of the deliberately
// failing example: a FAIL line per failing test, the assert call's
// file:line, expected and actual values, and the summary.
func TestFailingExampleReport(t *testing.T) {
	t.Chdir("..")
	const file = "tests/examples/failing_test.lua"
	var out bytes.Buffer
	sum, err := luatest.Run(context.Background(), []string{file}, luatest.Options{Out: &out})
	if err != nil {
		t.Fatal(err)
	}
	report := out.String()
	t.Log("\n" + report)
	equalLine := lineOf(t, file, "t.equal(res.code, 202")
	sameLine := lineOf(t, file, "t.same(t.mqueue.items(\"pings\")")
	for _, want := range []string{
		"ok   tests/examples/failing_test.lua: OPTIONS is answered 200 OK\n",
		fmt.Sprintf("FAIL tests/examples/failing_test.lua: MESSAGE is accepted\n"+
			"    tests/examples/failing_test.lua:%d: reply code (t.equal failed)\n"+
			"        expected: 202\n"+
			"        actual:   501\n", equalLine),
		fmt.Sprintf("FAIL tests/examples/failing_test.lua: pings wait in the queue for the report\n"+
			"    tests/examples/failing_test.lua:%d: t.same failed: first difference at [1]\n"+
			"        expected: {{key = \"192.0.2.1\", val = \"\"}}\n"+
			"        actual:   {}\n", sameLine),
		"OPTIONS pings in the last 10s", // the failing test's engine log output
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks:\n%s", want)
		}
	}
	if !strings.HasSuffix(report, "\n1 passed, 2 failed\n") {
		t.Errorf("report does not end with the summary line")
	}
	if sum.Passed != 1 || sum.Failed != 2 || sum.Skipped != 0 {
		t.Errorf("summary %s", sum)
	}
	f := sum.Results[1].Failure
	if f.File != file || f.Line != equalLine || f.Expected != "202" || f.Actual != "501" || !f.HasValues {
		t.Errorf("failure %+v", f)
	}
}

// suiteDir writes a kemi.cfg, its script.lua and the given files into a
// temporary directory and returns it.
func suiteDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	enginetest.Files(t, dir, map[string]string{
		"kemi.cfg": "#!KAMAILIO\nchildren=1\nloadmodule \"sl.so\"\nloadmodule \"mqueue.so\"\nloadmodule \"app_lua.so\"\n" +
			"modparam(\"mqueue\", \"mqueue\", \"name=q\")\nmodparam(\"app_lua\", \"load\", \"script.lua\")\ncfgengine \"lua\"\n",
		"script.lua": "function ksr_request_route()\n\tKSR.info(\"routing \" .. KSR.pv.get(\"$rm\"))\n\tKSR.sl.send_reply(200, \"OK\")\nend\n",
	})
	enginetest.Files(t, dir, files)
	return dir
}

const mixedTest = `local t = require("kemi.test")
t.test("passes", function()
	print("hello from the test")
	t.equal(t.request{}.code, 200)
end)
t.test("fails", function()
	t.equal(t.request{}.reason, "Not OK")
end)
t.describe("group", function()
	t.it("is skipped", function()
		t.skip("not today")
	end)
end)
`

func runIn(t *testing.T, dir string, paths []string, o luatest.Options) (*luatest.Summary, string) {
	t.Helper()
	t.Chdir(dir)
	var out bytes.Buffer
	o.Out = &out
	sum, err := luatest.Run(context.Background(), paths, o)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return sum, out.String()
}

func TestTextReportSkipsAndOutput(t *testing.T) {
	dir := suiteDir(t, map[string]string{"mixed_test.lua": mixedTest})
	sum, out := runIn(t, dir, []string{"mixed_test.lua"}, luatest.Options{})
	want := "ok   mixed_test.lua: passes\n" +
		"FAIL mixed_test.lua: fails\n" +
		"    mixed_test.lua:7: t.equal failed\n" +
		"        expected: \"Not OK\"\n" +
		"        actual:   \"OK\"\n" +
		"    output:\n" +
		"        | level=INFO msg=\"routing OPTIONS\" worker=receiver/0\n" +
		"skip mixed_test.lua: group / is skipped (not today)\n" +
		"1 passed, 1 failed, 1 skipped\n"
	if out != want {
		t.Fatalf("report:\n%s\nwant:\n%s", out, want)
	}
	if sum.Passed != 1 || sum.Failed != 1 || sum.Skipped != 1 {
		t.Fatalf("summary %s", sum)
	}
	// -v shows the output of passing tests too, print lines included.
	_, out = runIn(t, dir, []string{"mixed_test.lua"}, luatest.Options{Verbose: true})
	if !strings.Contains(out, "ok   mixed_test.lua: passes\n    output:\n        | hello from the test\n") {
		t.Fatalf("verbose report lacks the passing test's output:\n%s", out)
	}
}

func TestTAPReport(t *testing.T) {
	dir := suiteDir(t, map[string]string{"mixed_test.lua": mixedTest})
	_, out := runIn(t, dir, []string{"mixed_test.lua"}, luatest.Options{Format: "tap"})
	want := "TAP version 13\n" +
		"ok 1 - mixed_test.lua: passes\n" +
		"not ok 2 - mixed_test.lua: fails\n" +
		"  ---\n" +
		"  message: \"t.equal failed\"\n" +
		"  at: \"mixed_test.lua:7\"\n" +
		"  expected: \"\\\"Not OK\\\"\"\n" +
		"  actual: \"\\\"OK\\\"\"\n" +
		"  output: \"level=INFO msg=\\\"routing OPTIONS\\\" worker=receiver/0\"\n" +
		"  ...\n" +
		"ok 3 - mixed_test.lua: group / is skipped # SKIP not today\n" +
		"1..3\n" +
		"# 1 passed, 1 failed, 1 skipped\n"
	if out != want {
		t.Fatalf("TAP:\n%s\nwant:\n%s", out, want)
	}
}

func TestJUnitReport(t *testing.T) {
	dir := suiteDir(t, map[string]string{"mixed_test.lua": mixedTest, "other_test.lua": `local t = require("kemi.test")
t.test("alone", function() end)
`})
	_, out := runIn(t, dir, []string{"."}, luatest.Options{Format: "junit"})
	if !strings.HasPrefix(out, xml.Header) {
		t.Fatalf("no XML header:\n%s", out)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Skipped  int `xml:"skipped,attr"`
		Suites   []struct {
			Name     string `xml:"name,attr"`
			Tests    int    `xml:"tests,attr"`
			Failures int    `xml:"failures,attr"`
			Cases    []struct {
				Name      string `xml:"name,attr"`
				Classname string `xml:"classname,attr"`
				Failure   *struct {
					Message string `xml:"message,attr"`
					Type    string `xml:"type,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("unmarshal: %v\n%s", err, out)
	}
	if doc.Tests != 4 || doc.Failures != 1 || doc.Skipped != 1 || len(doc.Suites) != 2 {
		t.Fatalf("totals tests=%d failures=%d skipped=%d suites=%d\n%s", doc.Tests, doc.Failures, doc.Skipped, len(doc.Suites), out)
	}
	mixed := doc.Suites[0]
	if mixed.Name != "mixed_test.lua" || mixed.Tests != 3 || mixed.Failures != 1 {
		t.Fatalf("first suite %+v", mixed)
	}
	fail := mixed.Cases[1].Failure
	if fail == nil || fail.Message != "mixed_test.lua:7: t.equal failed" || fail.Type != "assertion" ||
		!strings.Contains(fail.Text, "expected: \"Not OK\"\nactual:   \"OK\"") {
		t.Fatalf("failure %+v", fail)
	}
	if s := mixed.Cases[2].Skipped; s == nil || s.Message != "not today" || mixed.Cases[2].Name != "group / is skipped" {
		t.Fatalf("skipped case %+v", mixed.Cases[2])
	}
}

func TestRunFilter(t *testing.T) {
	dir := suiteDir(t, map[string]string{"mixed_test.lua": mixedTest})
	sum, out := runIn(t, dir, []string{"mixed_test.lua"}, luatest.Options{Run: regexp.MustCompile(`^group / `)})
	if out != "skip mixed_test.lua: group / is skipped (not today)\n0 passed, 0 failed, 1 skipped\n" {
		t.Fatalf("filtered report:\n%s", out)
	}
	if len(sum.Results) != 1 {
		t.Fatalf("results %+v", sum.Results)
	}
}

func TestFileLevelFailures(t *testing.T) {
	dir := suiteDir(t, map[string]string{
		"syntax_test.lua": "local t = require(\"kemi.test\")\nt.test(\"x\", function()\n\tlocal = 1\nend)\n",
		"empty_test.lua":  "local t = require(\"kemi.test\")\n",
		"error_test.lua":  "local t = require(\"kemi.test\")\nt.test(\"x\", function() end)\nerror(\"top level fails\")\n",
		"badcfg_test.lua": "local t = require(\"kemi.test\")\nt.config(\"bad.cfg\")\nt.test(\"x\", function() end)\n",
		"bad.cfg":         "#!KAMAILIO\nchildren=zero\n",
	})
	sum, out := runIn(t, dir, []string{"."}, luatest.Options{})
	t.Log("\n" + out)
	if sum.Failed != 4 || sum.Passed != 0 {
		t.Fatalf("summary %s", sum)
	}
	for _, want := range []string{
		"FAIL badcfg_test.lua: (engine)\n    badcfg_test.lua: ",
		"bad.cfg:2",
		"FAIL empty_test.lua: (file)\n    empty_test.lua: no tests",
		"FAIL error_test.lua: (file)\n    error_test.lua:3: top level fails\n",
		"FAIL syntax_test.lua: (file)\n    syntax_test.lua:3: ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestConfigLookup: without t.config or -f, kemi.cfg is looked for next to
// the test file, then in the current directory; without one the file fails.
func TestConfigLookup(t *testing.T) {
	const test = "local t = require(\"kemi.test\")\nt.test(\"x\", function() t.equal(t.request{}.code, 200) end)\n"
	dir := suiteDir(t, map[string]string{"sub/a_test.lua": test})
	if sum, out := runIn(t, dir, []string{"sub"}, luatest.Options{}); sum.Passed != 1 {
		t.Fatalf("kemi.cfg of the current directory not used:\n%s", out)
	}
	bare := t.TempDir()
	enginetest.Files(t, bare, map[string]string{"a_test.lua": test})
	sum, out := runIn(t, bare, []string{"a_test.lua"}, luatest.Options{})
	if sum.Failed != 1 || !strings.Contains(out, "FAIL a_test.lua: (engine)\n    a_test.lua: no configuration for a_test.lua") {
		t.Fatalf("no configuration:\n%s", out)
	}
	cfg := filepath.Join(dir, "kemi.cfg")
	if sum, out := runIn(t, bare, []string{"a_test.lua"}, luatest.Options{Config: cfg}); sum.Passed != 1 {
		t.Fatalf("-f not used:\n%s", out)
	}
}

func TestLuaErrorInATest(t *testing.T) {
	dir := suiteDir(t, map[string]string{"err_test.lua": `local t = require("kemi.test")
local function helper()
	local x = nil
	return x.field
end
t.test("runtime error", function()
	helper()
end)
t.test("next test still runs", function() end)
`})
	sum, out := runIn(t, dir, []string{"err_test.lua"}, luatest.Options{})
	f := sum.Results[0].Failure
	if f == nil || f.File != "err_test.lua" || f.Line != 4 || !strings.Contains(f.Message, "attempt to index") {
		t.Fatalf("failure %+v", f)
	}
	if !strings.Contains(out, "stack traceback:") || sum.Passed != 1 {
		t.Fatalf("report:\n%s", out)
	}
}

func TestTimeout(t *testing.T) {
	dir := suiteDir(t, map[string]string{"loop_test.lua": `local t = require("kemi.test")
t.test("loops", function()
	while true do end
end)
t.test("after", function() end)
`})
	start := time.Now()
	sum, out := runIn(t, dir, []string{"loop_test.lua"}, luatest.Options{Timeout: 200 * time.Millisecond})
	if sum.Failed != 1 || sum.Passed != 1 || !strings.Contains(out, "timed out after 200ms") {
		t.Fatalf("summary %s, report:\n%s", sum, out)
	}
	if time.Since(start) > 30*time.Second { // a guard, not a measurement: a loop never stopped would hang
		t.Fatal("the timeout did not stop the test")
	}
}

func TestDiscover(t *testing.T) {
	dir := suiteDir(t, map[string]string{
		"b_test.lua":     "",
		"a_test.lua":     "",
		"helper.lua":     "",
		"sub/c_test.lua": "",
	})
	t.Chdir(dir)
	got, err := luatest.Discover([]string{".", "helper.lua", "a_test.lua"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a_test.lua", "b_test.lua", filepath.Join("sub", "c_test.lua"), "helper.lua"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("Discover = %v, want %v", got, want)
	}
	if _, err := luatest.Discover([]string{"missing"}); err == nil {
		t.Fatal("a missing path is an error")
	}
	os.Mkdir("empty", 0o755)
	if _, err := luatest.Discover([]string{"empty"}); err == nil || !strings.Contains(err.Error(), "no *_test.lua") {
		t.Fatalf("empty directory: %v", err)
	}
	if _, err := luatest.Run(context.Background(), []string{"a_test.lua"}, luatest.Options{Format: "xml"}); err == nil {
		t.Fatal("unknown format accepted")
	}
}
