package rtpproxy_test

import (
	"strings"
	"testing"

	"kemi/modules/internal/kamtest"
	"kemi/modules/internal/rtprelay/rtptest"
)

// TestSideBySideWithKamailio drives a call, a late-offer call and a
// rejected call through Kamailio 5.6's rtpproxy module and kemi's, both
// on one cfg and Lua with rtpproxy_manage (flags "co", then the other
// flag sets), against one UDP socket answering as rtpengine's rtpproxy
// protocol does: the commands (U/L/D, their options, payload lists, tags
// and media numbers) and the SDP the UAs receive must be the same.
func TestSideBySideWithKamailio(t *testing.T) {
	for _, manage := range []string{
		`KSR.rtpproxy.rtpproxy_manage("co")`,
		`KSR.rtpproxy.rtpproxy_manage("cor")`,
		`KSR.rtpproxy.rtpproxy_manage0()`,
		`KSR.rtpproxy.rtpproxy_manage_ip("ie", "203.0.113.5")`,
	} {
		t.Run(manage, func(t *testing.T) {
			rec := rtptest.NewRecorder(t, rtptest.RTPProxyAnswer)
			p := kamtest.Start(t, []string{"tm.so", "sl.so", "pv.so", "kemix.so", "rtpproxy.so", "app_lua.so"}, `loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "kemix.so"
loadmodule "rtpproxy.so"
loadmodule "app_lua.so"
modparam("rtpproxy", "rtpproxy_sock", "udp:`+rec.Addr+`")
modparam("app_lua", "load", "%DIR%/script.lua")
`, map[string]string{"script.lua": rtptest.Script(manage)})
			rtptest.SideBySide(t, p, rec, func(c string) bool { return strings.HasPrefix(c, "V") })
		})
	}
}
