package sanity_test

import (
	"os"
	"strings"
	"testing"

	"kemi/modules/internal/kamtest"
)

func evalScript(t *testing.T) map[string]string {
	script, err := os.ReadFile("../../tests/lua/eval.lua")
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"eval.lua": string(script)}
}

const cfg = `
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "sanity.so"
loadmodule "app_lua.so"
modparam("sanity", "proxy_require", "foo, bar")
modparam("app_lua", "load", "%DIR%/eval.lua")
`

var mods = []string{"sl.so", "pv.so", "sanity.so", "app_lua.so"}

// replace returns a Mangle that replaces old by new in the request.
func replace(old, new string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, new, 1) }
}

// sanityCases are requests for sanity_check's checks, each evaluating
// expr (a call of KSR.sanity) so that the replies it sends and its result
// are compared.
func sanityCases(expr string) []kamtest.Case {
	c := func(uri string, mangle func(string) string, hdrs ...string) kamtest.Case {
		k := kamtest.Eval("MESSAGE", uri, expr, hdrs...)
		k.Mangle, k.Show = mangle, []string{"Unsupported"}
		return k
	}
	const uri = "sip:bob@example.com"
	auth := func(v string) string { return "Authorization: Digest " + v }
	return []kamtest.Case{
		c(uri, nil),
		c(uri, nil, "Proxy-Require: foo"),
		c(uri, nil, "Proxy-Require: foo, baz"),
		c(uri, nil, "Proxy-Require: Foo"),
		c(uri, nil, "Expires: 3600"),
		c(uri, nil, "Expires: abc"),
		c(uri, nil, "Expires: 99999999999"),
		c(uri, nil, "Expires: 4294967296"),
		c(uri, nil, "Expires: 4294967297"),
		c(uri, nil, auth(`username="a", realm="r", nonce="n", uri="sip:x", response="r"`)),
		c(uri, nil, auth(`username="a", realm="r", nonce="n", uri="sip:x"`)),
		c(uri, nil, auth(`username="", realm="r", nonce="n", uri="sip:x", response="r"`)),
		c(uri, nil, auth(`username="a", realm="r", nonce="", uri="sip:x", response="r"`)),
		c(uri, nil, auth(`username="a", realm="r", nonce="n", uri="sip:x", response="r", qop=auth`)),
		c(uri, nil, "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
		// Not compared: a From or To with two tags (check_duptags, bit
		// 4096): kemi's SIP parser keeps one tag of a header, so the check
		// cannot see the second (docs/sip-toolkit.md); a request line
		// with SIP/2.1: neither Kamailio's parser nor kemi's lets it reach
		// the script.
		c(uri, replace("To: <sip:bob@example.com>", "To: <sip:bob@example.com>;x=1")),
		c(uri, nil, "Contact: <sip:alice@10.0.0.1>"),
		c(uri, nil, "Contact: *"),
	}
}

// TestAgainstKamailio compares sanity_check, sanity_check_defaults and
// sanity_reply with Kamailio 5.6's: the replies a failed check sends,
// their Unsupported header, the return codes, and that the script goes on
// (eval.lua's own 200 follows) whatever autodrop says.
func TestAgainstKamailio(t *testing.T) {
	p := kamtest.Start(t, mods, cfg, evalScript(t))
	cases := sanityCases("KSR.sanity.sanity_check_defaults()")
	cases = append(cases, sanityCases("KSR.sanity.sanity_check(1511, 7)")...)
	cases = append(cases, sanityCases("KSR.sanity.sanity_check(14335, 15)")...)
	cases = append(cases, kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.sanity.sanity_reply()"))
	p.Compare(t, cases)
}

// TestNoreplyAgainstKamailio: with noreply, a failed check sends nothing
// and sanity_reply sends its reply afterwards (500 when no check failed).
func TestNoreplyAgainstKamailio(t *testing.T) {
	p := kamtest.Start(t, mods, cfg+`modparam("sanity", "noreply", 1)
modparam("sanity", "autodrop", 0)
`, evalScript(t))
	cases := sanityCases("KSR.sanity.sanity_check_defaults() .. ' ' .. KSR.sanity.sanity_reply()")
	cases = append(cases, kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.sanity.sanity_reply()"))
	p.Compare(t, cases)
}
