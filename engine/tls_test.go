package engine_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine"
	"kemi/engine/enginetest"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for cn, valid for 127.0.0.1,
// for server and client use.
func (ca *testCA) issue(t testing.TB, cn string, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// clientCert is a tls.Certificate for a client, from ca.
func (ca *testCA) clientCert(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	c, k := ca.issue(t, cn, 7)
	kp, err := tls.X509KeyPair(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// tlsScript answers OPTIONS to itself with what it knows of the transport
// and relays the rest, record-routed, to X-Du.
const tlsScript = `
function ksr_request_route()
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
		KSR.hdr.append_to_reply("X-Transport: pr=" .. KSR.pv.get("$pr") .. " proto=" .. KSR.pv.get("$proto") ..
			" Rp=" .. KSR.pv.get("$Rp") .. " tls=" .. tostring(KSR.is_TLS()) .. " ws=" .. tostring(KSR.is_WS()) ..
			" wss=" .. tostring(KSR.is_WSS()) .. " wsx=" .. tostring(KSR.is_WSX()) .. " tcp=" .. tostring(KSR.is_TCP()) .. "\r\n")
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.rr.record_route()
	local du = KSR.hdr.get("X-Du")
	if du then KSR.pv.sets("$du", du) end
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end
`

// tlsKemi is a kemi with udp, tls, ws and wss listeners whose tls.cfg
// asks for client certificates from ca.
type tlsKemi struct {
	*enginetest.Engine
	ca *testCA
}

func startTLSKemi(t *testing.T, verify bool) *tlsKemi {
	t.Helper()
	return startTLSKemiScript(t, verify, tlsScript)
}

// startTLSKemiWith is startTLSKemi without client certificates, running
// script, with extra configuration lines.
func startTLSKemiWith(t *testing.T, script string, extra ...string) *tlsKemi {
	t.Helper()
	return startTLSKemiScript(t, false, script, extra...)
}

func startTLSKemiScript(t *testing.T, verify bool, script string, extra ...string) *tlsKemi {
	t.Helper()
	ca := newTestCA(t, "kemi test CA")
	srvCert, srvKey := ca.issue(t, "kemi server 1", 2)
	v := "no"
	if verify {
		v = "yes"
	}
	cfg := proxyConfig(append([]string{
		"listen=tls:127.0.0.1:0", "listen=ws:127.0.0.1:0", "listen=wss:127.0.0.1:0",
		`loadmodule "tls.so"`, `modparam("tls", "config", "tls.cfg")`}, extra...)...)
	e := enginetest.Start(t, cfg, map[string]string{
		"script.lua":       script,
		"certs/server.pem": string(srvCert), "certs/server.key": string(srvKey), "certs/ca.pem": string(ca.pem),
		"tls.cfg": `# kemi test profiles
[server:default]
method = TLSv1.2+
certificate = certs/server.pem
private_key = certs/server.key
ca_list = certs/ca.pem
verify_certificate = ` + v + `
require_certificate = ` + v + `

[client:default]
verify_certificate = yes
ca_list = certs/ca.pem
`})
	return &tlsKemi{Engine: e, ca: ca}
}

// dialTLS connects to kemi's tls listener, checking its certificate
// against the test CA, with cert as the client certificate (if any).
func (k *tlsKemi) dialTLS(t *testing.T, cert *tls.Certificate) (*tls.Conn, error) {
	cfg := &tls.Config{RootCAs: k.ca.pool(), ServerName: "127.0.0.1"}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: enginetest.Patience}, Config: cfg}
	c, err := d.DialContext(context.Background(), "tcp", k.Addr("tls"))
	if err != nil {
		return nil, err
	}
	return c.(*tls.Conn), nil
}

// TestTLSRelayToUDP: a crypto/tls client with a certificate the tls.cfg's
// CA signed sends OPTIONS (answered by the script, which sees the
// transport) and MESSAGE, relayed to a UDP peer with a UDP Via and a
// double Record-Route; the peer's reply comes back over the TLS
// connection.
func TestTLSRelayToUDP(t *testing.T) {
	k := startTLSKemi(t, true)
	cert := k.ca.clientCert(t, "alice")
	conn, err := k.dialTLS(t, &cert)
	if err != nil {
		t.Fatal(err)
	}
	c := enginetest.NewClient(t, "tls", conn)
	tlsPort := k.SIP().Listener("tls").Addr.Port()

	res := c.Do(enginetest.Req{Method: "OPTIONS", URI: "sip:" + k.Addr("tls")}, enginetest.Patience)
	if res.StatusCode != 200 {
		t.Fatalf("OPTIONS: %d", res.StatusCode)
	}
	want := "pr=tls proto=tls Rp=" + itoa(int(tlsPort)) + " tls=true ws=false wss=false wsx=false tcp=false"
	if got := relayHdr(res, "X-Transport"); got != want {
		t.Errorf("transport seen by the script:\n got %q\nwant %q", got, want)
	}

	p := newPeer(t)
	callID := enginetest.RandomID()
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: p.uri(), CallID: callID,
		Headers: []string{"X-Du: sip:" + p.pc.LocalAddr().String()}, Body: "hello over tls"}))
	req, src := p.request("MESSAGE", enginetest.Patience)
	vias := req.GetHeaders("Via")
	if len(vias) != 2 || !strings.HasPrefix(vias[0].Value(), "SIP/2.0/UDP 127.0.0.1:") || !strings.HasPrefix(vias[1].Value(), "SIP/2.0/TLS ") {
		t.Errorf("Vias at the UDP peer: %v", vias)
	}
	udpPort := k.SIP().Listener("udp").Addr.Port()
	rrs := req.GetHeaders("Record-Route")
	if len(rrs) != 2 {
		t.Fatalf("want a double Record-Route, got %v", rrs)
	}
	if v := rrs[0].Value(); !strings.HasPrefix(v, "<sip:127.0.0.1:"+itoa(int(udpPort))+";r2=on;lr") {
		t.Errorf("top Record-Route (facing the UDP peer) = %q", v)
	}
	if v := rrs[1].Value(); !strings.HasPrefix(v, "<sip:127.0.0.1:"+itoa(int(tlsPort))+";transport=tls;r2=on;lr") {
		t.Errorf("second Record-Route (facing the TLS client) = %q", v)
	}
	p.reply(req, src, 202, "Accepted", "uas1")
	res, err = c.RecvResponse(enginetest.Patience)
	if err != nil || res.StatusCode != 202 || res.CallID().Value() != callID {
		t.Fatalf("reply over tls: %v %v", res, err)
	}

	var list []map[string]any
	raw, err := k.RPC().Call(context.Background(), "tls.list")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &list); err != nil || len(list) != 1 {
		t.Fatalf("tls.list: %s (%v)", raw, err)
	}
	if list[0]["state"] != "established" || !strings.Contains(list[0]["peer"].(string), "CN=alice") {
		t.Errorf("tls.list: %s", raw)
	}
	raw, err = k.RPC().Call(context.Background(), "tls.info")
	if err != nil || !strings.Contains(string(raw), `"opened_connections":1`) {
		t.Errorf("tls.info: %s %v", raw, err)
	}
}

