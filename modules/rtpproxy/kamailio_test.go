package rtpproxy_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"kemi/modules/internal/kamtest"
	"kemi/modules/internal/rtprelay/rtptest"
)

// explicit calls the offer, answer and destroy functions by method and
// reply, as a script without rtpproxy_manage does.
const explicit = `
	local rs = KSR.pv.get("$rs")
	local m = KSR.pv.get("$rm")
	if rs == nil then
		if m == "INVITE" then
			KSR.rtpproxy.set_rtpproxy_set(0)
			return KSR.rtpproxy.rtpproxy_offer("co") .. KSR.rtpproxy.set_rtpproxy_set(7)
		elseif m == "ACK" then
			return KSR.rtpproxy.rtpproxy_answer("x")
		elseif m == "BYE" then
			local st = string.gsub(KSR.pv.get("$rtpstat") or "null", "%s", "")
			return KSR.rtpproxy.start_recording() .. st .. KSR.rtpproxy.rtpproxy_destroy("t")
		end
		return 0
	end
	if rs >= 300 then
		return KSR.rtpproxy.rtpproxy_destroy0()
	end
	if m == "INVITE" then
		local st = string.gsub(KSR.pv.get("$rtppstat") or "null", "%s", "")
		return KSR.rtpproxy.rtpproxy_answer("co") .. st
	end
	return 0`

// explicitIP is explicit with the functions taking an address.
const explicitIP = `
	local rs = KSR.pv.get("$rs")
	local m = KSR.pv.get("$rm")
	if rs == nil then
		if m == "INVITE" then
			return KSR.rtpproxy.rtpproxy_offer_ip("c", "192.0.2.44")
		elseif m == "ACK" then
			return KSR.rtpproxy.rtpproxy_answer_ip("cf", "192.0.2.45")
		elseif m == "BYE" then
			return KSR.rtpproxy.rtpproxy_destroy0()
		end
		return 0
	end
	if m == "INVITE" and rs < 300 then
		return KSR.rtpproxy.rtpproxy_answer_ip("", "192.0.2.46")
	end
	return KSR.rtpproxy.rtpproxy_destroy("tb")`

// explicit0 uses the functions without arguments.
const explicit0 = `
	local rs = KSR.pv.get("$rs")
	local m = KSR.pv.get("$rm")
	if rs == nil then
		if m == "INVITE" then
			return KSR.rtpproxy.rtpproxy_offer0()
		elseif m == "ACK" then
			return KSR.rtpproxy.rtpproxy_answer0()
		elseif m == "BYE" then
			return KSR.rtpproxy.rtpproxy_destroy0()
		end
		return 0
	end
	if m == "INVITE" and rs < 300 then
		return KSR.rtpproxy.rtpproxy_answer0()
	end
	return KSR.rtpproxy.rtpproxy_destroy("")`

