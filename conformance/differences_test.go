package conformance

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Every known difference is either deliberate (a kemi improvement, with its
// reason) or a fidelity bug to fix (issue 23). docs/conformance.md has the
// same list with both engines' values.
const (
	deliberate = "deliberate: "
	bug        = "bug, issue 23: "
)

// knownDifferences lists the cases whose results differ between Kamailio
// 5.6 and kemi, case name -> classification and reason. A listed case that
// no longer differs fails the suite, so the list stays true; a difference
// not listed fails it too.
var knownDifferences = map[string]string{
	// KSR core
	"core.is_request":   deliberate + "kemi-only function: Kamailio 5.6 has no KSR.is_request (a script using it does not run on Kamailio)",
	"core.is_reply":     deliberate + "kemi-only function: Kamailio 5.6 has no KSR.is_reply (docs/sworker.md uses it)",
	"core.alert exists": deliberate + "kemi-only function: Kamailio 5.6 has no KSR.alert",

	// KSR.pv
	"pv.get $TV(Sm)": deliberate + "kemi-only: $TV(Sm) does not exist in Kamailio 5.6 (pv_time.c knows s, u, sn, un, Sn, Fn)",
	"pv.sets $ru invalid": deliberate + "kemi refuses an R-URI that does not parse (false, R-URI unchanged); Kamailio " +
		"returns true and the R-URI is gone ($ru nil), so the request can no longer be routed",
	"pv.sets $du invalid": deliberate + "kemi refuses a $du that is not a SIP URI (false); Kamailio stores it and fails " +
		"only when forwarding",
	"pv.sets $var dynamic name": deliberate + "kemi-only: kemi evaluates a pv inside a $var name ($var($var(x))); " +
		"Kamailio 5.6 takes the name literally",

	// KSR.hdr
	"hdr.append is visible": deliberate + "kemi edits the message at once, so KSR.hdr.* and pvs see the change; Kamailio " +
		"adds a lump applied when the message is sent, and its reads still see the received headers (as for " +
		"record_route, docs/relay.md)",
	"hdr.insert is visible": deliberate + "header edits apply at once in kemi, as lumps at send time in Kamailio",
	"hdr.remove is visible": deliberate + "header edits apply at once in kemi, as lumps at send time in Kamailio",
	"hdr.append without CRLF": deliberate + "kemi ends the header line itself; Kamailio inserts the text as it is, " +
		"gluing it to the next line and corrupting the message",
	"hdr.insert without CRLF": deliberate + "kemi ends the header line itself; Kamailio glues the text to the next " +
		"header (here the Via it adds)",
	"hdr.append not a header": deliberate + "kemi refuses text that is not a header line (-1, nothing added); " +
		"Kamailio returns 1 and sends the malformed line",
	"hdr.insert not a header": deliberate + "kemi refuses text that is not a header line; Kamailio sends it",
	"hdr.append_to_reply not a header": deliberate + "kemi refuses text that is not a header line (-1); Kamailio " +
		"returns 1 and puts it in the reply",

	// KSR.sl
	"sl.send_reply code 99":      deliberate + "kemi refuses a status outside 100-699 (-1); Kamailio sends \"099 Too Low\"",
	"sl.send_reply code 700":     deliberate + "kemi refuses a status outside 100-699 (-1); Kamailio sends it",
	"sl.send_reply string code":  deliberate + "a non-numeric code is 0: kemi refuses it (-1), Kamailio sends \"000 Bad Code\"",
	"sl.send_reply empty reason": deliberate + "kemi refuses an empty reason phrase (-1); Kamailio sends \"480 \"",

	// KSR.tm
	"tm.t_relay_to_proto_addr invalid proto": deliberate + "kemi refuses a protocol other than udp/tcp (-1); " +
		"Kamailio relays anyway (over UDP)",

	// KSR.rr
	"rr.record_route_params": deliberate + "kemi separates the parameters with ';'; Kamailio appends the text as it " +
		"is, corrupting the ftag (\"ftag=ftag1234foo=bar\")",

	// KSR.async
	"async.route": deliberate + "get_gname in the resumed function is \"\" in Kamailio (its timer process), " +
		"\"async\" in kemi (docs/async.md)",
	"async.ms_route": deliberate + "get_gname in the resumed function is \"default\" in Kamailio (the core group), " +
		"\"async\" in kemi (docs/async.md)",
	"async.task_group_route unknown group": deliberate + "Kamailio returns 0 for an unknown group and the suspended " +
		"request is never resumed; kemi returns -1",
	"async.task_group_data unknown group": deliberate + "Kamailio returns 1 for an unknown group and drops the " +
		"task; kemi returns -1",
	"async.sleep exists": deliberate + "kemi-only: KSR.async.sleep and ms_sleep (docs/async.md)",
	"sworker.active": deliberate + "not comparable here: Debian's Kamailio 5.6 packages do not build the sworker " +
		"module, so Kamailio has no KSR.sworker",

	// argument rules of the KEMI binding

	// what exists
	"exists.KSR.nosuchmodule": deliberate + "kemi raises \"no such function or module in kemi\" on a KSR member that " +
		"is no Kamailio module's name, so a typo fails at once; Kamailio gives nil (a module that is not loaded is nil in " +
		"both, so `if KSR.dispatcher then` works)",
	"exists.KSR.pv.nosuchfunction": deliberate + "kemi raises on a missing KSR function; Kamailio gives nil",
}

// TestKnownDifferencesDocumented: every known difference is in
// docs/conformance.md, every entry is classified, and the README's
// differences section points to that table.
func TestKnownDifferencesDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "conformance.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "(docs/conformance.md#known-differences)") {
		t.Errorf("README.md's differences section must point to docs/conformance.md#known-differences, the one table")
	}
	var names []string
	for name := range knownDifferences {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		reason := knownDifferences[name]
		if !strings.HasPrefix(reason, deliberate) && !strings.HasPrefix(reason, bug) {
			t.Errorf("%s: %q is neither deliberate nor a bug", name, reason)
		}
		if !strings.Contains(string(doc), "| `"+name+"` |") {
			t.Errorf("case %s is in knownDifferences but not in docs/conformance.md's table", name)
		}
	}
}
