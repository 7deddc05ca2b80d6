package tm_test

import (
	"os"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
	"kemi/modules/internal/kamtest"
)

// uas answers every request but ACK on a loopback UDP socket with 486,
// copying its X-Br header (written by the branch route) into the reply.
func uas(t *testing.T) string {
	return enginetest.UAS(t, func(req *sip.Request, reply func(*sip.Response)) {
		res := sip.NewResponseFromRequest(req, 486, "Busy Here", nil)
		for _, h := range req.GetHeaders("X-Br") {
			res.AppendHeader(sip.NewHeader("X-Br", h.Value()))
		}
		reply(res)
	})
}

// TestTMXAgainstKamailio relays an INVITE through Kamailio 5.6 and kemi to
// a UAS that answers 486, and compares what KSR.tmx, KSR.tm.t_is_set,
// $T_branch_idx, $T_req(pv) and $T_rpl(pv) say in the request, branch,
// reply and failure routes (tests/lua/tmx.lua).
func TestTMXAgainstKamailio(t *testing.T) {
	script, err := os.ReadFile("../../tests/lua/tmx.lua")
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "tm.so", "tmx.so", "app_lua.so"}, `
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "app_lua.so"
modparam("app_lua", "load", "%DIR%/tmx.lua")
`, map[string]string{"tmx.lua": string(script)})
	relay := "sip:" + uas(t)
	var cases []kamtest.Case
	for _, expr := range []string{
		"KSR.tmx.t_precheck_trans()", "KSR.tmx.t_is_request_route()", "KSR.tmx.t_is_reply_route()",
		"KSR.tmx.t_is_failure_route()", "KSR.tmx.t_is_branch_route()", "KSR.pv.get('$T_branch_idx')",
		"KSR.tm.t_is_set('f')", "KSR.tm.t_is_set('')", "KSR.pv.get('$T_req($ru)')", "KSR.pv.get('$T_rpl($rs)')",
		"(function() KSR.tm.t_on_failure('x') return KSR.tm.t_is_set('failure_route') end)()",
	} {
		cases = append(cases, kamtest.Eval("MESSAGE", "sip:bob@example.com", expr))
	}
	p.Compare(t, cases)
	// The relayed INVITE: only the final reply is compared (Kamailio's 100
	// has its own reason phrase).
	inv := enginetest.Req{Method: "INVITE", URI: "sip:bob@example.com", Headers: []string{"X-Relay: " + relay}}
	final := func(s string) string { return s[strings.LastIndex(s, " ; ")+3:] }
	kam, kemi := final(kamtest.Exchange(t, p.Kam, inv, nil)), final(kamtest.Exchange(t, p.Kemi, inv, nil))
	if kam != kemi {
		t.Errorf("relayed INVITE:\n kamailio: %s\n     kemi: %s", kam, kemi)
	} else {
		t.Logf("relayed INVITE: %s", kemi)
	}
}