// TestTLSClientCertificateRefused: with verify_certificate and
// require_certificate on, a client whose certificate another CA signed,
// and one without a certificate, get no answer: the handshake fails.
func TestTLSClientCertificateRefused(t *testing.T) {
	k := startTLSKemi(t, true)
	rogue := newTestCA(t, "rogue CA").clientCert(t, "mallory")
	for name, cert := range map[string]*tls.Certificate{"wrong CA": &rogue, "no certificate": nil} {
		conn, err := k.dialTLS(t, cert)
		if err != nil {
			continue // refused during the handshake (TLS 1.2)
		}
		c := enginetest.NewClient(t, "tls", conn)
		if err := c.TrySend(c.Build(enginetest.Req{Method: "OPTIONS", URI: "sip:" + k.Addr("tls")})); err == nil {
			if res, err := c.RecvResponse(enginetest.Patience); err == nil {
				t.Errorf("%s: answered %d, want the connection refused", name, res.StatusCode)
			}
		}
	}
	// A good certificate still works afterwards.
	good := k.ca.clientCert(t, "alice")
	conn, err := k.dialTLS(t, &good)
	if err != nil {
		t.Fatal(err)
	}
	c := enginetest.NewClient(t, "tls", conn)
	if res := c.Do(enginetest.Req{Method: "OPTIONS", URI: "sip:" + k.Addr("tls")}, enginetest.Patience); res.StatusCode != 200 {
		t.Fatalf("OPTIONS: %d", res.StatusCode)
	}
}

