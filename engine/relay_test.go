package engine_test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine"
	"kemi/engine/enginetest"
)

// proxyScript is a small stateful proxy: in-dialog requests follow their
// Route headers, initial requests are record-routed (INVITE) and relayed to
// X-Du or the R-URI, with a failure route that retries X-Alt once.
const proxyScript = `
function ksr_request_route()
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.pv.get("$tt") ~= nil then
		if KSR.rr.loose_route() > 0 then
			if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
			return
		end
		if not KSR.is_ACK() then KSR.sl.send_reply(404, "Not here") end
		return
	end
	if KSR.is_INVITE() then KSR.rr.record_route() end
	KSR.setflag(3)
	local du = KSR.hdr.get("X-Du")
	if du then KSR.pv.sets("$du", du) end
	if KSR.hdr.get("X-Mode") == "stateless" then
		if KSR.forward() < 0 then KSR.sl.sl_reply_error() end
		return
	end
	KSR.tm.t_on_failure("ksr_failure")
	KSR.tm.t_on_reply("ksr_onreply")
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end

function ksr_failure()
	KSR.info("failure route status=" .. KSR.tm.t_get_status_code() .. " canceled=" .. KSR.tm.t_is_canceled() .. "\n")
	if KSR.tm.t_is_canceled() > 0 then return end
	local alt = KSR.hdr.get("X-Alt")
	if not alt then return end
	local why = KSR.tm.t_get_status_code()
	if KSR.tm.t_branch_timeout() > 0 then why = why .. " timeout" end
	if KSR.isflagset(3) then why = why .. " flag3" end
	if KSR.tm.t_check_status("5[0-9][0-9]|408") > 0 then why = why .. " matched" end
	KSR.hdr.remove("X-Alt")
	KSR.hdr.append("X-Retry: " .. why .. "\r\n")
	KSR.pv.sets("$du", alt)
	if KSR.tm.t_relay() < 0 then KSR.tm.t_reply(500, "Retry failed") end
end

function ksr_onreply()
	KSR.info("onreply status=" .. KSR.pv.get("$rs") .. " flag3=" .. tostring(KSR.isflagset(3)) .. "\n")
end

function ksr_reply_route()
	KSR.info("core reply status=" .. KSR.pv.get("$rs") .. "\n")
end
`

// uasScript answers every request itself and reports what it received.
const uasScript = `
function ksr_request_route()
	if KSR.is_ACK() then return end
	KSR.hdr.append_to_reply("X-UAS-MF: " .. (KSR.pv.get("$hdr(Max-Forwards)") or "none") .. "\r\n")
	KSR.hdr.append_to_reply("X-UAS-Src: " .. KSR.pv.get("$pr") .. ":" .. KSR.pv.get("$si") .. ":" .. KSR.pv.get("$sp") .. "\r\n")
	KSR.sl.send_reply(200, "OK from UAS")
end
`

// peer is a raw SIP endpoint on UDP: a UAS whose every move the test makes.
type peer struct {
	t  *testing.T
	pc net.PacketConn
	in chan peerMsg
}

type peerMsg struct {
	msg sip.Message
	src net.Addr
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, pc: pc, in: make(chan peerMsg, 64)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, src, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
			if err != nil {
				t.Errorf("peer: unparsable message: %v\n%s", err, buf[:n])
				continue
			}
			p.in <- peerMsg{m, src}
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	return p
}

func (p *peer) uri() string { return "sip:bob@" + p.pc.LocalAddr().String() }

// request waits for a request of method (other messages are skipped).
func (p *peer) request(method string, timeout time.Duration) (*sip.Request, net.Addr) {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-p.in:
			if r, ok := m.msg.(*sip.Request); ok && string(r.Method) == method {
				return r, m.src
			}
		case <-deadline:
			p.t.Fatalf("peer %s: no %s within %v", p.pc.LocalAddr(), method, timeout)
		}
	}
}

