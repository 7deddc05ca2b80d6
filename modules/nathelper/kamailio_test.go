package nathelper_test

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
	"kemi/modules/internal/kamtest"
)

// sideBySideScript runs the KSR.nathelper call named by X-Op (argument
// X-Arg, X-Arg2, X-Arg3) on the request, after setting $du from X-Du,
// then forwards it statelessly to the test's sink (X-Sink) with an
// X-Result header holding the return code, $ru, $du, $avp(RECEIVED), a
// pseudo-variable set by set_alias_to_pv and $rr_count/$rr_top_count:
// the sink sees the rewritten Contact, R-URI and body.
const sideBySideScript = `
function ksr_request_route()
	local op = KSR.hdr.get("X-Op")
	if not op then
		KSR.sl.send_reply(200, "OK")
		return
	end
	local a1, a2, a3 = KSR.hdr.get("X-Arg"), KSR.hdr.get("X-Arg2"), KSR.hdr.get("X-Arg3")
	if KSR.hdr.get("X-Du") then
		KSR.setdsturi(KSR.hdr.get("X-Du"))
	end
	local nh = KSR.nathelper
	local rc
	if op == "nat_uac_test" then rc = nh.nat_uac_test(tonumber(a1))
	elseif op == "fix_nated_contact" then rc = nh.fix_nated_contact()
	elseif op == "fix_nated_contact2" then rc = nh.fix_nated_contact(); rc = tostring(rc) .. "," .. tostring(nh.fix_nated_contact())
	elseif op == "fix_nated_register" then rc = nh.fix_nated_register()
	elseif op == "set_contact_alias" then rc = nh.set_contact_alias()
	elseif op == "set_contact_alias_trim" then rc = nh.set_contact_alias_trim()
	elseif op == "alias_then_fix" then rc = nh.set_contact_alias(); rc = tostring(rc) .. "," .. tostring(nh.fix_nated_contact())
	elseif op == "handle_ruri_alias" then rc = nh.handle_ruri_alias()
	elseif op == "handle_ruri_alias_mode" then rc = nh.handle_ruri_alias_mode(tonumber(a1))
	elseif op == "is_rfc1918" then rc = nh.is_rfc1918(a1)
	elseif op == "add_contact_alias" then rc = nh.add_contact_alias()
	elseif op == "add_contact_alias_addr" then rc = nh.add_contact_alias_addr(a1, a2, a3)
	elseif op == "add_rcv_param" then rc = nh.add_rcv_param(tonumber(a1))
	elseif op == "fix_nated_sdp" then rc = nh.fix_nated_sdp(tonumber(a1))
	elseif op == "fix_nated_sdp_ip" then rc = nh.fix_nated_sdp_ip(tonumber(a1), a2)
	elseif op == "set_alias_to_pv" then rc = nh.set_alias_to_pv("$var(alias)")
	end
	local res = tostring(rc) .. " ru=" .. tostring(KSR.pv.get("$ru")) .. " du=" .. tostring(KSR.pv.get("$du")) ..
		" rcv=" .. tostring(KSR.pv.get("$avp(RECEIVED)")) .. " alias=" .. tostring(KSR.pv.get("$var(alias)")) ..
		" rr=" .. tostring(KSR.pv.get("$rr_count")) .. "/" .. tostring(KSR.pv.get("$rr_top_count"))
	KSR.hdr.append("X-Result: " .. res .. "\r\n")
	KSR.forward_uri(KSR.hdr.get("X-Sink"))
end
`

const sideBySideCfg = `loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "nathelper.so"
loadmodule "app_lua.so"
modparam("nathelper", "received_avp", "$avp(RECEIVED)")
modparam("app_lua", "load", "%DIR%/nathelper.lua")
`

const sdpPrivate = "v=0\r\no=alice 2890844526 2890844526 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n" +
	"m=audio 49170 RTP/AVP 0\r\na=rtcp:49171 IN IP4 10.0.0.5\r\na=rtpmap:0 PCMU/8000\r\n" +
	"m=video 51372 RTP/AVP 31\r\nc=IN IP4 10.0.0.6\r\na=rtcp-mux\r\n"

