package luatest_test

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"kemi/luatest"
	"kemi/luavm"
)

// coverScript has a branch the tests reach (OPTIONS), one they do not
// (everything else), and a failure route never armed.
const coverScript = `function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.sl.send_reply(405, "Method Not Allowed")
end

function ksr_failure_never()
	KSR.info("never reached")
end
`

const coverTest = `local t = require("kemi.test")
t.test("options", function()
	t.equal(t.request{}.code, 200)
end)
t.test("options again", function()
	t.equal(t.request{}.code, 200)
end)
`

func coverRun(t *testing.T, mode string) (*luatest.CoverReport, string) {
	t.Helper()
	dir := suiteDir(t, map[string]string{"script.lua": coverScript, "cover_test.lua": coverTest})
	c := luavm.NewCoverage()
	sum, out := runIn(t, dir, []string{"cover_test.lua"}, luatest.Options{Cover: c})
	if sum.Failed > 0 || sum.Passed != 2 {
		t.Fatalf("%s\n%s", sum, out)
	}
	return luatest.NewCoverReport(c, mode), dir
}

// The script under test is covered, the test file is not; lines the tests
// never reached are reported with 0.
func TestCoverReport(t *testing.T) {
	rep, _ := coverRun(t, luatest.CoverCount)
	if len(rep.Files) != 1 || rep.Files[0].Path != "script.lua" {
		t.Fatalf("covered files %+v, want script.lua only", rep.Files)
	}
	got := map[int]int64{}
	for _, l := range rep.Files[0].Lines {
		got[l.Line] = l.Count
	}
	// Line 1 and 9 (the definitions) ran in the proof VM and in the worker;
	// the route body twice; line 6 and 10 never.
	if got[2] != 2 || got[3] != 2 || got[4] != 2 || got[6] != 0 || got[10] != 0 || got[1] == 0 || got[9] == 0 {
		t.Fatalf("counts %v", got)
	}
	if _, ok := got[10]; !ok {
		t.Fatal("the failure route's line is missing: unreached lines must show with 0")
	}
	var sum bytes.Buffer
	if err := rep.WriteSummary(&sum); err != nil {
		t.Fatal(err)
	}
	want := "coverage:  71.4% of 7 lines  script.lua\ncoverage:  71.4% of 7 lines  total\n"
	if sum.String() != want {
		t.Fatalf("summary:\n%s\nwant:\n%s", sum.String(), want)
	}
}

// -covermode set reports 0/1, count the number of runs; the lcov file
// loads in genhtml when lcov is installed.
func TestCoverLcov(t *testing.T) {
	for _, mode := range []string{luatest.CoverSet, luatest.CoverCount} {
		t.Run(mode, func(t *testing.T) {
			rep, dir := coverRun(t, mode)
			var b bytes.Buffer
			if err := rep.WriteLcov(&b); err != nil {
				t.Fatal(err)
			}
			lcov := b.String()
			hits := "DA:3,1\n"
			if mode == luatest.CoverCount {
				hits = "DA:3,2\n"
			}
			for _, want := range []string{"TN:kemi\nSF:script.lua\n", hits, "DA:6,0\n", "DA:10,0\n", "LH:5\nLF:7\nend_of_record\n"} {
				if !strings.Contains(lcov, want) {
					t.Errorf("lcov lacks %q:\n%s", want, lcov)
				}
			}
			profile := filepath.Join(dir, "cover.info")
			if err := rep.WriteProfile(profile); err != nil {
				t.Fatal(err)
			}
			genhtml, err := exec.LookPath("genhtml")
			if err != nil {
				t.Skip("genhtml not installed (Debian: apt-get install lcov)")
			}
			html := filepath.Join(dir, "html")
			cmd := exec.Command(genhtml, "-q", "-o", html, profile)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("genhtml: %v\n%s", err, out)
			}
			pages, _ := filepath.Glob(filepath.Join(html, "*", "script.lua.gcov.html"))
			if len(pages) != 1 {
				entries, _ := os.ReadDir(html)
				t.Fatalf("genhtml wrote no page for script.lua (%v)", entries)
			}
			page, err := os.ReadFile(pages[0])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(page), "never reached") {
				t.Fatal("genhtml's page does not show the script's source")
			}
		})
	}
}

// A profile named *.xml is Cobertura.
func TestCoverCobertura(t *testing.T) {
	rep, dir := coverRun(t, luatest.CoverCount)
	profile := filepath.Join(dir, "coverage.xml")
	if err := rep.WriteProfile(profile); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(profile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		LineRate string `xml:"line-rate,attr"`
		Valid    int    `xml:"lines-valid,attr"`
		Covered  int    `xml:"lines-covered,attr"`
		Classes  []struct {
			File  string `xml:"filename,attr"`
			Lines []struct {
				Number int `xml:"number,attr"`
				Hits   int `xml:"hits,attr"`
			} `xml:"lines>line"`
		} `xml:"packages>package>classes>class"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	if doc.Valid != 7 || doc.Covered != 5 || doc.LineRate != "0.7143" || len(doc.Classes) != 1 || doc.Classes[0].File != "script.lua" {
		t.Fatalf("cobertura:\n%s", raw)
	}
	for _, l := range doc.Classes[0].Lines {
		if l.Number == 3 && l.Hits != 2 || l.Number == 10 && l.Hits != 0 {
			t.Fatalf("line %d hits %d\n%s", l.Number, l.Hits, raw)
		}
	}
}