// quiet checks that no request of method arrives within d.
func (p *peer) quiet(method string, d time.Duration) {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-p.in:
			if r, ok := m.msg.(*sip.Request); ok && string(r.Method) == method {
				p.t.Fatalf("peer %s: unexpected %s:\n%s", p.pc.LocalAddr(), method, r)
			}
		case <-deadline:
			return
		}
	}
}

// reply answers req (to its source) with code; toTag is added to To for
// codes above 100; extra are full header lines.
func (p *peer) reply(req *sip.Request, src net.Addr, code int, reason, toTag string, extra ...string) {
	p.t.Helper()
	if _, err := p.pc.WriteTo([]byte(rawReply(req, code, reason, toTag, extra...)), src); err != nil {
		p.t.Fatal(err)
	}
}

func rawReply(req *sip.Request, code int, reason, toTag string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, h := range req.GetHeaders("Via") {
		b.WriteString("Via: " + h.Value() + "\r\n")
	}
	if code >= 180 && code < 300 {
		for _, h := range req.GetHeaders("Record-Route") {
			b.WriteString("Record-Route: " + h.Value() + "\r\n")
		}
	}
	b.WriteString("From: " + req.From().Value() + "\r\n")
	to := req.To().Value()
	if code > 100 && !req.To().Params.Has("tag") && toTag != "" {
		to += ";tag=" + toTag
	}
	b.WriteString("To: " + to + "\r\n")
	b.WriteString("Call-ID: " + req.CallID().Value() + "\r\n")
	b.WriteString("CSeq: " + req.CSeq().Value() + "\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// dialogReq builds an in-dialog request (ACK, BYE) of the client.
func dialogReq(c *enginetest.Client, method, ruri, from, to, callID string, cseq int, routes []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n", strings.ToUpper(c.Proto), c.LocalAddr(), enginetest.RandomID())
	for _, r := range routes {
		b.WriteString("Route: " + r + "\r\n")
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", from, to, callID, cseq, method)
	return b.String()
}

// proxyConfig is a relaying kemi. fr_timer is 2 s: long enough that a test peer's reply
// never races it on a busy machine (the peer must answer a relayed request within fr_timer),
// short enough for the tests that wait for it to expire.
func proxyConfig(extra ...string) string {
	return enginetest.Config(append([]string{`loadmodule "rr.so"`, `modparam("tm", "fr_timer", 2000)`}, extra...)...)
}

// relayHdr is the value of the first header name of m, "" when absent.
func relayHdr(m interface{ GetHeader(string) sip.Header }, name string) string {
	if h := m.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// TestRelayToKemiUAS relays OPTIONS and MESSAGE through one kemi to
// another that answers: the reply comes back with the proxy's Via removed,
// and the request left from the proxy's listening socket with Max-Forwards
// untouched (tm never changes it; maxfwd does), over UDP and TCP on either side.
func TestRelayToKemiUAS(t *testing.T) {
	uas := enginetest.Start(t, enginetest.Config(), map[string]string{"script.lua": uasScript})
	proxy := enginetest.Start(t, proxyConfig(), map[string]string{"script.lua": proxyScript})
	for _, tc := range []struct{ in, out string }{{"udp", "udp"}, {"tcp", "udp"}, {"udp", "tcp"}, {"tcp", "tcp"}} {
		t.Run(tc.in+"-"+tc.out, func(t *testing.T) {
			c := enginetest.Dial(t, tc.in, proxy.Addr(tc.in))
			for _, method := range []string{"OPTIONS", "MESSAGE"} {
				du := "X-Du: sip:" + uas.Addr(tc.out) + ";transport=" + tc.out
				res := c.Do(enginetest.Req{Method: method, URI: "sip:bob@example.com", Headers: []string{du}}, enginetest.Patience)
				if res.StatusCode != 200 || res.Reason != "OK from UAS" {
					t.Fatalf("%s: got %d %s", method, res.StatusCode, res.Reason)
				}
				if vias := res.GetHeaders("Via"); len(vias) != 1 || !strings.Contains(vias[0].Value(), c.LocalAddr()) {
					t.Fatalf("%s: reply Vias %v, want only the client's", method, vias)
				}
				if mf := relayHdr(res, "X-UAS-MF"); mf != "70" {
					t.Fatalf("%s: Max-Forwards at the UAS %q, want 70", method, mf)
				}
				if src := relayHdr(res, "X-UAS-Src"); src != tc.out+":"+proxy.Addr(tc.out) && !(tc.out == "tcp" && strings.HasPrefix(src, "tcp:127.0.0.1:")) {
					t.Fatalf("%s: the UAS got it from %q, want the proxy's listener %s", method, src, proxy.Addr(tc.out))
				}
			}
		})
	}
	if !proxy.Log.WaitFor("onreply status=200 flag3=true", enginetest.Patience) || !proxy.Log.Contains("core reply status=200") {
		t.Fatalf("reply routes did not run:\n%s", proxy.Log)
	}
}

// TestRelayInviteDialog runs INVITE/100/180/200/ACK/BYE/200 through the
// proxy to a raw UAS: Record-Route on the INVITE, loose routing of ACK and
// BYE to the UAS's Contact.
func TestRelayInviteDialog(t *testing.T) {
	proxy := enginetest.Start(t, proxyConfig(), map[string]string{"script.lua": proxyScript})
	uas := newPeer(t)
	c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
	callID := enginetest.RandomID()
	raw := c.Build(enginetest.Req{Method: "INVITE", URI: uas.uri(), CallID: callID})
	c.Send(raw)

	inv, src := uas.request("INVITE", enginetest.Patience)
	if src.String() != proxy.Addr("udp") {
		t.Fatalf("INVITE came from %s, want the proxy's listener %s", src, proxy.Addr("udp"))
	}
	if n := len(inv.GetHeaders("Via")); n != 2 {
		t.Fatalf("INVITE at the UAS has %d Vias, want 2:\n%s", n, inv)
	}
	rr := relayHdr(inv, "Record-Route")
	if !strings.Contains(rr, proxy.Addr("udp")) || !strings.Contains(rr, ";lr") || !strings.Contains(rr, "ftag=") {
		t.Fatalf("Record-Route %q lacks the proxy address, lr or ftag", rr)
	}
	if mf := inv.MaxForwards(); mf == nil || mf.Val() != 70 {
		t.Fatalf("Max-Forwards %v, want 70", mf)
	}
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 100 {
		t.Fatalf("want 100 Trying from the proxy first, got %v %v", res, err)
	}
	contact := "<sip:uas@" + uas.pc.LocalAddr().String() + ">"
	uas.reply(inv, src, 180, "Ringing", "uastag")
	uas.reply(inv, src, 200, "OK", "uastag", "Contact: "+contact)
	var ok *sip.Response
	for ok == nil {
		res, err := c.RecvResponse(enginetest.Patience)
		if err != nil {
			t.Fatalf("waiting for 180/200: %v", err)
		}
		if len(res.GetHeaders("Via")) != 1 {
			t.Fatalf("%d reply with %d Vias", res.StatusCode, len(res.GetHeaders("Via")))
		}
		if res.StatusCode == 200 {
			ok = res
		}
	}
	routes := []string{}
	for _, h := range ok.GetHeaders("Record-Route") {
		routes = append(routes, h.Value())
	}
	if len(routes) != 1 {
		t.Fatalf("200 OK Record-Route %v, want the proxy's", routes)
	}
	from, to := ok.From().Value(), ok.To().Value()

	c.Send(dialogReq(c, "ACK", "sip:uas@"+uas.pc.LocalAddr().String(), from, to, callID, 1, routes))
	ack, _ := uas.request("ACK", enginetest.Patience)
	if ack.Route() != nil || ack.Recipient.User != "uas" {
		t.Fatalf("ACK at the UAS: R-URI %s, Route %v; want the Contact and no Route", ack.Recipient.String(), ack.Route())
	}
	c.Send(dialogReq(c, "BYE", "sip:uas@"+uas.pc.LocalAddr().String(), from, to, callID, 2, routes))
	bye, bsrc := uas.request("BYE", enginetest.Patience)
	if bye.Route() != nil {
		t.Fatalf("BYE still carries Route %v", bye.Route())
	}
	uas.reply(bye, bsrc, 200, "OK", "")
	res, err := c.RecvResponse(enginetest.Patience)
	if err != nil || res.StatusCode != 200 || res.CSeq().MethodName != sip.BYE {
		t.Fatalf("BYE: %v %v", res, err)
	}
}

// TestRelayFailureRoute retries a second destination from the failure
// route when the first answers 503 or does not answer within fr_timer; with
// no alternative the best reply goes upstream (408 on timeout).
func TestRelayFailureRoute(t *testing.T) {
	proxy := enginetest.Start(t, proxyConfig(), map[string]string{"script.lua": proxyScript})
	for _, tc := range []struct {
		name, first string
		retry       string
	}{
		{"503", "503", "503 flag3 matched"},
		{"timeout", "", "408 timeout flag3 matched"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPeer(t), newPeer(t)
			c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
			c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: a.uri(), Headers: []string{"X-Alt: " + b.uri()}}))
			req, src := a.request("MESSAGE", enginetest.Patience)
			if tc.first != "" {
				a.reply(req, src, 503, "Service Unavailable", "a")
			}
			req2, src2 := b.request("MESSAGE", enginetest.Patience)
			if got := relayHdr(req2, "X-Retry"); got != tc.retry {
				t.Fatalf("second branch X-Retry %q, want %q", got, tc.retry)
			}
			if relayHdr(req2, "X-Alt") != "" {
				t.Fatal("the failure route's header edit did not reach the new branch")
			}
			b.reply(req2, src2, 200, "OK from B", "b")
			res, err := c.RecvResponse(enginetest.Patience)
			if err != nil || res.StatusCode != 200 || res.Reason != "OK from B" {
				t.Fatalf("upstream got %v %v, want B's 200", res, err)
			}
		})
	}
	t.Run("no-alternative", func(t *testing.T) {
		a := newPeer(t)
		c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: a.uri()}))
		req, src := a.request("MESSAGE", enginetest.Patience)
		a.reply(req, src, 486, "Busy Here", "a")
		res, err := c.RecvResponse(enginetest.Patience)
		if err != nil || res.StatusCode != 486 || res.Reason != "Busy Here" {
			t.Fatalf("upstream got %v %v, want the UAS's 486", res, err)
		}
		if !proxy.Log.WaitFor("failure route status=486", enginetest.Patience) {
			t.Fatalf("failure route did not run:\n%s", proxy.Log)
		}
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: a.uri()}))
		a.request("MESSAGE", enginetest.Patience) // never answered
		res, err = c.RecvResponse(enginetest.Patience)
		if err != nil || res.StatusCode != 408 {
			t.Fatalf("after fr_timer upstream got %v %v, want 408", res, err)
		}
	})
}