// TestSideBySideWithKamailio drives a call, a late-offer call and a
// rejected call through Kamailio 5.6's rtpproxy module and kemi's, both
// on one cfg and Lua (rtpproxy_manage with several flag sets, or the
// offer/answer/destroy functions), against one UDP socket answering as
// rtpengine's rtpproxy protocol does: the commands (U/L/D/R, their
// options, payload lists, tags and media numbers) and the SDP the UAs
// receive must be the same.
func TestSideBySideWithKamailio(t *testing.T) {
	v6Answer := func(cmd string) string {
		if strings.HasPrefix(cmd, "U") || strings.HasPrefix(cmd, "L") {
			return "35010 2001:db8::99 6\n"
		}
		return rtptest.RTPProxyAnswer(cmd)
	}
	withCaps := func(cmd string) string {
		if strings.HasPrefix(cmd, "VF") {
			return "1\n" // payload type lists and re-packetization supported
		}
		return rtptest.RTPProxyAnswer(cmd)
	}
	multi := []string{rtptest.MultiOffer, rtptest.MultiAnswer}
	for _, c := range []struct {
		name, manage string
		answer       func(string) string
		bodies       []string
	}{
		{"manage co", `return KSR.rtpproxy.rtpproxy_manage("co")`, rtptest.RTPProxyAnswer, nil},
		{"manage cor", `return KSR.rtpproxy.rtpproxy_manage("cor")`, rtptest.RTPProxyAnswer, nil},
		{"manage via branch", `return KSR.rtpproxy.rtpproxy_manage("co3")`, rtptest.RTPProxyAnswer, nil},
		{"manage0", `return KSR.rtpproxy.rtpproxy_manage0()`, rtptest.RTPProxyAnswer, nil},
		{"manage_ip", `return KSR.rtpproxy.rtpproxy_manage_ip("ie", "203.0.113.5")`, rtptest.RTPProxyAnswer, nil},
		{"manage with capabilities", `return KSR.rtpproxy.rtpproxy_manage("cowz20")`, withCaps, nil},
		{"explicit", explicit, rtptest.RTPProxyAnswer, nil},
		{"explicit ip", explicitIP, withCaps, nil},
		{"explicit without arguments", explicit0, rtptest.RTPProxyAnswer, nil},
		{"several streams co", `return KSR.rtpproxy.rtpproxy_manage("co")`, rtptest.RTPProxyAnswer, multi},
		{"several streams r", `return KSR.rtpproxy.rtpproxy_manage("r")`, withCaps, multi},
		{"several streams x", `return KSR.rtpproxy.rtpproxy_manage("xc")`, rtptest.RTPProxyAnswer, multi},
		{"several streams v6 relay", `return KSR.rtpproxy.rtpproxy_manage("co")`, v6Answer, multi},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := rtptest.NewRecorder(t, c.answer)
			p := kamtest.Start(t, []string{"tm.so", "sl.so", "pv.so", "kemix.so", "rtpproxy.so", "app_lua.so"}, `loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "kemix.so"
loadmodule "rtpproxy.so"
loadmodule "app_lua.so"
modparam("rtpproxy", "rtpproxy_sock", "udp:`+rec.Addr+`")
modparam("app_lua", "load", "%DIR%/script.lua")
`, map[string]string{"script.lua": rtptest.Script(c.manage)})
			rtptest.SideBySide(t, p, rec, func(c string) bool { return strings.HasPrefix(c, "V") }, c.bodies...)
		})
	}
}

// TestRPCSideBySideWithKamailio compares rtpproxy.list and
// rtpproxy.enable on two sets: set 0 with a relay that answers (weight 2)
// and one that does not (disabled at start, tested again after
// rtpproxy_disable_tout), set 1 with the live relay again. (The dead
// relay is not enabled by RPC: each Kamailio process tests it as it
// starts, and may disable it again after the command.)
func TestRPCSideBySideWithKamailio(t *testing.T) {
	rec := rtptest.NewRecorder(t, rtptest.RTPProxyAnswer)
	dead := fmt.Sprintf("udp:127.0.0.1:%d", rtptest.FreePort(t))
	live := "udp:" + rec.Addr
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "rtpproxy.so", "jsonrpcs.so", "app_lua.so"}, `loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "jsonrpcs.so"
loadmodule "rtpproxy.so"
loadmodule "app_lua.so"
modparam("jsonrpcs", "transport", 0)
modparam("rtpproxy", "rtpproxy_sock", "`+live+`=2 `+dead+`")
modparam("rtpproxy", "rtpproxy_sock", "1 == `+live+`")
modparam("rtpproxy", "rtpproxy_retr", 2)
modparam("app_lua", "load", "%DIR%/script.lua")
`, map[string]string{"script.lua": rtptest.RPCScript})
	// Each Kamailio process tests the relays as it starts and may still be
	// at it after the first replies: wait until every child found the
	// live relay of both sets, lest a late test undo an rtpproxy.enable.
	procs := regexp.MustCompile(`processes \(at least\): (\d+)`)
	deadline := time.Now().Add(rtptest.Patience)
	for {
		m := procs.FindStringSubmatch(p.KamLog())
		if m != nil {
			n, _ := strconv.Atoi(m[1])
			if strings.Count(p.KamLog(), "<"+live+"> found, support for it enabled") >= 2*(n-1) {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("kamailio's processes did not all test the relays:\n%s", p.KamLog())
		}
		time.Sleep(10 * time.Millisecond)
	}
	rtptest.RPCSideBySide(t, p.Kam, p.Engine.RPCURL(), []rtptest.RPCCall{
		{Method: "rtpproxy.list", Params: nil},
		{Method: "rtpproxy.enable", Params: []any{live, 0}},
		{Method: "rtpproxy.list", Params: nil},
		{Method: "rtpproxy.enable", Params: []any{"udp:127.0.0.1:1", 1}},
		{Method: "rtpproxy.enable", Params: []any{live}},
		{Method: "rtpproxy.enable", Params: []any{live, 1}},
		{Method: "rtpproxy.list", Params: nil},
	})
}
