package engine_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
)

// transportsSample returns the proxy-and-registrar configuration and its
// Lua from docs/transports.md, as a user would copy them, with the
// documentation address made a loopback one and the ports ephemeral.
func transportsSample(t *testing.T) (cfg, lua string) {
	t.Helper()
	src, err := os.ReadFile("../docs/transports.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(src)
	i := strings.Index(doc, "A proxy and registrar for phones")
	if i < 0 {
		t.Fatal("docs/transports.md: the proxy-and-registrar sample is gone")
	}
	block := func(fence string) string {
		s := strings.Index(doc[i:], fence)
		if s < 0 {
			t.Fatalf("docs/transports.md: no %q block after the sample's heading", fence)
		}
		s += i + len(fence)
		e := strings.Index(doc[s:], "\n```")
		i = s + e
		return doc[s : s+e+1]
	}
	cfg = block("```\n")
	lua = block("```lua\n")
	for _, port := range []string{"5060", "5061", "4443"} {
		cfg = strings.ReplaceAll(cfg, "192.0.2.10:"+port, "127.0.0.1:0")
	}
	if strings.Contains(cfg, "192.0.2.10") {
		t.Fatalf("docs/transports.md sample: an address the test does not map:\n%s", cfg)
	}
	return "#!KAMAILIO\n" + cfg, lua
}

// browserRegister is a REGISTER as a WebRTC library (JsSIP, SIP.js) sends
// it: an unresolvable .invalid Via host and Contact, transport=ws.
func browserRegister(user, contact string) string {
	return fmt.Sprintf("REGISTER sip:example.com SIP/2.0\r\n"+
		"Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:%s@example.com>;tag=%s\r\n"+
		"To: <sip:%s@example.com>\r\n"+
		"Call-ID: %s\r\nCSeq: 1 REGISTER\r\nMax-Forwards: 70\r\n"+
		"Contact: <%s>;expires=600\r\n"+
		"User-Agent: kemi-test browser\r\nContent-Length: 0\r\n\r\n",
		enginetest.RandomID(), user, enginetest.RandomID()[:8], user, enginetest.RandomID(), contact)
}

// TestWSSBrowserRegisterAndMessage is issue 22's end-to-end case, on the
// configuration and Lua of docs/transports.md: a UDP phone (bob) and a
// browser-style client on secure WebSocket (carol, whose contact is an
// unresolvable .invalid address, reachable only over her own connection)
// register; carol's MESSAGE to bob is relayed to his UDP socket, and bob's
// MESSAGE to carol goes back over her wss connection.
func TestWSSBrowserRegisterAndMessage(t *testing.T) {
	cfg, lua := transportsSample(t)
	ca := newTestCA(t, "kemi test CA")
	srvCert, srvKey := ca.issue(t, "kemi server", 2)
	k := enginetest.Start(t, cfg, map[string]string{
		"proxy.lua": lua, "server.pem": string(srvCert), "server.key": string(srvKey),
		"tls.cfg": "[server:default]\ncertificate = server.pem\nprivate_key = server.key\n",
	})

	// bob: a UDP phone, registering from the socket he receives on.
	bob := newPeer(t)
	bobContact := "sip:bob@" + bob.pc.LocalAddr().String()
	kudp, err := net.ResolveUDPAddr("udp", k.Addr("udp"))
	if err != nil {
		t.Fatal(err)
	}
	reg := strings.Replace(browserRegister("bob", bobContact), "SIP/2.0/WSS df7jal23ls0d.invalid", "SIP/2.0/UDP "+bob.pc.LocalAddr().String(), 1)
	if _, err := bob.pc.WriteTo([]byte(reg), kudp); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-bob.in:
		if res, ok := m.msg.(*sip.Response); !ok || res.StatusCode != 200 {
			t.Fatalf("bob's REGISTER over udp: %v", m.msg)
		}
	case <-time.After(enginetest.Patience):
		t.Fatal("bob's REGISTER over udp: no reply")
	}
	u := enginetest.Dial(t, "udp", k.Addr("udp"))

	// carol: a browser on wss.
	c, err := enginetest.DialWS(t, k.Addr("wss"), &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	carolContact := "sip:r8k2vq1x@df7jal23ls0d.invalid;transport=ws"
	c.Send(browserRegister("carol", carolContact))
	res, err := c.RecvResponse(enginetest.Patience)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("carol's REGISTER over wss: %v %v", res, err)
	}
	if got := relayHdr(res, "Contact"); !strings.Contains(got, carolContact) {
		t.Errorf("200 to REGISTER: Contact %q, want the registered %q", got, carolContact)
	}

	// carol's MESSAGE reaches bob's UDP socket.
	callID := enginetest.RandomID()
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: "sip:bob@example.com", CallID: callID, Body: "hello from the browser"}))
	req, src := bob.request("MESSAGE", enginetest.Patience)
	if string(req.Body()) != "hello from the browser" || req.Recipient.String() != bobContact {
		t.Errorf("MESSAGE at bob: %s, body %q", req.Recipient.String(), req.Body())
	}
	if vias := req.GetHeaders("Via"); len(vias) != 2 || !strings.HasPrefix(vias[1].Value(), "SIP/2.0/WSS ") {
		t.Errorf("Vias at bob: %v", vias)
	}
	bob.reply(req, src, 200, "OK", "bob1")
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 200 || res.CallID().Value() != callID {
		t.Fatalf("MESSAGE reply over wss: %v %v", res, err)
	}

	// bob's MESSAGE reaches carol over her own connection; her 200 goes
	// back to bob.
	callID = enginetest.RandomID()
	u.Send(u.Build(enginetest.Req{Method: "MESSAGE", URI: "sip:carol@example.com", CallID: callID, Body: "hello browser"}))
	m, err := c.Recv(enginetest.Patience)
	if err != nil {
		t.Fatalf("MESSAGE to the registered browser: %v", err)
	}
	in, ok := m.(*sip.Request)
	if !ok || string(in.Body()) != "hello browser" || !strings.HasPrefix(in.String(), "MESSAGE "+carolContact+" ") {
		t.Fatalf("the browser got:\n%v", m)
	}
	c.Send(rawReply(in, 200, "OK", "brw1"))
	if res, err := u.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 200 || res.CallID().Value() != callID {
		t.Fatalf("the browser's 200 at bob: %v %v", res, err)
	}

	// An AOR nobody registered: the script's 404.
	if res := u.Do(enginetest.Req{Method: "MESSAGE", URI: "sip:dave@example.com"}, enginetest.Patience); res.StatusCode != 404 {
		t.Errorf("MESSAGE to an unregistered AOR: %d, want 404", res.StatusCode)
	}
}