// TestRelayCancel: a CANCEL from upstream is answered 200, a CANCEL goes to
// the branch that rang, and its 487 goes upstream; a branch with no reply
// yet ends with a local 487.
func TestRelayCancel(t *testing.T) {
	proxy := enginetest.Start(t, proxyConfig(), map[string]string{"script.lua": proxyScript})
	for _, ringing := range []bool{true, false} {
		t.Run(fmt.Sprintf("ringing=%v", ringing), func(t *testing.T) {
			uas := newPeer(t)
			c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
			branch := "z9hG4bK" + enginetest.RandomID()
			callID := enginetest.RandomID()
			inv := c.Build(enginetest.Req{Method: "INVITE", URI: uas.uri(), Branch: branch, CallID: callID})
			c.Send(inv)
			req, src := uas.request("INVITE", enginetest.Patience)
			if ringing {
				uas.reply(req, src, 180, "Ringing", "uastag")
			}
			for {
				res, err := c.RecvResponse(enginetest.Patience)
				if err != nil {
					t.Fatal(err)
				}
				if res.StatusCode == 180 || (!ringing && res.StatusCode == 100) {
					break
				}
			}
			parsed, _ := sip.ParseMessage([]byte(inv))
			ireq := parsed.(*sip.Request)
			cancel := strings.Replace(strings.Replace(inv, "INVITE "+uas.uri(), "CANCEL "+uas.uri(), 1), "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1)
			_ = ireq
			c.Send(cancel)
			var got200, got487 bool
			if ringing {
				creq, csrc := uas.request("CANCEL", enginetest.Patience)
				uas.reply(creq, csrc, 200, "OK", "uastag")
				uas.reply(req, src, 487, "Request Terminated", "uastag")
				uas.request("ACK", enginetest.Patience) // hop-by-hop ACK for the 487
			}
			for !(got200 && got487) {
				res, err := c.RecvResponse(enginetest.Patience)
				if err != nil {
					t.Fatalf("got200=%v got487=%v: %v", got200, got487, err)
				}
				switch {
				case res.StatusCode == 200 && res.CSeq().MethodName == sip.CANCEL:
					got200 = true
				case res.StatusCode == 487 && res.CSeq().MethodName == sip.INVITE:
					got487 = true
				}
			}
			// the ACK for the 487 is hop-by-hop: absorbed by the proxy
			c.Send(dialogReq(c, "ACK", uas.uri(), ireq.From().Value(), ireq.To().Value()+";tag=x", callID, 1, nil))
			if !ringing {
				uas.quiet("CANCEL", 300*time.Millisecond)
			}
			uas.quiet("ACK", 200*time.Millisecond)
			if !proxy.Log.WaitFor("canceled=1", enginetest.Patience) {
				t.Fatalf("the failure route did not see the cancellation:\n%s", proxy.Log)
			}
		})
	}
}

// TestRelayStateless forwards with KSR.forward: no transaction, the reply
// comes back through the Via headers.
func TestRelayStateless(t *testing.T) {
	proxy := enginetest.Start(t, proxyConfig(), map[string]string{"script.lua": proxyScript})
	uas := newPeer(t)
	c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: uas.uri(), Headers: []string{"X-Mode: stateless"}}))
	req, src := uas.request("MESSAGE", enginetest.Patience)
	if src.String() != proxy.Addr("udp") || len(req.GetHeaders("Via")) != 2 {
		t.Fatalf("forwarded from %s with %d Vias", src, len(req.GetHeaders("Via")))
	}
	if v := req.GetHeaders("Via")[1].(*sip.ViaHeader); !v.Params.Has("received") {
		t.Fatalf("the client's Via lacks received/rport: %s", v.Value())
	}
	uas.reply(req, src, 202, "Accepted", "u")
	res, err := c.RecvResponse(enginetest.Patience)
	if err != nil || res.StatusCode != 202 || len(res.GetHeaders("Via")) != 1 {
		t.Fatalf("stateless reply: %v %v", res, err)
	}
	if proxy.SIP().PendingTx() != 0 {
		t.Fatalf("stateless forwarding left %d transactions", proxy.SIP().PendingTx())
	}
}

