package engine_test

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
)

// wsRegistrarScript is a registrar and proxy for browser clients: a
// REGISTER is saved with its source as the received address (what
// nathelper's fix_nated_register does for a client behind NAT or on a
// WebSocket), a request to example.com is looked up in the location
// table, anything else is relayed to X-Du. Everything is record-routed.
const wsRegistrarScript = `
function ksr_request_route()
	if KSR.is_REGISTER() then
		KSR.pv.sets("$avp(RECEIVED)", "sip:" .. KSR.pv.get("$si") .. ":" .. KSR.pv.get("$sp") ..
			";transport=" .. KSR.pv.get("$pr"))
		KSR.registrar.save("location", 0)
		return
	end
	KSR.rr.record_route()
	if KSR.pv.get("$rd") == "example.com" then
		if KSR.registrar.lookup("location") < 0 then
			KSR.sl.send_reply(404, "Not Found")
			return
		end
	else
		local du = KSR.hdr.get("X-Du")
		if du then KSR.pv.sets("$du", du) end
	end
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end
`

// browserRegister is a REGISTER as a WebRTC library (JsSIP, SIP.js) sends
// it: an unresolvable .invalid Via host and Contact, transport=ws.
func browserRegister(user, contact, callID string) string {
	return fmt.Sprintf("REGISTER sip:example.com SIP/2.0\r\n"+
		"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:%s@example.com>;tag=%s\r\n"+
		"To: <sip:%s@example.com>\r\n"+
		"Call-ID: %s\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"+
		"Contact: <%s>;expires=600\r\n"+
		"User-Agent: kemi-test browser\r\nContent-Length: 0\r\n\r\n",
		enginetest.RandomID(), user, enginetest.RandomID()[:8], user, callID, contact)
}

// TestWSSBrowserRegisterAndMessage is issue 22's end to end case: a
// browser-style client on secure WebSocket registers (its contact is an
// unresolvable .invalid address, reachable only over its own
// connection), sends a MESSAGE that is relayed to a UDP UAS, and receives
// a MESSAGE a UDP client sends to its AOR: the registrar's lookup routes it
// back over the client's wss connection.
func TestWSSBrowserRegisterAndMessage(t *testing.T) {
	k := startTLSKemiWith(t, wsRegistrarScript, `loadmodule "usrloc.so"`, `loadmodule "registrar.so"`, `modparam("usrloc", "preload", "location")`,
		`modparam("registrar", "received_avp", "$avp(RECEIVED)")`)
	uas := newPeer(t)
	c, err := enginetest.DialWS(t, k.Addr("wss"), &tls.Config{RootCAs: k.ca.pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	contact := "sip:r8k2vq1x@df7jal23ls0d.invalid;transport=ws"
	c.Send(browserRegister("carol", contact, enginetest.RandomID()))
	res, err := c.RecvResponse(enginetest.Patience)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER over wss: %v %v", res, err)
	}
	if got := relayHdr(res, "Contact"); !strings.Contains(got, contact) {
		t.Errorf("200 to REGISTER: Contact %q, want the registered %q", got, contact)
	}

	// The browser's MESSAGE to a UDP UAS.
	callID := enginetest.RandomID()
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: uas.uri(), CallID: callID,
		Headers: []string{"X-Du: sip:" + uas.pc.LocalAddr().String()}, Body: "hello from the browser"}))
	req, src := uas.request("MESSAGE", enginetest.Patience)
	if string(req.Body()) != "hello from the browser" {
		t.Errorf("MESSAGE body at the UAS: %q", req.Body())
	}
	if vias := req.GetHeaders("Via"); len(vias) != 2 || !strings.HasPrefix(vias[1].Value(), "SIP/2.0/WSS ") {
		t.Errorf("Vias at the UAS: %v", vias)
	}
	uas.reply(req, src, 200, "OK", "uas1")
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 200 || res.CallID().Value() != callID {
		t.Fatalf("MESSAGE reply over wss: %v %v", res, err)
	}

	// A UDP client's MESSAGE to carol reaches the browser over its own
	// connection; the browser's 200 goes back to the UDP client.
	u := enginetest.Dial(t, "udp", k.Addr("udp"))
	callID = enginetest.RandomID()
	u.Send(u.Build(enginetest.Req{Method: "MESSAGE", URI: "sip:carol@example.com", CallID: callID, Body: "hello browser"}))
	m, err := c.Recv(enginetest.Patience)
	if err != nil {
		t.Fatalf("MESSAGE to the registered browser: %v", err)
	}
	in, ok := m.(*sip.Request)
	if !ok || string(in.Body()) != "hello browser" || !strings.HasPrefix(in.String(), "MESSAGE "+contact+" ") {
		t.Fatalf("the browser got:\n%v", m)
	}
	c.Send(rawReply(in, 200, "OK", "brw1"))
	if res, err := u.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 200 || res.CallID().Value() != callID {
		t.Fatalf("the browser's 200 at the UDP client: %v %v", res, err)
	}

	// An AOR nobody registered: the script's 404.
	if res := u.Do(enginetest.Req{Method: "MESSAGE", URI: "sip:dave@example.com"}, enginetest.Patience); res.StatusCode != 404 {
		t.Errorf("MESSAGE to an unregistered AOR: %d, want 404", res.StatusCode)
	}
}
