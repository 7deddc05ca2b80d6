package conformance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
)

// transportCfg is one kamailio.cfg for both engines: udp, tcp and tls
// listeners, the tls module with a tls.cfg, and WebSocket through xhttp +
// websocket on the tcp and tls listeners (Kamailio's WebRTC pattern).
const transportCfg = `#!KAMAILIO
debug=2
children=2
enable_tls=yes
tcp_accept_no_cl=yes
%s
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "pv.so"
loadmodule "rr.so"
loadmodule "tls.so"
loadmodule "xhttp.so"
loadmodule "websocket.so"
loadmodule "app_lua.so"
modparam("tls", "config", "tls.cfg")
modparam("xhttp", "event_callback", "ksr_xhttp_event")
modparam("app_lua", "load", "script.lua")
cfgengine "lua"
`

const transportTLSCfg = `[server:default]
method = TLSv1.2+
certificate = server.pem
private_key = server.key

[client:default]
verify_certificate = no
`

const transportScript = `
function ksr_request_route()
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
		KSR.hdr.append_to_reply("X-Transport: pr=" .. KSR.pv.get("$pr") .. " proto=" .. KSR.pv.get("$proto") ..
			" tcp=" .. tostring(KSR.is_TCP()) .. " tls=" .. tostring(KSR.is_TLS()) .. " ws=" .. tostring(KSR.is_WS()) ..
			" wss=" .. tostring(KSR.is_WSS()) .. " wsx=" .. tostring(KSR.is_WSX()) .. "\r\n")
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.rr.record_route()
	KSR.pv.sets("$du", KSR.pv.get("$hdr(X-Du)"))
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end

function ksr_xhttp_event(evname)
	if KSR.websocket.handle_handshake() > 0 then return end
	KSR.xhttp.xhttp_reply(404, "Not Found", "", "")
end
`

// selfSigned returns a PEM certificate and key for 127.0.0.1.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "conformance"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// transportEngine is one engine's listening ports.
type transportEngine struct {
	name          string
	udp, tcp, tls int
}

// TestTransportsSideBySide runs transportCfg under kemi and Kamailio 5.6:
// OPTIONS over tls, ws (xhttp on tcp) and wss (xhttp on tls) must show
// the same transport to the script, and a MESSAGE relayed from each to a
// UDP peer must arrive with the same Via transports and Record-Route
// headers (double Record-Route), addresses normalised.
func TestTransportsSideBySide(t *testing.T) {
	bin, mpath := findKamailio(t)
	for _, m := range []string{"tls.so", "xhttp.so", "websocket.so"} {
		if _, err := os.Stat(filepath.Join(mpath, m)); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("CI is set: %s missing (apt-get install kamailio-tls-modules kamailio-websocket-modules)", m)
			}
			t.Skipf("%s missing (apt-get install kamailio-tls-modules kamailio-websocket-modules)", m)
		}
	}
	certPEM, keyPEM := selfSigned(t)
	files := map[string]string{"tls.cfg": transportTLSCfg, "script.lua": transportScript,
		"server.pem": string(certPEM), "server.key": string(keyPEM)}

	// kemi
	kp := transportEngine{name: "kemi", udp: freePort(t), tcp: freePort(t), tls: freePort(t)}
	enginetest.Start(t, fmt.Sprintf(transportCfg, listens(kp)), files)

	// Kamailio
	dir := t.TempDir()
	enginetest.Files(t, dir, files)
	kam := transportEngine{name: "kamailio", udp: freePort(t), tcp: freePort(t), tls: freePort(t)}
	enginetest.Files(t, dir, map[string]string{"kamailio.cfg": fmt.Sprintf(transportCfg, listens(kam))})
	startKamailioPlain(t, bin, mpath, dir)

	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	results := map[string][]string{}
	for _, e := range []transportEngine{kp, kam} {
		results[e.name] = transportRun(t, e, peer)
	}
	a, b := results["kemi"], results["kamailio"]
	for i := range max(len(a), len(b)) {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			t.Errorf("differs:\n kemi:     %s\n kamailio: %s", x, y)
		} else {
			t.Logf("same: %s", x)
		}
	}
}

func listens(e transportEngine) string {
	return fmt.Sprintf("listen=udp:127.0.0.1:%d\nlisten=tcp:127.0.0.1:%d\nlisten=tls:127.0.0.1:%d", e.udp, e.tcp, e.tls)
}