// TestRelayMaxForwards relays a request whose Max-Forwards is 0 as it is:
// as in Kamailio, tm never looks at Max-Forwards; a script that wants 483
// calls KSR.maxfwd.process_maxfwd (tests/lua/maxfwd_test.lua).
func TestRelayMaxForwards(t *testing.T) {
	proxy := enginetest.Start(t, proxyConfig(), map[string]string{"script.lua": proxyScript})
	uas := newPeer(t)
	c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
	raw := strings.Replace(c.Build(enginetest.Req{Method: "MESSAGE", URI: uas.uri()}), "Max-Forwards: 70", "Max-Forwards: 0", 1)
	c.Send(raw)
	req, src := uas.request("MESSAGE", enginetest.Patience)
	if mf := req.MaxForwards(); mf == nil || mf.Val() != 0 {
		t.Fatalf("Max-Forwards at the UAS %v, want 0", mf)
	}
	uas.reply(req, src, 200, "OK", "u")
	if res, err := c.RecvResponse(2 * time.Second); err != nil || res.StatusCode != 200 {
		t.Fatalf("got %v %v, want 200", res, err)
	}
}

// TestRelayFromAsyncResume relays in a function resumed by
// KSR.async.ms_route (failure-route context): no 500 while the branch is
// pending, the UAS's reply goes upstream.
func TestRelayFromAsyncResume(t *testing.T) {
	script := `
function ksr_request_route()
	if KSR.async.ms_route("resumed", 20) < 0 then KSR.sl.send_reply(500, "no async") end
	KSR.x.exit()
end
function resumed()
	KSR.tm.t_on_failure("failed")
	if KSR.tm.t_relay() < 0 then KSR.tm.t_reply(500, "relay failed") end
end
function failed()
	KSR.info("resume failure status=" .. KSR.tm.t_get_status_code() .. "\n")
end
`
	proxy := enginetest.Start(t, proxyConfig(`loadmodule "async.so"`, `modparam("async", "workers", 1)`),
		map[string]string{"script.lua": script})
	uas := newPeer(t)
	c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: uas.uri()}))
	req, src := uas.request("MESSAGE", enginetest.Patience)
	time.Sleep(50 * time.Millisecond) // a 500 would be on its way by now
	uas.reply(req, src, 200, "Resumed OK", "u")
	res, err := c.RecvResponse(enginetest.Patience)
	if err != nil || res.StatusCode != 200 || res.Reason != "Resumed OK" {
		t.Fatalf("upstream got %v %v, want the UAS's 200", res, err)
	}
	// and a negative reply runs the failure route armed in the resume
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: uas.uri()}))
	req, src = uas.request("MESSAGE", enginetest.Patience)
	uas.reply(req, src, 404, "Nobody", "u")
	res, err = c.RecvResponse(enginetest.Patience)
	if err != nil || res.StatusCode != 404 {
		t.Fatalf("upstream got %v %v, want 404", res, err)
	}
	if !proxy.Log.WaitFor("resume failure status=404", enginetest.Patience) {
		t.Fatalf("failure route armed in the resume did not run:\n%s", proxy.Log)
	}
}