const sdpPublic = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

const sdpIPv6 = "v=0\r\no=carol 1 1 IN IP6 fd00::5\r\ns=-\r\nc=IN IP6 fd00::5\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n" +
	"m=video 4002 RTP/AVP 31\r\nc=IN IP4 192.168.0.3\r\n"

const sdpStreamOnly = "v=0\r\no=dave 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 172.16.9.9\r\n"

const sdpNull = "v=0\r\no=bob 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

// TestSideBySideWithKamailio runs every KSR.nathelper function on the same
// crafted requests in Kamailio 5.6 and in kemi and compares what each
// forwards: the return codes and variables in X-Result, the Contact, the
// R-URI and the SDP.
func TestSideBySideWithKamailio(t *testing.T) {
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "nathelper.so", "app_lua.so"}, sideBySideCfg,
		map[string]string{"nathelper.lua": sideBySideScript})
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sinkURI := "sip:" + sink.LocalAddr().String()

	type tc struct {
		op      string
		uri     string
		headers []string
		body    string
		via     string // replaces the client's Via sent-by
	}
	op := func(op string, headers ...string) tc { return tc{op: op, headers: headers} }
	sdp := func(c tc, body string) tc { c.body = body; return c }
	ruri := func(c tc, u string) tc { c.uri = u; return c }
	via := func(c tc, v string) tc { c.via = v; return c }
	privC := "Contact: <sip:alice@10.0.0.5:5070;transport=udp>;expires=60"
	pubC := "Contact: <sip:alice@127.0.0.1:%PORT%>"
	cases := []tc{
		// nat_uac_test, each bit alone and the example's 19 and 23
		op("nat_uac_test", "X-Arg: 1", privC),
		op("nat_uac_test", "X-Arg: 1", pubC),
		op("nat_uac_test", "X-Arg: 1"),
		via(op("nat_uac_test", "X-Arg: 2", pubC), "10.0.0.5:%PORT%"),
		op("nat_uac_test", "X-Arg: 2", pubC),
		via(op("nat_uac_test", "X-Arg: 4", pubC), "192.168.1.20:%PORT%"),
		via(op("nat_uac_test", "X-Arg: 4", pubC), "100.64.3.3:%PORT%"),
		via(op("nat_uac_test", "X-Arg: 4", pubC), "192.0.0.77:%PORT%"),
		op("nat_uac_test", "X-Arg: 4", pubC),
		sdp(op("nat_uac_test", "X-Arg: 8", pubC, "Content-Type: application/sdp"), sdpPrivate),
		sdp(op("nat_uac_test", "X-Arg: 8", pubC, "Content-Type: application/sdp"), sdpPublic),
		sdp(op("nat_uac_test", "X-Arg: 8", pubC, "Content-Type: application/sdp"), sdpNull),
		op("nat_uac_test", "X-Arg: 8", pubC),
		via(op("nat_uac_test", "X-Arg: 16", pubC), "127.0.0.1:5999"),
		op("nat_uac_test", "X-Arg: 16", pubC),
		via(op("nat_uac_test", "X-Arg: 16", pubC), "127.0.0.1"),
		op("nat_uac_test", "X-Arg: 32", privC),
		op("nat_uac_test", "X-Arg: 64", privC),
		op("nat_uac_test", "X-Arg: 128", privC),
		op("nat_uac_test", "X-Arg: 128", pubC),
		op("nat_uac_test", "X-Arg: 128", "Contact: <sip:alice@127.0.0.1>"),
		sdp(op("nat_uac_test", "X-Arg: 256", pubC, "Content-Type: application/sdp"), sdpPrivate),
		sdp(op("nat_uac_test", "X-Arg: 256", pubC, "Content-Type: application/sdp"), sdpPublic),
		op("nat_uac_test", "X-Arg: 512", pubC),
		op("nat_uac_test", "X-Arg: 512", pubC, "X-Du: sip:127.0.0.1:5080"),
		op("nat_uac_test", "X-Arg: 512", pubC, "X-Du: sip:10.1.1.1"),
		op("nat_uac_test", "X-Arg: 512", pubC, "X-Du: sip:kemi.test"),
		op("nat_uac_test", "X-Arg: 512", pubC, "X-Du: sip:1.2.3.4;transport=ws"),
		ruri(op("nat_uac_test", "X-Arg: 512", pubC), "sip:bob@kemi.test;transport=ws"),
		op("nat_uac_test", "X-Arg: 19", privC),
		op("nat_uac_test", "X-Arg: 19", pubC),
		via(op("nat_uac_test", "X-Arg: 19", pubC), "10.0.0.9:%PORT%"),
		via(op("nat_uac_test", "X-Arg: 23", pubC), "172.20.0.9:%PORT%"),
		op("nat_uac_test", "X-Arg: 0", privC),
		// Contact rewrites
		op("fix_nated_contact", privC),
		op("fix_nated_contact", "Contact: \"Alice\" <sip:alice@10.0.0.5;maddr=10.0.0.1;lr>;+sip.instance=\"<urn:x>\""),
		op("fix_nated_contact", "Contact: <sip:10.0.0.5:5070>"),
		op("fix_nated_contact"),
		op("fix_nated_contact2", privC),
		op("set_contact_alias", privC),
		op("set_contact_alias", "Contact: <sip:alice@10.0.0.5;ob>;reg-id=1"),
		op("set_contact_alias_trim", "Contact: <sip:alice@10.0.0.5:5070;alias=10.0.0.5~5070~1>"),
		op("set_contact_alias_trim", privC),
		op("set_contact_alias"),
		op("alias_then_fix", privC),
		op("add_contact_alias", privC),
		op("add_contact_alias", pubC),
		op("add_contact_alias", "Contact: <sip:alice@127.0.0.1:%PORT%;transport=udp>"),
		op("add_contact_alias", "Contact: <sip:alice@kemi.test;transport=udp>"),
		op("add_contact_alias"),
		op("add_contact_alias_addr", privC, "X-Arg: 192.0.2.7", "X-Arg2: 5080", "X-Arg3: tcp"),
		op("add_contact_alias_addr", privC, "X-Arg: 192.0.2.7", "X-Arg2: 0", "X-Arg3: tcp"),
		op("add_contact_alias_addr", privC, "X-Arg: nohost", "X-Arg2: 5080", "X-Arg3: tcp"),
		op("add_contact_alias_addr", privC, "X-Arg: 192.0.2.7", "X-Arg2: 5080", "X-Arg3: foo"),
		op("add_contact_alias_addr", "X-Arg: 192.0.2.7", "X-Arg2: 5080", "X-Arg3: udp"),
		op("add_rcv_param", privC, "X-Arg: 0"),
		op("add_rcv_param", privC, "X-Arg: 1"),
		op("add_rcv_param", "X-Arg: 0"),
		op("add_rcv_param", "X-Arg: 0", "Contact: <sip:a@10.0.0.1>;q=0.5, <sip:b@10.0.0.2>", "Contact: <sip:c@10.0.0.3>"),
		op("add_rcv_param", "X-Arg: 1", "Contact: <sip:a@10.0.0.1>;q=0.5, <sip:b@10.0.0.2>", "Contact: <sip:c@10.0.0.3>"),
		op("set_contact_alias", "Contact: sip:alice@10.0.0.5:5070"),
		// (not "Contact: <a>, <b>": Kamailio acts on the last contact of the
		// first header, kemi on the first; docs/nat.md)
		op("fix_nated_register", privC),
		op("set_alias_to_pv", "Contact: <sip:alice@10.0.0.5;alias=192.0.2.1~5090~2>"),
		op("set_alias_to_pv", privC),
		// R-URI aliases
		ruri(op("handle_ruri_alias"), "sip:alice@10.0.0.5:5070;alias=192.0.2.1~5090~1"),
		ruri(op("handle_ruri_alias"), "sip:alice@10.0.0.5;alias=192.0.2.1~5090~2;ob"),
		ruri(op("handle_ruri_alias"), "sip:alice@10.0.0.5;lr;alias=192.0.2.1~5090~3"),
		ruri(op("handle_ruri_alias"), "sip:alice@10.0.0.5;alias=192.0.2.1~5090"),
		ruri(op("handle_ruri_alias"), "sip:alice@10.0.0.5;alias=192.0.2.1~5090~9"),
		ruri(op("handle_ruri_alias"), "sip:alice@10.0.0.5;transport=tcp"),
		ruri(op("handle_ruri_alias"), "sip:alice@10.0.0.5"),
		// one alias each: sipgo keeps one URI parameter per name (docs/nat.md)
		ruri(op("handle_ruri_alias_mode", "X-Arg: 1"), "sip:alice@10.0.0.5;alias=192.0.2.2~5091~2"),
		ruri(op("handle_ruri_alias_mode", "X-Arg: 1"), "sip:alice@10.0.0.5;alias=192.0.2.2~5091~2;transport=tcp"),
		ruri(op("handle_ruri_alias_mode", "X-Arg: 1"), "sip:alice@10.0.0.5;alias=192.0.2.2~5091~2;transport=tcp;foo=barbaz"),
		ruri(op("handle_ruri_alias_mode", "X-Arg: 0"), "sip:alice@10.0.0.5;alias=192.0.2.2~5091~2;transport=tcp"),
		// is_rfc1918
		op("is_rfc1918", "X-Arg: 10.1.2.3"),
		op("is_rfc1918", "X-Arg: 172.31.255.255"),
		op("is_rfc1918", "X-Arg: 172.32.0.1"),
		op("is_rfc1918", "X-Arg: 192.0.0.200"),
		op("is_rfc1918", "X-Arg: 100.127.1.1"),
		op("is_rfc1918", "X-Arg: 8.8.8.8"),
		op("is_rfc1918", "X-Arg: kemi.test"),
		// SDP
		sdp(op("fix_nated_sdp", "X-Arg: 2", "Content-Type: application/sdp"), sdpPrivate),
		sdp(op("fix_nated_sdp", "X-Arg: 3", "Content-Type: application/sdp"), sdpPrivate),
		sdp(op("fix_nated_sdp", "X-Arg: 15", "Content-Type: application/sdp"), sdpPrivate),
		sdp(op("fix_nated_sdp", "X-Arg: 8", "Content-Type: application/sdp"), sdpPrivate),
		sdp(op("fix_nated_sdp", "X-Arg: 4", "Content-Type: application/sdp"), sdpPrivate),
		sdp(op("fix_nated_sdp", "X-Arg: 2", "Content-Type: application/sdp"), sdpPublic),
		sdp(op("fix_nated_sdp", "X-Arg: 2", "Content-Type: application/sdp"), sdpNull),
		sdp(op("fix_nated_sdp", "X-Arg: 10", "Content-Type: application/sdp"), sdpIPv6),
		sdp(op("fix_nated_sdp", "X-Arg: 5", "Content-Type: application/sdp"), sdpIPv6),
		sdp(op("fix_nated_sdp", "X-Arg: 1", "Content-Type: application/sdp"), sdpStreamOnly),
		sdp(op("nat_uac_test", "X-Arg: 8", "Content-Type: application/sdp"), sdpIPv6),
		sdp(op("nat_uac_test", "X-Arg: 8", "Content-Type: application/sdp"), sdpStreamOnly),
		sdp(op("nat_uac_test", "X-Arg: 256", "Content-Type: application/sdp"), sdpStreamOnly),
		sdp(op("nat_uac_test", "X-Arg: 8", "Content-Type: application/SDP; charset=x"), sdpPrivate),
		op("fix_nated_sdp", "X-Arg: 2"),
		sdp(op("fix_nated_sdp", "X-Arg: 2", "Content-Type: text/plain"), "hello\r\n"),
		sdp(op("fix_nated_sdp_ip", "X-Arg: 10", "X-Arg2: 198.51.100.9", "Content-Type: application/sdp"), sdpPrivate),
		sdp(op("fix_nated_sdp_ip", "X-Arg: 2", "X-Arg2: ", "Content-Type: application/sdp"), sdpPrivate),
		// $rr_count and $rr_top_count
		op("is_rfc1918", "X-Arg: 1.1.1.1", "Record-Route: <sip:p1.test;lr;r2=on>, <sip:p1.test;lr;r2=on>", "Record-Route: <sip:p2.test;lr>"),
	}
	for _, c := range cases {
		hdrs := append([]string{"X-Op: " + c.op, "X-Sink: " + sinkURI}, c.headers...)
		r := enginetest.Req{Method: "INVITE", URI: c.uri, Headers: hdrs, Body: c.body}
		if c.uri == "" {
			r.URI = "sip:bob@kemi.test"
		}
		kam := exchange(t, p.Kam, sink, r, c.via)
		kemi := exchange(t, p.Kemi, sink, r, c.via)
		if kam != kemi {
			t.Errorf("%s %q %q %q:\n kamailio: %s\n     kemi: %s", c.op, c.uri, c.via, c.headers, kam, kemi)
		} else {
			t.Logf("%s %q: %s", c.op, c.headers, kemi)
		}
	}
}

