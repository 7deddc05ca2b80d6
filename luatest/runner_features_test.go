package luatest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"kemi/luatest"
)

// -list prints the selected names without starting an engine.
func TestList(t *testing.T) {
	dir := suiteDir(t, map[string]string{"mixed_test.lua": mixedTest, "broken_test.lua": "local t = require(\"kemi.test\")\nt.test(\n"})
	sum, out := runIn(t, dir, []string{"mixed_test.lua"}, luatest.Options{List: true})
	want := "mixed_test.lua: passes\nmixed_test.lua: fails\nmixed_test.lua: group / is skipped\n"
	if out != want || sum.Failed != 0 || sum.Passed != 0 {
		t.Fatalf("list:\n%s\nwant:\n%s", out, want)
	}
	_, out = runIn(t, dir, []string{"mixed_test.lua"}, luatest.Options{List: true, Run: regexp.MustCompile("group")})
	if out != "mixed_test.lua: group / is skipped\n" {
		t.Fatalf("list -run group:\n%s", out)
	}
	sum, out = runIn(t, dir, []string{"broken_test.lua"}, luatest.Options{List: true})
	if sum.Failed != 1 || !strings.Contains(out, "FAIL broken_test.lua: (file)") {
		t.Fatalf("list of a broken file: %s\n%s", sum, out)
	}
}

// A -run that selects nothing is an error, listing or running.
func TestRunMatchingNothing(t *testing.T) {
	dir := suiteDir(t, map[string]string{"mixed_test.lua": mixedTest})
	t.Chdir(dir)
	for _, listing := range []bool{false, true} {
		var out bytes.Buffer
		_, err := luatest.Run(context.Background(), []string{"mixed_test.lua"}, luatest.Options{Out: &out, List: listing, Run: regexp.MustCompile("nothing like it")})
		var nm *luatest.NoMatchError
		if !errors.As(err, &nm) || !strings.Contains(err.Error(), `no test matches -run "nothing like it" in 1 test file(s)`) {
			t.Fatalf("list=%v: err %v", listing, err)
		}
	}
}

