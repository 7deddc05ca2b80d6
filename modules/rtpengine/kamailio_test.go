package rtpengine_test

import (
	"fmt"
	"strings"
	"testing"

	"kemi/modules/internal/kamtest"
	"kemi/modules/internal/rtprelay/rtptest"
)

// explicit calls offer, answer, delete and the other commands by method
// and reply, as a script without rtpengine_manage does.
const explicit = `
	local rs = KSR.pv.get("$rs")
	local m = KSR.pv.get("$rm")
	if rs == nil then
		if m == "INVITE" then
			KSR.rtpengine.set_rtpengine_set(0)
			return KSR.rtpengine.rtpengine_offer("replace-origin ICE=remove RTP/AVPF codec-strip-8 transcode-PCMA direction=internal direction=external label=x") .. KSR.rtpengine.set_rtpengine_set(7)
		elseif m == "ACK" then
			return KSR.rtpengine.rtpengine_answer0()
		elseif m == "BYE" then
			KSR.rtpengine.rtpengine_query_v("j", "$var(q)")
			KSR.rtpengine.rtpengine_query_v("jp", "$avp(q)")
			KSR.hdr.append("X-Manage: " .. KSR.pv.get("$var(q)") .. "\r\n")
			KSR.hdr.append("X-Manage: " .. (KSR.pv.get("$rtpestat") or "null") .. "\r\n")
			KSR.hdr.append("X-Manage: " .. string.gsub(KSR.pv.get("$avp(q)"), "[\r\n\t]", function(c) return string.format("%%%02x", string.byte(c)) end) .. "\r\n")
			return KSR.rtpengine.rtpengine_query0() .. KSR.rtpengine.rtpengine_query("all") ..
				KSR.rtpengine.start_recording() .. KSR.rtpengine.stop_recording() ..
				KSR.rtpengine.block_media0() .. KSR.rtpengine.block_media("directional") ..
				KSR.rtpengine.unblock_media0() .. KSR.rtpengine.unblock_media("") ..
				KSR.rtpengine.silence_media0() .. KSR.rtpengine.silence_media("") ..
				KSR.rtpengine.unsilence_media0() .. KSR.rtpengine.unsilence_media("") ..
				KSR.rtpengine.block_dtmf0() .. KSR.rtpengine.block_dtmf("") ..
				KSR.rtpengine.unblock_dtmf0() .. KSR.rtpengine.unblock_dtmf("") ..
				KSR.rtpengine.play_media("file=/tmp/x.wav") .. KSR.rtpengine.stop_media0() ..
				KSR.rtpengine.stop_media("") .. KSR.rtpengine.rtpengine_delete("delete-delay=0")
		end
		return 0
	end
	if rs >= 300 then
		return KSR.rtpengine.rtpengine_delete0()
	end
	if m == "INVITE" then
		return KSR.rtpengine.rtpengine_answer("trust-address SDES-off rtcp-mux-demux to-tag")
	end
	return 0`

// explicitOffer uses rtpengine_offer0 and force-answer.
const explicitOffer = `
	local rs = KSR.pv.get("$rs")
	local m = KSR.pv.get("$rm")
	if rs == nil and m == "INVITE" then
		return KSR.rtpengine.rtpengine_offer0()
	end
	if rs == nil and m == "ACK" then
		return KSR.rtpengine.rtpengine_answer("force-answer")
	end
	if rs ~= nil and rs < 300 and m == "INVITE" then
		return KSR.rtpengine.rtpengine_offer("force-answer TOS=184 repacketize=20 call-id=other from-tag=ff")
	end
	return KSR.rtpengine.rtpengine_manage0()`

// TestSideBySideWithKamailio drives a call, a late-offer call and a
// rejected call through Kamailio 5.6's rtpengine module and kemi's, both
// on one cfg and Lua, against one UDP socket answering the ng protocol:
// the bencoded commands (byte for byte, cookies aside) and the SDP the
// UAs receive must be the same.
func TestSideBySideWithKamailio(t *testing.T) {
	for _, c := range []struct{ name, manage string }{
		{"manage", `return KSR.rtpengine.rtpengine_manage("replace-origin replace-session-connection")`},
		{"manage SIP-source-address", `return KSR.rtpengine.rtpengine_manage("replace-origin replace-session-connection SIP-source-address")`},
		{"manage0", `return KSR.rtpengine.rtpengine_manage0()`},
		{"manage via-branch auto", `return KSR.rtpengine.rtpengine_manage("via-branch=auto replace-origin")`},
		{"manage via-branch 1 in requests", `return KSR.rtpengine.rtpengine_manage(KSR.pv.get("$rs") == nil and "via-branch=1" or "via-branch=2")`},
		{"explicit", explicit},
		{"explicit offer", explicitOffer},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec := rtptest.NewRecorder(t, rtptest.NGAnswer)
			p := kamtest.Start(t, []string{"tm.so", "sl.so", "pv.so", "kemix.so", "rtpengine.so", "app_lua.so"}, `loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "kemix.so"
loadmodule "rtpengine.so"
loadmodule "app_lua.so"
modparam("rtpengine", "rtpengine_sock", "udp:`+rec.Addr+`")
modparam("app_lua", "load", "%DIR%/script.lua")
`, map[string]string{"script.lua": rtptest.Script(c.manage)})
			rtptest.SideBySide(t, p, rec, func(c string) bool { return strings.Contains(c, "7:command4:ping") })
		})
	}
}

// TestRPCSideBySideWithKamailio compares rtpengine.show, rtpengine.ping
// and rtpengine.enable on set 0 with a relay that answers (weight 2) and
// one that does not, and set 1 with the live relay again.
func TestRPCSideBySideWithKamailio(t *testing.T) {
	rec := rtptest.NewRecorder(t, rtptest.NGAnswer)
	dead := fmt.Sprintf("udp:127.0.0.1:%d", rtptest.FreePort(t))
	live := "udp:" + rec.Addr
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "rtpengine.so", "jsonrpcs.so", "app_lua.so"}, `loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "jsonrpcs.so"
loadmodule "rtpengine.so"
loadmodule "app_lua.so"
modparam("jsonrpcs", "transport", 0)
modparam("rtpengine", "rtpengine_sock", "`+live+`=2 `+dead+`")
modparam("rtpengine", "rtpengine_sock", "1 == `+live+`")
modparam("rtpengine", "rtpengine_retr", 2)
modparam("rtpengine", "rtpengine_tout_ms", 200)
modparam("app_lua", "load", "%DIR%/script.lua")
`, map[string]string{"script.lua": rtptest.RPCScript})
	rtptest.RPCSideBySide(t, p.Kam, p.Engine.RPCURL(), []rtptest.RPCCall{
		{Method: "rtpengine.show", Params: []any{"all"}},
		{Method: "rtpengine.show", Params: []any{live}},
		{Method: "rtpengine.show", Params: []any{"udp:127.0.0.1:1"}},
		{Method: "rtpengine.show", Params: nil},
		{Method: "rtpengine.ping", Params: []any{live}},
		{Method: "rtpengine.ping", Params: []any{"all"}},
		{Method: "rtpengine.enable", Params: []any{dead, 1}},
		{Method: "rtpengine.enable", Params: []any{live, 0}},
		{Method: "rtpengine.show", Params: []any{"all"}},
		{Method: "rtpengine.enable", Params: []any{live, 1}},
		{Method: "rtpengine.enable", Params: []any{live}},
		{Method: "rtpengine.show", Params: []any{"all"}},
	})
}