var sentByRe = regexp.MustCompile(`(Via: SIP/2.0/UDP )[^;]+`)

// exchange sends r from c (%PORT% in headers is c's port; via replaces
// the Via sent-by) and returns what the sink received for it: the
// request line, X-Result, the Contacts and the body, with c's port
// written CPORT.
func exchange(t *testing.T, c *enginetest.Client, sink net.PacketConn, r enginetest.Req, via string) string {
	t.Helper()
	_, port, _ := net.SplitHostPort(c.LocalAddr())
	r.Headers = append([]string(nil), r.Headers...)
	for i, h := range r.Headers {
		r.Headers[i] = strings.ReplaceAll(h, "%PORT%", port)
	}
	r.CallID = enginetest.RandomID()
	raw := c.Build(r)
	if via != "" {
		raw = sentByRe.ReplaceAllString(raw, "${1}"+strings.ReplaceAll(via, "%PORT%", port))
	}
	c.Send(raw)
	buf := make([]byte, 65535)
	deadline := time.Now().Add(enginetest.Patience)
	for {
		sink.SetReadDeadline(deadline)
		n, _, err := sink.ReadFrom(buf)
		if err != nil {
			t.Fatalf("%q: nothing forwarded: %v", r.Headers, err)
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		req, ok := m.(*sip.Request)
		if !ok || req.CallID() == nil || string(*req.CallID()) != r.CallID {
			continue
		}
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		out := []string{line}
		for _, h := range req.GetHeaders("X-Result") {
			out = append(out, "X-Result: "+h.Value())
		}
		for _, h := range req.GetHeaders("Contact") {
			out = append(out, "Contact: "+h.Value())
		}
		if b := string(req.Body()); b != "" {
			out = append(out, "body: "+strconv.Quote(b))
		}
		s := strings.Join(out, " | ")
		s = strings.ReplaceAll(s, "~"+port+"~", "~CPORT~")
		return strings.ReplaceAll(s, ":"+port, ":CPORT")
	}
}

// replyScript relays an INVITE to X-Sink and, in its t_on_reply route,
// runs nat_uac_test on the reply and set_contact_alias (or
// fix_nated_contact, with X-Fix: flag 1) on a 200, as the upstream example's
// ksr_route_natmanage does for replies.
const replyScript = `
function ksr_request_route()
	if not KSR.is_INVITE() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.setdsturi(KSR.hdr.get("X-Sink"))
	if KSR.hdr.get("X-Fix") then
		KSR.setflag(1)
	end
	KSR.tm.t_on_reply("ksr_onreply_nat")
	KSR.tm.t_relay()
end

function ksr_onreply_nat()
	if KSR.pv.get("$rs") ~= 200 then
		return
	end
	local t = KSR.nathelper.nat_uac_test(1) .. "," .. KSR.nathelper.nat_uac_test(128) .. "," .. KSR.nathelper.nat_uac_test(2) .. "," .. KSR.nathelper.nat_uac_test(512) .. "," .. KSR.nathelper.nat_uac_test(16)
	local rc
	if KSR.isflagset(1) then
		rc = KSR.nathelper.fix_nated_contact()
	else
		rc = KSR.nathelper.set_contact_alias()
	end
	KSR.hdr.append("X-NAT: " .. t .. " " .. rc .. "\r\n")
end
`

// TestRepliesWithKamailio: the NAT functions on a relayed reply (its
// source is the next hop), as the upstream example's reply route uses
// them; the caller receives the rewritten Contact.
func TestRepliesWithKamailio(t *testing.T) {
	cfg := `loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "pv.so"
loadmodule "nathelper.so"
loadmodule "app_lua.so"
modparam("app_lua", "load", "%DIR%/reply.lua")
`
	p := kamtest.Start(t, []string{"sl.so", "tm.so", "pv.so", "nathelper.so", "app_lua.so"}, cfg, map[string]string{"reply.lua": replyScript})
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	for _, c := range []struct {
		fix bool
		via string // the caller's Via sent-by, %PORT% its port
	}{{false, ""}, {true, ""}, {false, "10.0.0.5:%PORT%"}} {
		var extra []string
		if c.fix {
			extra = []string{"X-Fix: yes"}
		}
		kam := relayed(t, p.Kam, sink, extra, c.via)
		kemi := relayed(t, p.Kemi, sink, extra, c.via)
		if kam != kemi {
			t.Errorf("fix %v via %q:\n kamailio: %s\n     kemi: %s", c.fix, c.via, kam, kemi)
		} else {
			t.Logf("fix %v via %q: %s", c.fix, c.via, kemi)
		}
	}
}

// relayed sends an INVITE through the server to sink, answers it there
// with a 200 OK from a private Contact and returns what the caller
// receives: the Contact and X-NAT of the 200.
func relayed(t *testing.T, c *enginetest.Client, sink net.PacketConn, extra []string, via string) string {
	t.Helper()
	r := enginetest.Req{Method: "INVITE", URI: "sip:bob@kemi.test", CallID: enginetest.RandomID(),
		Headers: append([]string{"X-Sink: sip:" + sink.LocalAddr().String(), "Contact: <sip:alice@127.0.0.1>"}, extra...)}
	raw := c.Build(r)
	if via != "" {
		_, port, _ := net.SplitHostPort(c.LocalAddr())
		raw = sentByRe.ReplaceAllString(raw, "${1}"+strings.ReplaceAll(via, "%PORT%", port))
	}
	c.Send(raw)
	buf := make([]byte, 65535)
	sink.SetReadDeadline(time.Now().Add(enginetest.Patience))
	for {
		n, from, err := sink.ReadFrom(buf)
		if err != nil {
			t.Fatalf("nothing relayed: %v", err)
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, "INVITE ") || !strings.Contains(msg, r.CallID) {
			continue
		}
		var b strings.Builder
		b.WriteString("SIP/2.0 200 OK\r\n")
		for _, l := range strings.Split(msg, "\r\n") {
			for _, h := range []string{"Via:", "From:", "Call-ID:", "CSeq:"} {
				if strings.HasPrefix(l, h) {
					b.WriteString(l + "\r\n")
				}
			}
			if strings.HasPrefix(l, "To:") {
				b.WriteString(l + ";tag=sink\r\n")
			}
		}
		b.WriteString("Contact: <sip:bob@10.0.0.9:5080;transport=udp>;expires=30\r\nContent-Length: 0\r\n\r\n")
		sink.WriteTo([]byte(b.String()), from)
		break
	}
	deadline := time.Now().Add(enginetest.Patience)
	for {
		res, err := c.RecvResponse(time.Until(deadline))
		if err != nil {
			t.Fatalf("no 200: %v", err)
		}
		if res.CallID() == nil || string(*res.CallID()) != r.CallID || res.StatusCode != 200 {
			continue
		}
		var out []string
		for _, n := range []string{"Contact", "X-NAT"} {
			for _, h := range res.GetHeaders(n) {
				out = append(out, n+": "+h.Value())
			}
		}
		return strings.Join(out, " | ")
	}
}