// TestTLSReload: tls.reload with a new certificate on disk: a new
// connection sees it, the connection opened before keeps working, and a
// reload that finds a broken key keeps the certificate in use.
func TestTLSReload(t *testing.T) {
	k := startTLSKemi(t, false)
	old, err := k.dialTLS(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cn := old.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "kemi server 1" {
		t.Fatalf("first certificate: %q", cn)
	}
	oc := enginetest.NewClient(t, "tls", old)

	certPEM, keyPEM := k.ca.issue(t, "kemi server 2", 3)
	enginetest.Files(t, k.Dir, map[string]string{"certs/server.pem": string(certPEM), "certs/server.key": string(keyPEM)})
	raw, err := k.RPC().Call(context.Background(), "tls.reload")
	if err != nil || string(raw) != `"Ok. TLS configuration reloaded."` {
		t.Fatalf("tls.reload: %s %v", raw, err)
	}
	conn, err := k.dialTLS(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "kemi server 2" {
		t.Errorf("after tls.reload a new connection got %q, want the new certificate", cn)
	}
	if res := oc.Do(enginetest.Req{Method: "OPTIONS", URI: "sip:" + k.Addr("tls")}, enginetest.Patience); res.StatusCode != 200 {
		t.Errorf("connection opened before the reload: %d", res.StatusCode)
	}

	if err := os.WriteFile(filepath.Join(k.Dir, "certs/server.key"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := k.RPC().Call(context.Background(), "tls.reload"); err == nil {
		t.Fatal("tls.reload with a broken key succeeded")
	}
	conn, err = k.dialTLS(t, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "kemi server 2" {
		t.Errorf("after a failed reload: %q, want the certificate in use kept", cn)
	}
	conn.Close()
}

// TestWebSocketRelayToUDP: a WebSocket client over ws and over wss sends
// OPTIONS (the script sees $pr ws / wss) and MESSAGE, relayed to a UDP
// peer; the reply comes back in a WebSocket frame.
func TestWebSocketRelayToUDP(t *testing.T) {
	k := startTLSKemi(t, false)
	p := newPeer(t)
	udpPort := k.SIP().Listener("udp").Addr.Port()
	for _, proto := range []string{"ws", "wss"} {
		var cfg *tls.Config
		if proto == "wss" {
			cfg = &tls.Config{RootCAs: k.ca.pool(), ServerName: "127.0.0.1"}
		}
		c, err := enginetest.DialWS(t, k.Addr(proto), cfg)
		if err != nil {
			t.Fatalf("%s: %v", proto, err)
		}
		port := k.SIP().Listener(proto).Addr.Port()
		res := c.Do(enginetest.Req{Method: "OPTIONS", URI: "sip:" + k.Addr(proto)}, enginetest.Patience)
		want := "pr=" + proto + " proto=" + proto + " Rp=" + itoa(int(port)) + " tls=false ws=" + tostr(proto == "ws") +
			" wss=" + tostr(proto == "wss") + " wsx=true tcp=false"
		if got := relayHdr(res, "X-Transport"); res.StatusCode != 200 || got != want {
			t.Errorf("%s OPTIONS: %d\n got %q\nwant %q", proto, res.StatusCode, got, want)
		}

		callID := enginetest.RandomID()
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: p.uri(), CallID: callID,
			Headers: []string{"X-Du: sip:" + p.pc.LocalAddr().String()}, Body: "hello over " + proto}))
		req, src := p.request("MESSAGE", enginetest.Patience)
		vias := req.GetHeaders("Via")
		if len(vias) != 2 || !strings.HasPrefix(vias[1].Value(), "SIP/2.0/"+strings.ToUpper(proto)+" ") {
			t.Errorf("%s: Vias at the UDP peer: %v", proto, vias)
		}
		rrs := req.GetHeaders("Record-Route")
		if len(rrs) != 2 || !strings.HasPrefix(rrs[0].Value(), "<sip:127.0.0.1:"+itoa(int(udpPort))+";r2=on;lr") ||
			!strings.HasPrefix(rrs[1].Value(), "<sip:127.0.0.1:"+itoa(int(port))+";transport=ws;r2=on;lr") {
			t.Errorf("%s: Record-Route at the UDP peer: %v", proto, rrs)
		}
		p.reply(req, src, 200, "OK", "uas-"+proto)
		res, err = c.RecvResponse(enginetest.Patience)
		if err != nil || res.StatusCode != 200 || res.CallID().Value() != callID {
			t.Fatalf("%s: reply: %v %v", proto, res, err)
		}
	}
}

// TestRelayUDPToTLS: a request from a UDP client relayed to a
// ;transport=tls next hop goes over a connection kemi opens with the
// [client:default] profile (the server's certificate checked against its
// ca_list), with a TLS Via and a double Record-Route; the reply comes
// back on that connection and is relayed to the UDP client.
func TestRelayUDPToTLS(t *testing.T) {
	k := startTLSKemi(t, false)
	certPEM, keyPEM := k.ca.issue(t, "tls next hop", 9)
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan *enginetest.Client, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		got <- enginetest.NewClient(t, "tls", c)
	}()

	c := enginetest.Dial(t, "udp", k.Addr("udp"))
	callID := enginetest.RandomID()
	next := "sip:bob@" + ln.Addr().String() + ";transport=tls"
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: next, CallID: callID, Body: "to a tls trunk"}))
	var hop *enginetest.Client
	select {
	case hop = <-got:
	case <-time.After(enginetest.Patience):
		t.Fatal("kemi opened no tls connection to the next hop")
	}
	m, err := hop.Recv(enginetest.Patience)
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	tlsPort, udpPort := k.SIP().Listener("tls").Addr.Port(), k.SIP().Listener("udp").Addr.Port()
	if v := req.Via().Value(); !strings.HasPrefix(v, "SIP/2.0/TLS 127.0.0.1:"+itoa(int(tlsPort))+";") {
		t.Errorf("Via at the tls next hop: %q", v)
	}
	rrs := req.GetHeaders("Record-Route")
	if len(rrs) != 2 || !strings.HasPrefix(rrs[0].Value(), "<sip:127.0.0.1:"+itoa(int(tlsPort))+";transport=tls;r2=on;lr") ||
		!strings.HasPrefix(rrs[1].Value(), "<sip:127.0.0.1:"+itoa(int(udpPort))+";r2=on;lr") {
		t.Errorf("Record-Route at the tls next hop: %v", rrs)
	}
	hop.Send(rawReply(req, 200, "OK", "trunk"))
	res, err := c.RecvResponse(enginetest.Patience)
	if err != nil || res.StatusCode != 200 || res.CallID().Value() != callID {
		t.Fatalf("reply relayed to the udp client: %v %v", res, err)
	}
}

