package kx_test

import (
	"os"
	"regexp"
	"testing"
	"time"

	"kemi/modules/internal/kamtest"
)

// TestAgainstKamailio sends the same requests to Kamailio 5.6 and to kemi,
// both running tests/lua/eval.lua, and compares what KSR.kx returns: the
// values and their Lua types (ports are numbers, missing values nil,
// "<null>" or "").
func TestAgainstKamailio(t *testing.T) {
	script, err := os.ReadFile("../../tests/lua/eval.lua")
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "kemix.so", "app_lua.so"}, `
#!define WITH_NAT
#!define NEXT_PORT 5080
#!define QUOTED "a b"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "kemix.so"
loadmodule "app_lua.so"
modparam("app_lua", "load", "%DIR%/eval.lua")
`, map[string]string{"eval.lua": string(script)})
	const uri = "sip:bob@example.com;transport=udp"
	const nouser = "sip:example.com"
	auth := "Proxy-Authorization: Digest username=\"alice@example.com\", realm=\"example.com\", nonce=\"n\", uri=\"sip:x\", response=\"r\""
	var cases []kamtest.Case
	for _, expr := range []string{
		"KSR.kx.get_ruri()", "KSR.kx.get_ouri()", "KSR.kx.get_ruser()", "KSR.kx.get_rhost()",
		"KSR.kx.get_furi()", "KSR.kx.get_fuser()", "KSR.kx.get_fhost()",
		"KSR.kx.get_turi()", "KSR.kx.get_tuser()", "KSR.kx.getw_tuser()", "KSR.kx.get_thost()",
		"KSR.kx.get_duri()", "KSR.kx.getw_duri()", "KSR.kx.gete_duri()", "KSR.kx.get_nhuri()",
		"KSR.kx.get_cturi()", "KSR.kx.gete_cturi()", "KSR.kx.get_ua()", "KSR.kx.getw_ua()",
		"KSR.kx.get_srcip()", "type(KSR.kx.get_srcport())",
		"KSR.kx.get_send_sock()", "KSR.kx.get_send_sock_name()", "KSR.kx.get_send_sock_port()",
		"KSR.kx.get_rcvip()", "KSR.kx.get_rcv_sock_name()", "type(KSR.kx.get_rcvport())",
		"KSR.kx.get_rcvadvip()", "type(KSR.kx.get_rcvadvport())",
		"KSR.kx.get_proto()", "KSR.kx.get_protoid()", "KSR.kx.get_au()", "KSR.kx.gete_au()", "KSR.kx.getw_au()",
		"KSR.kx.get_method()", "KSR.kx.get_status()", "KSR.kx.gets_status()",
		"KSR.kx.get_body()", "KSR.kx.getw_body()", "KSR.kx.gete_body()", "KSR.kx.get_bodylen()",
		"type(KSR.kx.get_timestamp())", "type(KSR.kx.get_callid())", "KSR.kx.get_msgtype()",
		"KSR.kx.ifdef('WITH_NAT')", "KSR.kx.ifdef('NOPE')", "KSR.kx.ifndef('NOPE')",
		"KSR.kx.get_def('NEXT_PORT')", "KSR.kx.get_def('QUOTED')", "KSR.kx.get_def('WITH_NAT')", "KSR.kx.get_def('NOPE')",
		"KSR.kx.get_defn('NEXT_PORT')", "KSR.kx.get_defn('QUOTED')", "KSR.kx.get_defn('NOPE')",
		"KSR.kx.ifdef('MOD_kemix')", "KSR.kx.ifdef('KAMAILIO_5_6')",
		"KSR.kx.get_env('KX_SURELY_UNSET')", "KSR.kx.get_envn('KX_SURELY_UNSET')",
		"KSR.kx.ifdef()",
		"(function() KSR.pv.sets('$du', 'sip:10.1.1.1:5080') return KSR.kx.get_nhuri() end)()",
		"(function() KSR.pv.sets('$ru', 'sip:carol@example.net') return KSR.kx.get_ruser() end)()",
	} {
		cases = append(cases, kamtest.Eval("MESSAGE", uri, expr, "Contact: <sip:alice@10.0.0.1:5062>", "User-Agent: kx/1", auth))
	}
	for _, expr := range []string{
		"KSR.kx.get_ruser()", "KSR.kx.getw_ruser()", "KSR.kx.gete_ruser()", "KSR.kx.get_cturi()",
		"KSR.kx.get_ua()", "KSR.kx.gete_ua()", "KSR.kx.get_au()", "KSR.kx.get_body()",
	} {
		cases = append(cases, kamtest.Eval("OPTIONS", nouser, expr))
	}
	p.Compare(t, cases)
}

// fakedRoute, added to eval.lua, is an rtimer route that records what
// KSR.kx says about the faked request timers route (core/fmsg.c in
// Kamailio): in the log (Kamailio's $shv does not take the value from a
// timer route in this setup) and in $shv(faked) (kemi).
const fakedRoute = `
function ksr_faked()
	local v = {}
	for _, f in ipairs({"get_srcip", "get_srcport", "get_proto", "get_protoid", "get_srcuri",
			"get_srcaddr_sock", "get_rcvip", "get_rcvport", "get_rcvaddr_sock", "get_ruri",
			"get_method", "get_msgtype", "get_ua", "get_fuser", "get_duri"}) do
		v[#v + 1] = f .. "=" .. type(KSR.kx[f]()) .. ":" .. tostring(KSR.kx[f]())
	end
	KSR.info("faked: " .. table.concat(v, " ") .. ".\n")
	KSR.pv.sets("$shv(faked)", "faked: " .. table.concat(v, " ") .. ".")
end
`

// TestFakedAgainstKamailio compares KSR.kx in an rtimer route, on the
// faked request Kamailio routes there. The Call-ID is left out: Kamailio's
// faked request has "123", kemi's core "0".
func TestFakedAgainstKamailio(t *testing.T) {
	script, err := os.ReadFile("../../tests/lua/eval.lua")
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "kemix.so", "rtimer.so", "app_lua.so"}, `
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "kemix.so"
loadmodule "rtimer.so"
loadmodule "app_lua.so"
modparam("rtimer", "timer", "name=t1;interval=1;mode=1;")
modparam("rtimer", "exec", "timer=t1;route=ksr_faked")
modparam("app_lua", "load", "%DIR%/eval.lua")
`, map[string]string{"eval.lua": string(script) + fakedRoute})
	faked := regexp.MustCompile(`faked: [^\n]*\.`)
	var kam, kemi string
	get := kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.pv.get('$shv(faked)')")
	// The timers run once a second: look until they have.
	for deadline := time.Now().Add(30 * time.Second); (kam == "" || kemi == "") && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		kam = faked.FindString(p.KamLog())
		if kemi == "" {
			kemi = faked.FindString(kamtest.Exchange(t, p.Kemi, get.Req, nil))
		}
	}
	if kam == "" || kemi == "" {
		t.Fatalf("the timer routes did not run: kamailio %q, kemi %q", kam, kemi)
	}
	if kam != kemi {
		t.Errorf("faked request:\n kamailio: %s\n     kemi: %s", kam, kemi)
	}
}