// TestRelayFromSworker relays in a request delegated to an async_workers
// group by the pre-routing callback.
func TestRelayFromSworker(t *testing.T) {
	script := `
function ksr_pre(evname)
	if KSR.sworker.task("rl") > 0 then KSR.x.drop() end
end
function ksr_request_route()
	KSR.hdr.append("X-Group: " .. KSR.async.get_gname() .. "\r\n")
	KSR.tm.t_relay()
end
`
	proxy := enginetest.Start(t, proxyConfig(`loadmodule "sworker.so"`, `async_workers_group="name=rl;workers=1"`,
		`kemi.pre_routing_callback="ksr_pre"`), map[string]string{"script.lua": script})
	uas := newPeer(t)
	c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: uas.uri()}))
	req, src := uas.request("MESSAGE", enginetest.Patience)
	if g := relayHdr(req, "X-Group"); g != "rl" {
		t.Fatalf("relayed from group %q, want rl", g)
	}
	uas.reply(req, src, 200, "OK", "u")
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 200 {
		t.Fatalf("upstream got %v %v", res, err)
	}
}

// TestRelayInviteTimeout: after a provisional reply fr_inv_timer, not
// fr_timer, bounds the wait; when it expires the branch is cancelled
// downstream and 408 goes upstream.
func TestRelayInviteTimeout(t *testing.T) {
	// The 180 must reach the proxy within fr_timer of the INVITE, and the check below ends
	// between fr_timer and fr_inv_timer after it: a second of margin either way.
	cfg := enginetest.Config(`loadmodule "rr.so"`, `modparam("tm", "fr_timer", 1000)`, `modparam("tm", "fr_inv_timer", 3000)`)
	proxy := enginetest.Start(t, cfg, map[string]string{"script.lua": proxyScript})
	uas := newPeer(t)
	c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "INVITE", URI: uas.uri()}))
	req, src := uas.request("INVITE", enginetest.Patience)
	uas.reply(req, src, 180, "Ringing", "u")
	deadline := time.Now().Add(2 * time.Second) // well past fr_timer, before fr_inv_timer
	for time.Now().Before(deadline) {
		res, err := c.RecvResponse(time.Until(deadline))
		if err != nil {
			break
		}
		if res.StatusCode >= 200 {
			t.Fatalf("final reply %d before fr_inv_timer", res.StatusCode)
		}
	}
	creq, csrc := uas.request("CANCEL", enginetest.Patience)
	uas.reply(creq, csrc, 200, "OK", "u")
	uas.reply(req, src, 487, "Request Terminated", "u")
	for {
		res, err := c.RecvResponse(enginetest.Patience)
		if err != nil {
			t.Fatalf("no final reply after fr_inv_timer: %v", err)
		}
		if res.StatusCode >= 200 {
			if res.StatusCode != 408 {
				t.Fatalf("got %d, want 408 (the branch timed out)", res.StatusCode)
			}
			break
		}
	}
	uas.request("ACK", enginetest.Patience) // the proxy ACKs the late 487
}

