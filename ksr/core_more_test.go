package ksr_test

import (
	"testing"
)

func TestCoreMore(t *testing.T) {
	h := newCoreHarness(t)
	h.bind(coreInvite)
	for _, c := range []struct{ expr, want string }{
		{"KSR.isbflagset(1)", "false"},
		{"KSR.setbflag(1)", "true"},
		{"KSR.isbflagset(1)", "true"},
		{"KSR.isbiflagset(1, 0)", "true"},
		{"KSR.isbiflagset(1, 1)", "false"},
		{"KSR.setbiflag(2, 3)", "true"},
		{"KSR.isbiflagset(2, 3)", "false"},
		{"KSR.resetbflag(1)", "true"},
		{"KSR.isbflagset(1)", "false"},
		{"KSR.setbflag(32)", "false"},
		{"KSR.setsflag(4)", "true"},
		{"KSR.issflagset(4)", "true"},
		{"KSR.resetsflag(4)", "true"},
		{"KSR.issflagset(4)", "false"},
		{"KSR.isdsturiset()", "false"},
		{"KSR.setdsturi('sip:10.0.0.9:5090')", "true"},
		{"KSR.isdsturiset()", "true"},
		{"KSR.pv.get('$du')", "sip:10.0.0.9:5090"},
		{"KSR.setdsturi('junk')", "true"},
		{"KSR.pv.get('$du')", "sip:10.0.0.9:5090"},
		{"KSR.is_myself_duri()", "false"},
		{"KSR.resetdsturi()", "true"},
		{"KSR.pv.get('$du')", "nil"},
		{"KSR.seturi('sip:carol@127.0.0.1:5060')", "true"},
		{"KSR.is_myself_nhuri()", "true"},
		{"KSR.setuser('dave')", "true"},
		{"KSR.sethost('example.net')", "true"},
		{"KSR.pv.get('$ru')", "sip:dave@example.net:5060"},
		{"KSR.is_myself_suri()", "false"},
		{"KSR.force_rport()", "true"},
		{"KSR.pv.get('$hdr(Via)')", "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport"},
		{"KSR.set_reply_no_connect()", "true"},
		{"KSR.is_src_port(5062)", "true"},
		{"KSR.is_src_port(5060)", "false"},
		{"KSR.is_IPv4()", "true"},
		{"KSR.is_IPv6()", "false"},
		{"KSR.is_proto('tu')", "false"}, // a fake request has no transport
	} {
		if got := h.eval(c.expr).String(); got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
	if !h.env.Msg.ReplyNoConnect || !h.env.Msg.ForceRport {
		t.Error("marks not recorded")
	}
}