// -format json: one object per test with real times, then the summary.
func TestJSONReport(t *testing.T) {
	dir := suiteDir(t, map[string]string{"mixed_test.lua": mixedTest})
	sum, out := runIn(t, dir, []string{"mixed_test.lua"}, luatest.Options{Format: "json"})
	if sum.Failed != 1 {
		t.Fatal(sum)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 4 {
		t.Fatalf("want 3 tests and a summary:\n%s", out)
	}
	statuses := []string{"pass", "fail", "skip"}
	for i, st := range statuses {
		if lines[i]["type"] != "test" || lines[i]["status"] != st || lines[i]["file"] != "mixed_test.lua" {
			t.Errorf("line %d: %v", i, lines[i])
		}
	}
	if ms, _ := lines[0]["elapsed_ms"].(float64); ms <= 0 {
		t.Errorf("the passing test has no time: %v", lines[0])
	}
	fl, _ := lines[1]["failure"].(map[string]any)
	if fl["expected"] != `"Not OK"` || fl["actual"] != `"OK"` || fl["line"] != float64(7) {
		t.Errorf("failure: %v", fl)
	}
	if out, _ := lines[0]["output"].([]any); len(out) == 0 {
		t.Errorf("the passing test's output is missing: %v", lines[0])
	}
	if lines[3]["type"] != "summary" || lines[3]["passed"] != float64(1) || lines[3]["failed"] != float64(1) || lines[3]["skipped"] != float64(1) {
		t.Errorf("summary: %v", lines[3])
	}
}

// JUnit times are real (to the microsecond), not 0.000.
func TestJUnitTimes(t *testing.T) {
	dir := suiteDir(t, map[string]string{"mixed_test.lua": mixedTest})
	_, out := runIn(t, dir, []string{"mixed_test.lua"}, luatest.Options{Format: "junit"})
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name string `xml:"name,attr"`
				Time string `xml:"time,attr"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	c := doc.Suites[0].Cases[0]
	if s, err := strconv.ParseFloat(c.Time, 64); err != nil || s <= 0 || !regexp.MustCompile(`^\d+\.\d{6}$`).MatchString(c.Time) {
		t.Fatalf("testcase %q time=%q", c.Name, c.Time)
	}
}

const taggedTest = `local t = require("kemi.test")
t.test("fast one #fast", function() end)
t.describe("store #db", function()
	t.it("writes #slow", function() end)
	t.it("reads", function() end)
end)
t.test("untagged", function() end)
`

// -tags and -exclude-tags select by the "#tag" words of the full name.
func TestTags(t *testing.T) {
	if got := luatest.Tags("store #db / writes #slow"); strings.Join(got, ",") != "db,slow" {
		t.Fatalf("Tags: %v", got)
	}
	dir := suiteDir(t, map[string]string{"tagged_test.lua": taggedTest})
	for _, tc := range []struct {
		tags, exclude []string
		want          string
	}{
		{[]string{"db"}, nil, "store #db / writes #slow,store #db / reads"},
		{[]string{"fast", "#slow"}, nil, "fast one #fast,store #db / writes #slow"},
		{nil, []string{"slow"}, "fast one #fast,store #db / reads,untagged"},
		{[]string{"db"}, []string{"slow"}, "store #db / reads"},
	} {
		sum, _ := runIn(t, dir, []string{"tagged_test.lua"}, luatest.Options{Tags: tc.tags, ExcludeTags: tc.exclude})
		var names []string
		for _, r := range sum.Results {
			names = append(names, r.Name)
		}
		if got := strings.Join(names, ","); got != tc.want {
			t.Errorf("tags %v exclude %v: ran %q, want %q", tc.tags, tc.exclude, got, tc.want)
		}
	}
}

// -shuffle: a seed gives one order, always the same; -failfast stops at
// the first failure.
func TestShuffleAndFailFast(t *testing.T) {
	var src strings.Builder
	src.WriteString("local t = require(\"kemi.test\")\n")
	for i := range 12 {
		src.WriteString("t.test(\"test " + strconv.Itoa(i) + "\", function() end)\n")
	}
	dir := suiteDir(t, map[string]string{"many_test.lua": src.String(), "mixed_test.lua": mixedTest})
	order := func(seed uint64) string {
		sum, _ := runIn(t, dir, []string{"many_test.lua"}, luatest.Options{Shuffle: &seed})
		var names []string
		for _, r := range sum.Results {
			names = append(names, r.Name)
		}
		return strings.Join(names, ",")
	}
	a, b, c := order(1), order(1), order(2)
	if a != b || a == c || strings.Count(a, ",") != 11 {
		t.Fatalf("seed 1: %s\nseed 1 again: %s\nseed 2: %s", a, b, c)
	}
	sum, _ := runIn(t, dir, []string{"mixed_test.lua", "many_test.lua"}, luatest.Options{FailFast: true})
	if sum.Failed != 1 || sum.Passed != 1 || len(sum.Results) != 2 {
		t.Fatalf("-failfast ran %d tests: %s", len(sum.Results), sum)
	}
}

// TAP under -v keeps every test's output, as diagnostics.
func TestTAPVerboseDiagnostics(t *testing.T) {
	dir := suiteDir(t, map[string]string{"mixed_test.lua": mixedTest})
	_, out := runIn(t, dir, []string{"mixed_test.lua"}, luatest.Options{Format: "tap", Verbose: true, Run: regexp.MustCompile("passes")})
	if !strings.Contains(out, "ok 1 - mixed_test.lua: passes\n# hello from the test\n") || !strings.Contains(out, "# level=INFO msg=\"routing OPTIONS\"") {
		t.Fatalf("tap -v:\n%s", out)
	}
}