// TestRelayToTLSUntrusted: a next hop whose certificate the client
// profile's ca_list did not sign is not relayed to.
func TestRelayToTLSUntrusted(t *testing.T) {
	k := startTLSKemi(t, false)
	certPEM, keyPEM := newTestCA(t, "other CA").issue(t, "impostor", 5)
	kp, _ := tls.X509KeyPair(certPEM, keyPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{kp}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.Read(make([]byte, 1)); c.Close() }() // runs the handshake
		}
	}()
	c := enginetest.Dial(t, "udp", k.Addr("udp"))
	res := c.Do(enginetest.Req{Method: "MESSAGE", URI: "sip:bob@" + ln.Addr().String() + ";transport=tls"}, enginetest.Patience)
	if res.StatusCode < 400 {
		t.Fatalf("relayed to an untrusted next hop: %d", res.StatusCode)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func tostr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// webrtcScript is Kamailio's WebRTC pattern: HTTP on the SIP listeners
// goes to the xhttp event callback, which upgrades WebSocket handshakes
// and answers anything else.
const webrtcScript = `
function ksr_xhttp_event(evname)
	KSR.info("xhttp event " .. evname .. " " .. KSR.pv.get("$rm") .. " " .. KSR.xhttp.get_hu() .. "\n")
	local up = KSR.hdr.get("Upgrade")
	if up ~= nil and string.lower(up) == "websocket" and KSR.xhttp.get_hu() == "/ws" then
		if KSR.websocket.handle_handshake() > 0 then return end
		return
	end
	KSR.xhttp.xhttp_reply(200, "OK", "text/plain", "kemi here: " .. KSR.xhttp.get_hu())
end
` + tlsScript

// TestXHTTPWebSocketHandshake: with xhttp and websocket loaded, the tcp
// and tls SIP listeners take WebSocket clients through the event
// callback's handle_handshake (messages then say ws / wss), answer other
// HTTP requests with xhttp_reply, and still take SIP.
func TestXHTTPWebSocketHandshake(t *testing.T) {
	ca := newTestCA(t, "kemi test CA")
	srvCert, srvKey := ca.issue(t, "kemi server", 2)
	cfg := proxyConfig("listen=tls:127.0.0.1:0",
		`loadmodule "tls.so"`, `loadmodule "xhttp.so"`, `loadmodule "websocket.so"`,
		`modparam("tls", "certificate", "server.pem")`, `modparam("tls", "private_key", "server.key")`,
		`modparam("xhttp", "event_callback", "ksr_xhttp_event")`, `modparam("websocket", "keepalive_mechanism", 1)`)
	k := enginetest.Start(t, cfg, map[string]string{"script.lua": webrtcScript, "server.pem": string(srvCert), "server.key": string(srvKey)})
	p := newPeer(t)

	for _, proto := range []string{"tcp", "tls"} {
		var tcfg *tls.Config
		want := "ws"
		if proto == "tls" {
			tcfg, want = &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"}, "wss"
		}
		addr := k.SIP().Listener(proto).Addr.String()
		c, err := enginetest.DialWS(t, addr+"/ws", tcfg)
		if err != nil {
			t.Fatalf("%s: websocket handshake: %v", proto, err)
		}
		c.Proto = want
		res := c.Do(enginetest.Req{Method: "OPTIONS", URI: "sip:" + addr}, enginetest.Patience)
		if got := relayHdr(res, "X-Transport"); res.StatusCode != 200 || !strings.HasPrefix(got, "pr="+want+" proto="+want+" ") {
			t.Errorf("%s: OPTIONS over the upgraded connection: %d %q", proto, res.StatusCode, got)
		}
		callID := enginetest.RandomID()
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: p.uri(), CallID: callID,
			Headers: []string{"X-Du: sip:" + p.pc.LocalAddr().String()}, Body: "hello"}))
		req, src := p.request("MESSAGE", enginetest.Patience)
		if v := req.GetHeaders("Via"); len(v) != 2 || !strings.HasPrefix(v[1].Value(), "SIP/2.0/"+strings.ToUpper(want)+" ") {
			t.Errorf("%s: Vias at the UDP peer: %v", proto, v)
		}
		p.reply(req, src, 200, "OK", "uas")
		if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.CallID().Value() != callID {
			t.Fatalf("%s: reply over websocket: %v %v", proto, res, err)
		}
	}

	// Plain HTTP: the callback's reply.
	hc, err := net.Dial("tcp", k.SIP().Listener("tcp").Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer hc.Close()
	hc.SetDeadline(time.Now().Add(enginetest.Patience))
	hc.Write([]byte("GET /status HTTP/1.1\r\nHost: kemi\r\n\r\n"))
	b, _ := io.ReadAll(hc)
	if !strings.HasPrefix(string(b), "HTTP/1.1 200 OK\r\n") || !strings.HasSuffix(string(b), "kemi here: /status") {
		t.Errorf("HTTP reply: %q", b)
	}
	// A handshake without the sip subprotocol: 400.
	hc2, err := net.Dial("tcp", k.SIP().Listener("tcp").Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer hc2.Close()
	hc2.SetDeadline(time.Now().Add(enginetest.Patience))
	hc2.Write([]byte("GET /ws HTTP/1.1\r\nHost: kemi\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	b, _ = io.ReadAll(hc2)
	if !strings.HasPrefix(string(b), "HTTP/1.1 400 Bad Request\r\n") {
		t.Errorf("handshake without sip: %q", b)
	}
	// SIP over the same tcp listener still works.
	c := enginetest.Dial(t, "tcp", k.SIP().Listener("tcp").Addr.String())
	if res := c.Do(enginetest.Req{Method: "OPTIONS", URI: "sip:" + k.SIP().Listener("tcp").Addr.String()}, enginetest.Patience); !strings.HasPrefix(relayHdr(res, "X-Transport"), "pr=tcp ") {
		t.Errorf("SIP over tcp with xhttp loaded: %d %q", res.StatusCode, relayHdr(res, "X-Transport"))
	}
}

// sippOptions is a sipp scenario: OPTIONS to kemi, expecting 200.
const sippOptions = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="options over tls">
  <send retrans="500">
    <![CDATA[
      OPTIONS sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:sipp@[local_ip]:[local_port]>;tag=[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
`

// TestSippOverTLS runs sipp over TLS (-t l1, one connection) against the
// tls listener: every OPTIONS gets its 200. Skipped without sipp, or with
// a sipp built without OpenSSL (Debian's).
func TestSippOverTLS(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed")
	}
	k := startTLSKemi(t, false)
	dir := t.TempDir()
	certPEM, keyPEM := k.ca.issue(t, "sipp", 11)
	enginetest.Files(t, dir, map[string]string{"options.xml": sippOptions, "cacert.pem": string(certPEM), "cakey.pem": string(keyPEM)})
	ctx, cancel := context.WithTimeout(context.Background(), 2*enginetest.Patience)
	defer cancel()
	cmd := exec.CommandContext(ctx, sipp, k.Addr("tls"), "-t", "l1", "-sf", "options.xml", "-m", "50", "-r", "200",
		"-i", "127.0.0.1", "-p", "0", "-timeout", "30s", "-timeout_error", "-nostdin", "-trace_stat", "-stf", "stat.csv")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "compile SIPp with OpenSSL") {
		t.Skip("this sipp has no TLS (Debian builds it without OpenSSL)")
	}
	if err != nil {
		t.Fatalf("sipp: %v\n%s", err, lastLines(string(out), 40))
	}
	stat, _ := os.ReadFile(filepath.Join(dir, "stat.csv"))
	t.Logf("sipp over tls: ok\n%s", lastLines(string(stat), 2))
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// TestTLSUnderTCPLimits: tls and ws connections share tcp_max_connections
// with tcp ones, and a tls connection that stops in the middle of a
// message is cut by tcp_rd_timeout, as a tcp one.
func TestTLSUnderTCPLimits(t *testing.T) {
	ca := newTestCA(t, "kemi test CA")
	srvCert, srvKey := ca.issue(t, "kemi server", 2)
	cfg := proxyConfig("listen=tls:127.0.0.1:0", "listen=ws:127.0.0.1:0", "tcp_max_connections=2", "tcp_rd_timeout=1",
		`loadmodule "tls.so"`, `modparam("tls", "certificate", "server.pem")`, `modparam("tls", "private_key", "server.key")`)
	k := enginetest.Start(t, cfg, map[string]string{"script.lua": tlsScript, "server.pem": string(srvCert), "server.key": string(srvKey)})
	dial := func() (*tls.Conn, error) {
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: enginetest.Patience}, Config: &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"}}
		c, err := d.DialContext(context.Background(), "tcp", k.Addr("tls"))
		if err != nil {
			return nil, err
		}
		return c.(*tls.Conn), nil
	}
	c1, err := dial()
	if err != nil {
		t.Fatal(err)
	}
	tc := enginetest.NewClient(t, "tls", c1)
	if r := tc.Do(enginetest.Req{Method: "OPTIONS", URI: "sip:" + k.Addr("tls")}, enginetest.Patience); r.StatusCode != 200 {
		t.Fatalf("OPTIONS: %d", r.StatusCode)
	}
	wc, err := enginetest.DialWS(t, k.Addr("ws"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wc.Do(enginetest.Req{Method: "OPTIONS", URI: "sip:" + k.Addr("ws")}, enginetest.Patience)
	// Third: over the cap, closed at once (the handshake or the first read fails).
	if c3, err := dial(); err == nil {
		c3.SetDeadline(time.Now().Add(enginetest.Patience))
		if _, err := c3.Read(make([]byte, 1)); err == nil {
			t.Fatal("a third connection over tcp_max_connections=2 was served")
		}
		c3.Close()
	}
	if n := k.Status().Counters["tcp_rejected"]; n != 1 {
		t.Errorf("tcp_rejected %d, want 1", n)
	}
	// An incomplete message on the tls connection: cut by tcp_rd_timeout.
	req := tc.Build(enginetest.Req{Method: "OPTIONS"})
	tc.Send(req[:strings.Index(req, "\r\n")+2])
	if _, err := tc.Recv(enginetest.Patience); err == nil {
		t.Fatal("an answer to half a message")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("the tls connection with half a message was not closed")
	}
	if n := k.Status().Counters["tcp_read_timeouts"]; n != 1 {
		t.Errorf("tcp_read_timeouts %d, want 1", n)
	}
}

// BenchmarkOptionsStream: OPTIONS answered by the script (sl), one
// connection per parallel client, over tcp, tls (TLS 1.3) and ws; each op
// is one request and its reply.
func BenchmarkOptionsStream(b *testing.B) {
	ca := newTestCA(b, "kemi bench CA")
	srvCert, srvKey := ca.issue(b, "kemi bench", 2)
	cfg := proxyConfig("debug=1", "listen=tls:127.0.0.1:0", "listen=ws:127.0.0.1:0",
		`loadmodule "tls.so"`, `modparam("tls", "certificate", "server.pem")`, `modparam("tls", "private_key", "server.key")`)
	k := enginetest.Start(b, cfg, map[string]string{
		"script.lua": `function ksr_request_route() KSR.sl.send_reply(200, "OK") end`,
		"server.pem": string(srvCert), "server.key": string(srvKey)},
		func(o *engine.Options) { o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil)) })
	dial := map[string]func() *enginetest.Client{
		"tcp": func() *enginetest.Client { return enginetest.Dial(b, "tcp", k.Addr("tcp")) },
		"tls": func() *enginetest.Client {
			c, err := tls.Dial("tcp", k.Addr("tls"), &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"})
			if err != nil {
				b.Fatal(err)
			}
			return enginetest.NewClient(b, "tls", c)
		},
		"ws": func() *enginetest.Client {
			c, err := enginetest.DialWS(b, k.Addr("ws"), nil)
			if err != nil {
				b.Fatal(err)
			}
			return c
		},
	}
	for _, proto := range []string{"tcp", "tls", "ws"} {
		b.Run(proto, func(b *testing.B) {
			var mu sync.Mutex
			b.RunParallel(func(pb *testing.PB) {
				mu.Lock()
				c := dial[proto]()
				mu.Unlock()
				for pb.Next() {
					if r := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); r.StatusCode != 200 {
						b.Errorf("reply %d", r.StatusCode)
						return
					}
				}
			})
		})
	}
}