// TestRelayTMSettings: fr_timer and fr_inv_timer are read in milliseconds.
func TestRelayTMSettings(t *testing.T) {
	dir := t.TempDir()
	enginetest.Files(t, dir, map[string]string{"script.lua": "function ksr_request_route() end",
		"ok.cfg":  enginetest.Config(`modparam("tm", "fr_timer", 1500)`, `modparam("tm", "fr_inv_timer", 90000)`, `modparam("tm", "wt_timer", 3)`),
		"bad.cfg": enginetest.Config(`modparam("tm", "fr_timer", "soon")`)})
	set, err := engine.Load(dir+"/ok.cfg", nil)
	if err != nil {
		t.Fatal(err)
	}
	if set.TM().FrTimer != 1500*time.Millisecond || set.TM().FrInvTimer != 90*time.Second {
		t.Fatalf("tm settings %+v", set.TM())
	}
	if !strings.Contains(strings.Join(set.Notices, "\n"), `modparam("tm", "wt_timer") ignored`) {
		t.Fatalf("no notice for an ignored tm parameter: %q", set.Notices)
	}
	if _, err := engine.Load(dir+"/bad.cfg", nil); err == nil || !strings.Contains(err.Error(), "bad.cfg:") || !strings.Contains(err.Error(), "fr_timer") {
		t.Fatalf("bad fr_timer: %v", err)
	}
}

