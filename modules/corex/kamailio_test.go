package corex_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"kemi/modules/internal/kamtest"
)

// TestAgainstKamailio compares KSR.corex and the core functions of
// ksr/core_more.go (flags, URI setters, force_rport, is_myself with alias=
// and corex's alias_subdomains) with Kamailio 5.6, both running
// tests/lua/eval.lua.
func TestAgainstKamailio(t *testing.T) {
	script, err := os.ReadFile("../../tests/lua/eval.lua")
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "corex.so", "app_lua.so"}, `
alias=example.org
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "corex.so"
loadmodule "app_lua.so"
modparam("corex", "alias_subdomains", "sub.test")
modparam("corex", "alias_subdomains", "udp:ports.test:5070")
modparam("app_lua", "load", "%DIR%/eval.lua")
`, map[string]string{"eval.lua": string(script)})
	file := filepath.Join(t.TempDir(), "data.txt")
	var cases []kamtest.Case
	add := func(method, uri string, exprs []string, headers ...string) {
		for _, x := range exprs {
			cases = append(cases, kamtest.Eval(method, uri, x, headers...))
		}
	}
	add("MESSAGE", "sip:bob@example.com", []string{
		"KSR.corex.has_ruri_user()", "KSR.corex.has_user_agent()", "KSR.corex.is_faked_msg()",
		"KSR.corex.is_socket_name('nope')",
		"(function() local r = KSR.corex.file_write('" + file + "', 'a b') return r .. ':' .. KSR.corex.file_read('" + file + "') end)()",
		"KSR.corex.file_read('/nonexistent/corex')",
		"(function() KSR.setbflag(3) return tostring(KSR.isbflagset(3)) .. tostring(KSR.isbflagset(4)) .. tostring(KSR.resetbflag(3)) .. tostring(KSR.isbflagset(3)) end)()",
		"(function() KSR.setbiflag(1, 2) return tostring(KSR.isbiflagset(1, 2)) .. tostring(KSR.isbiflagset(1, 0)) end)()",
		"KSR.setbflag(40)", "KSR.isbflagset(-1)",
		"(function() KSR.setsflag(5) return tostring(KSR.issflagset(5)) .. tostring(KSR.resetsflag(5)) .. tostring(KSR.issflagset(5)) end)()",
		"KSR.isdsturiset()",
		"(function() local r = KSR.setdsturi('sip:10.0.0.9:5090') return tostring(r) .. tostring(KSR.isdsturiset()) .. KSR.pv.get('$du') end)()",
		"(function() KSR.setdsturi('sip:10.0.0.9') KSR.resetdsturi() return tostring(KSR.isdsturiset()) .. tostring(KSR.pv.get('$du')) end)()",
		"(function() local r = KSR.seturi('sip:carol@example.net:5062') return tostring(r) .. KSR.pv.get('$ru') end)()",
		"(function() local r = tostring(KSR.setuser('dave')) .. tostring(KSR.sethost('example.org')) return r .. KSR.pv.get('$ru') end)()",
		"KSR.set_reply_no_connect()", "KSR.set_reply_close()", "KSR.set_forward_no_connect()", "KSR.set_forward_close()",
		"KSR.add_local_rport()",
		"KSR.is_myself_duri()", "KSR.is_myself_nhuri()",
		"(function() KSR.setdsturi('sip:example.org') return KSR.is_myself_duri() end)()",
		"KSR.is_proto('u')", "KSR.is_proto('te')", "KSR.is_IPv4()", "KSR.is_IPv6()", "KSR.is_TLS()", "KSR.is_WS()", "KSR.is_WSX()", "KSR.is_SCTP()",
	}, "User-Agent: corex/1")
	add("OPTIONS", "sip:example.com", []string{"KSR.corex.has_ruri_user()", "KSR.corex.has_user_agent()"})
	for _, uri := range []string{"sip:a@example.org", "sip:a@EXAMPLE.org:5099", "sip:a@x.sub.test", "sip:a@sub.test",
		"sip:a@xsub.test", "sip:a@ports.test:5070", "sip:a@ports.test:5080", "sip:a@ports.test", "sip:a@a.ports.test:5070", "sip:a@other.com"} {
		add("MESSAGE", uri, []string{"KSR.is_myself_ruri()", "KSR.is_myself_nhuri()", "KSR.is_myself('" + uri + "')"})
	}
	p.Compare(t, cases)

	// force_rport on a Via without rport: the reply's Via gets rport=<the
	// source port>. The ports and branches differ between the two clients,
	// and kemi adds received= even when it is the Via's host (a difference
	// of its reply path for any rport request, docs/sip-toolkit.md "Found
	// on the way"): normalised.
	c := kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.force_rport()")
	norm := regexp.MustCompile(`127\.0\.0\.1:[0-9]+|branch=[^;]+|rport=[0-9]+`)
	noRport := func(s string) string { return strings.Replace(s, ";rport", "", 1) }
	kam := kamtest.Exchange(t, p.Kam, c.Req, noRport, "Via")
	kemi := kamtest.Exchange(t, p.Kemi, c.Req, noRport, "Via")
	if !strings.Contains(kam, "rport="+portOf(kam)) || !strings.Contains(kemi, "rport="+portOf(kemi)) {
		t.Errorf("force_rport: no rport=<source port>:\n kamailio: %s\n     kemi: %s", kam, kemi)
	}
	if k, m := norm.ReplaceAllString(kam, "X"), norm.ReplaceAllString(strings.Replace(kemi, ";received=127.0.0.1", "", 1), "X"); k != m {
		t.Errorf("force_rport:\n kamailio: %s\n     kemi: %s", kam, kemi)
	}
}

// portOf is the port of the first 127.0.0.1:port in s.
func portOf(s string) string {
	m := regexp.MustCompile(`127\.0\.0\.1:([0-9]+)`).FindStringSubmatch(s)
	if m == nil {
		return "?"
	}
	return m[1]
}