// transportRun sends OPTIONS and a relayed MESSAGE over tls, ws and wss,
// and returns what was observed, normalised.
func transportRun(t *testing.T, e transportEngine, peer net.PacketConn) []string {
	norm := func(s string) string {
		s = strings.ReplaceAll(s, "127.0.0.1:"+strconv.Itoa(e.tls), "TLSPORT")
		s = strings.ReplaceAll(s, "127.0.0.1:"+strconv.Itoa(e.tcp), "TCPPORT")
		s = strings.ReplaceAll(s, "127.0.0.1:"+strconv.Itoa(e.udp), "UDPPORT")
		s = regexp.MustCompile(`ftag=[^;>]*`).ReplaceAllString(s, "ftag=F")
		s = regexp.MustCompile(`branch=[^;]*`).ReplaceAllString(s, "branch=B")
		s = regexp.MustCompile(`127\.0\.0\.1:\d+`).ReplaceAllString(s, "CLIENT")
		s = regexp.MustCompile(`received=[^;]*`).ReplaceAllString(s, "received=R")
		s = regexp.MustCompile(`rport=\d+`).ReplaceAllString(s, "rport=P")
		return s
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: true}
	var out []string
	for _, proto := range []string{"tls", "ws", "wss"} {
		var c *enginetest.Client
		deadline := time.Now().Add(enginetest.Patience)
		for c == nil { // the engine may still be starting
			var err error
			switch proto {
			case "tls":
				var tc *tls.Conn
				if tc, err = tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(e.tls), tlsCfg); err == nil {
					c = enginetest.NewClient(t, "tls", tc)
				}
			case "ws":
				c, err = enginetest.DialWS(t, "127.0.0.1:"+strconv.Itoa(e.tcp)+"/", nil)
			case "wss":
				c, err = enginetest.DialWS(t, "127.0.0.1:"+strconv.Itoa(e.tls)+"/", tlsCfg)
			}
			if err != nil {
				if time.Now().After(deadline) {
					t.Fatalf("%s %s: %v", e.name, proto, err)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		port := e.tls
		if proto == "ws" {
			port = e.tcp
		}
		res := c.Do(enginetest.Req{Method: "OPTIONS", URI: "sip:127.0.0.1:" + strconv.Itoa(port)}, enginetest.Patience)
		h := ""
		if x := res.GetHeader("X-Transport"); x != nil {
			h = x.Value()
		}
		out = append(out, fmt.Sprintf("%s OPTIONS: %d %s", proto, res.StatusCode, h))

		callID := enginetest.RandomID()
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: "sip:bob@" + peer.LocalAddr().String(), CallID: callID,
			Headers: []string{"X-Du: sip:" + peer.LocalAddr().String()}, Body: "hi"}))
		req, src := peerRecv(t, peer, callID)
		var vias, rrs []string
		for _, v := range req.GetHeaders("Via") {
			vias = append(vias, normVia(norm(v.Value())))
		}
		for _, v := range req.GetHeaders("Record-Route") {
			rrs = append(rrs, norm(v.Value()))
		}
		out = append(out, fmt.Sprintf("%s MESSAGE at the UDP peer: Via %s", proto, strings.Join(vias, " | ")),
			fmt.Sprintf("%s MESSAGE at the UDP peer: Record-Route %s", proto, strings.Join(rrs, " | ")))
		peer.WriteTo([]byte(okFor(req)), src)
		res, err := c.RecvResponse(enginetest.Patience)
		if err != nil {
			out = append(out, fmt.Sprintf("%s reply: %v", proto, err))
		} else {
			out = append(out, fmt.Sprintf("%s reply: %d", proto, res.StatusCode))
		}
	}
	return out
}

// normVia sorts a Via's parameters (kemi and Kamailio put received in
// different places) and drops Kamailio's ;i= (the id of the TCP/TLS
// connection the request came on, which it adds for its own use).
func normVia(v string) string {
	parts := strings.Split(v, ";")
	params := parts[1:]
	kept := params[:0]
	for _, p := range params {
		if !strings.HasPrefix(p, "i=") {
			kept = append(kept, p)
		}
	}
	sort.Strings(kept)
	return strings.Join(append([]string{parts[0]}, kept...), ";")
}

func peerRecv(t *testing.T, pc net.PacketConn, callID string) (*sip.Request, net.Addr) {
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(enginetest.Patience))
	for {
		n, src, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("UDP peer: %v", err)
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		if r, ok := m.(*sip.Request); ok && r.CallID() != nil && r.CallID().Value() == callID {
			return r, src
		}
	}
}

func okFor(req *sip.Request) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, h := range req.GetHeaders("Via") {
		b.WriteString("Via: " + h.Value() + "\r\n")
	}
	b.WriteString("From: " + req.From().Value() + "\r\nTo: " + req.To().Value() + ";tag=peer\r\n")
	b.WriteString("Call-ID: " + req.CallID().Value() + "\r\nCSeq: " + req.CSeq().Value() + "\r\nContent-Length: 0\r\n\r\n")
	return b.String()
}

// startKamailioPlain runs Kamailio on dir/kamailio.cfg (its listen lines
// included) until cleanup.
func startKamailioPlain(t *testing.T, bin, mpath, dir string) {
	run := filepath.Join(dir, "run")
	os.Mkdir(run, 0o755)
	log := &syncBuffer{}
	cmd := exec.Command(bin, "-DD", "-E", "-f", filepath.Join(dir, "kamailio.cfg"), "-L", mpath,
		"-Y", run, "-P", filepath.Join(run, "kamailio.pid"), "-w", dir, "-m", "64", "-M", "8")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kamailio: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("kamailio log:\n%s", lastLines(log.String(), 60))
		}
	})
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
