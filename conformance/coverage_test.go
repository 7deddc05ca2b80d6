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
// called by a side-by-side case: conformance/testdata/conformance.lua, or a
// module's own comparison with Kamailio (modules/*/kamailio_test.go and the
// Lua under modules/*/testdata).
// A function kemi has and Kamailio 5.6 lacks gets a case when it can (it
// shows as a deliberate difference).
var exemptFromCases = map[string]string{
	// kemi-only: Kamailio has no take/ack (docs/cluster.md)
	"KSR.mqueue.mq_take": "kemi-only extension (take/ack, docs/cluster.md): Kamailio 5.6 has no such function",
	"KSR.mqueue.mq_ack":  "kemi-only extension (take/ack, docs/cluster.md): Kamailio 5.6 has no such function",
	"KSR.mqueue.mq_nack": "kemi-only extension (take/ack, docs/cluster.md): Kamailio 5.6 has no such function",
	"KSR.sworker.task":   "not comparable here: Debian's Kamailio 5.6 packages do not build the sworker module",
	// compared side by side, but the case names them in a loop the scan cannot read
	"KSR.xlog.xnotice": "compared by modules/xlog/kamailio_test.go, which loops over the level names",
	"KSR.xlog.xwarn":   "compared by modules/xlog/kamailio_test.go, which loops over the level names",
	"KSR.xlog.xerr":    "compared by modules/xlog/kamailio_test.go, which loops over the level names",
	"KSR.xlog.xcrit":   "compared by modules/xlog/kamailio_test.go, which loops over the level names",
	"KSR.xlog.xalert":  "compared by modules/xlog/kamailio_test.go, which loops over the level names",
	"KSR.pike.pike_check_req": "pike_check_ip($si) (pike_funcs.c): the same tree and counts, compared through " +
		"pike_check_ip in modules/htable/kamailio_test.go",
	"KSR.xhttp.get_hu": "not compared yet: it needs an HTTP request in the xhttp event route " +
		"(tls_test.go compares xhttp_reply and the WebSocket handshake there)",
}

// luaCall matches a KSR function named in the script: KSR.f or KSR.sub.f.
// A loop that builds the names (KSR["is_" .. m]) lists them in a comment
// above it.
var luaCall = regexp.MustCompile(`KSR(?:\.[A-Za-z_][A-Za-z0-9_]*){1,2}`)

// luaAlias matches a KSR submodule kept in a local: local H = KSR.htable.
var luaAlias = regexp.MustCompile(`local\s+([A-Za-z_][A-Za-z0-9_]*)\s*=\s*KSR\.([A-Za-z_][A-Za-z0-9_]*)\b`)

// TestEveryExportHasACase fails when a function of the export tables (what
// `kemi stubs` declares, engine.Exports) is not called by any conformance
// case and is not exempted above: a new KSR function comes with its
// side-by-side case.
func TestEveryExportHasACase(t *testing.T) {
	tbl, err := engine.Exports()
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join("testdata", "conformance.lua"), "tls_test.go"}
	for _, g := range []string{"../modules/*/kamailio_test.go", "../modules/*/testdata/*.lua"} {
		more, _ := filepath.Glob(g)
		files = append(files, more...)
	}
	called := map[string]bool{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range luaCall.FindAllString(string(src), -1) {
			called[m] = true
		}
		// local H = KSR.htable ... H.sht_inc(...)
		for _, a := range luaAlias.FindAllStringSubmatch(string(src), -1) {
			use := regexp.MustCompile(`\b` + a[1] + `\.([A-Za-z_][A-Za-z0-9_]*)`)
			for _, u := range use.FindAllStringSubmatch(string(src), -1) {
				called["KSR."+a[2]+"."+u[1]] = true
			}
		}
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
		t.Errorf("%s has no side-by-side case: add one to testdata/conformance.lua (or to its module's kamailio_test.go), or exempt it with the reason in exemptFromCases", name)
	}
	for name := range exemptFromCases {
		if called[name] {
			t.Errorf("%s is exempted from cases but a case calls it: remove it from exemptFromCases", name)
		}
	}
}
