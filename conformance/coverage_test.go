package conformance

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"kemi/engine"
)

// exemptFromCases lists the exported functions that have no side-by-side
// case, each with the reason. Everything else engine.Exports() has must be
// called by conformance/testdata/conformance.lua.
// A function kemi has and Kamailio 5.6 lacks still gets a case (it shows as
// a deliberate difference), so the list is empty for now.
var exemptFromCases = map[string]string{}

// luaCall matches a KSR function named in the script: KSR.f or KSR.sub.f.
// A loop that builds the names (KSR["is_" .. m]) lists them in a comment
// above it.
var luaCall = regexp.MustCompile(`KSR(?:\.[A-Za-z_][A-Za-z0-9_]*){1,2}`)

// TestEveryExportHasACase fails when a function of the export tables (what
// `kemi stubs` declares, engine.Exports) is not called by any conformance
// case and is not exempted above: a new KSR function comes with its
// side-by-side case.
func TestEveryExportHasACase(t *testing.T) {
	tbl, err := engine.Exports()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("testdata", "conformance.lua"))
	if err != nil {
		t.Fatal(err)
	}
	called := map[string]bool{}
	for _, m := range luaCall.FindAllString(string(src), -1) {
		called[m] = true
	}
	var missing []string
	for _, sub := range tbl.Submodules() {
		for i := range sub.Funcs {
			name := sub.Fn(&sub.Funcs[i])
			if _, ok := exemptFromCases[name]; ok || called[name] {
				continue
			}
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, name := range missing {
		t.Errorf("%s has no conformance case: add one to testdata/conformance.lua, or exempt it with the reason in exemptFromCases", name)
	}
	for name := range exemptFromCases {
		if called[name] {
			t.Errorf("%s is exempted from cases but a case calls it: remove it from exemptFromCases", name)
		}
	}
}