// TestRelayToAddrAndFlags: t_relay_to_proto_addr and KSR.forward_uri pick
// the destination themselves; flags set, reset and tested per message.
func TestRelayToAddrAndFlags(t *testing.T) {
	script := `
function ksr_request_route()
	KSR.setflag(1)
	KSR.setflag(2)
	KSR.resetflag(1)
	local f = (KSR.isflagset(1) and "1" or "-") .. (KSR.isflagset(2) and "2" or "-")
	-- KSR.setflag is BOOL in Kamailio (kemi.c): false for an invalid flag
	KSR.hdr.append("X-Flags: " .. f .. " " .. tostring(KSR.setflag(32)) .. "\r\n")
	local port = tonumber(KSR.hdr.get("X-Port"))
	if KSR.hdr.get("X-Mode") == "stateless" then
		KSR.forward_uri("sip:127.0.0.1:" .. port)
	else
		KSR.tm.t_relay_to_proto_addr("udp", "127.0.0.1", port)
	end
end
`
	proxy := enginetest.Start(t, proxyConfig(), map[string]string{"script.lua": script})
	uas := newPeer(t)
	port := uas.pc.LocalAddr().(*net.UDPAddr).Port
	c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
	for _, mode := range []string{"stateful", "stateless"} {
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: "sip:bob@example.com",
			Headers: []string{"X-Mode: " + mode, fmt.Sprintf("X-Port: %d", port)}}))
		req, src := uas.request("MESSAGE", enginetest.Patience)
		if got := relayHdr(req, "X-Flags"); got != "-2 false" {
			t.Fatalf("%s: X-Flags %q, want \"-2 false\"", mode, got)
		}
		uas.reply(req, src, 200, "OK "+mode, "u")
		if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.Reason != "OK "+mode {
			t.Fatalf("%s: upstream got %v %v", mode, res, err)
		}
	}
}
