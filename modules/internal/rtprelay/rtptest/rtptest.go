// Package rtptest is what the rtpproxy and rtpengine tests share: a real
// rtpengine started for a test (userspace only, free ports, stopped at
// cleanup), its session count read with the ng "list" command, a UDP
// socket that records the control commands a SIP server sends and
// answers them as a relay would (to compare Kamailio's and kemi's
// commands), and a call driven through a proxy: a UAC and a UAS of our
// own exchanging INVITE/200/ACK/BYE with SDP.
package rtptest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

// Patience bounds every wait on something that must happen.
const Patience = 30 * time.Second

// RTPEngine is a running rtpengine.
type RTPEngine struct {
	NG, UDP string // control addresses: ng protocol, rtpproxy protocol
	mu      sync.Mutex
	log     bytes.Buffer
}

// Log returns what rtpengine has logged so far.
func (r *RTPEngine) Log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

// FreePort returns a UDP port free on 127.0.0.1 when asked.
func FreePort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// FreePorts returns n distinct UDP ports free on 127.0.0.1 when asked.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var out []int
	for i := 0; i < n; i++ {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		out = append(out, c.LocalAddr().(*net.UDPAddr).Port)
	}
	return out
}

// StartRTPEngine starts /usr/bin/rtpengine in userspace mode on
// 127.0.0.1 with both control protocols; it skips the test when rtpengine
// is not installed (tests/run installs rtpengine-daemon).
func StartRTPEngine(t testing.TB) *RTPEngine {
	t.Helper()
	bin, err := exec.LookPath("rtpengine")
	if err != nil {
		t.Skip("rtpengine not installed (apt-get install -y rtpengine-daemon)")
	}
	// The free ports are released before rtpengine binds them: another
	// test process may take one meanwhile, then rtpengine exits and is
	// started again on other ports.
	for try := 1; ; try++ {
		r, exited := startRTPEngine(t, bin)
		if !exited {
			return r
		}
		if try == 3 {
			t.Fatalf("rtpengine exited at start:\n%s", r.Log())
		}
	}
}

// startRTPEngine starts rtpengine once and waits until it answers a ping
// (exited is true when it stopped instead).
func startRTPEngine(t testing.TB, bin string) (r *RTPEngine, exited bool) {
	t.Helper()
	dir := t.TempDir()
	ports := FreePorts(t, 2)
	ng, udp := ports[0], ports[1]
	// media ports below the ephemeral range the control ports come from
	base := 10000 + (os.Getpid()*7+ng)%20000
	r = &RTPEngine{NG: fmt.Sprintf("127.0.0.1:%d", ng), UDP: fmt.Sprintf("127.0.0.1:%d", udp)}
	cmd := exec.Command(bin, "--config-file=none", "--table=-1", "--foreground", "--log-stderr", "--interface=127.0.0.1",
		"--listen-ng="+r.NG, "--listen-udp="+r.UDP, "--no-redis-required", "--delete-delay=0",
		"--port-min="+strconv.Itoa(base), "--port-max="+strconv.Itoa(base+200),
		"--pidfile="+filepath.Join(dir, "rtpengine.pid"))
	cmd.Stdout = lockedWriter{&r.mu, &r.log}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rtpengine: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(Patience):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("rtpengine log:\n%s", r.Log())
		}
	})
	// "Startup complete" in its own log: every socket is bound (a ping
	// alone may be answered by another test's rtpengine on that port).
	deadline := time.Now().Add(Patience)
	for {
		select {
		case <-done:
			return r, true
		default:
		}
		up := strings.Contains(r.Log(), "Startup complete")
		if _, err := NG(r.NG, "d7:command4:pinge", 200*time.Millisecond); err == nil && up {
			return r, false
		}
		if time.Now().After(deadline) {
			t.Fatalf("rtpengine does not answer ping:\n%s", r.Log())
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// NG sends one ng command (bencoded) to addr and returns the reply
// without its cookie.
func NG(addr, cmd string, wait time.Duration) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	cookie := "t" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := c.Write([]byte(cookie + " " + cmd)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 65536)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		if r, ok := strings.CutPrefix(string(buf[:n]), cookie+" "); ok {
			return r, nil
		}
	}
}

var callsRe = regexp.MustCompile(`^d5:callsl((?:\d+:)?.*)e`)

// Calls returns the Call-IDs rtpengine holds (ng "list").
func (r *RTPEngine) Calls(t testing.TB) []string {
	t.Helper()
	rep, err := NG(r.NG, "d7:command4:list5:limiti1000ee", Patience)
	if err != nil {
		t.Fatalf("rtpengine list: %v", err)
	}
	i := strings.Index(rep, "5:callsl")
	if i < 0 {
		t.Fatalf("rtpengine list: %q", rep)
	}
	var out []string
	for s := rep[i+8:]; len(s) > 0 && s[0] != 'e'; {
		k := strings.IndexByte(s, ':')
		n, _ := strconv.Atoi(s[:k])
		out = append(out, s[k+1:k+1+n])
		s = s[k+1+n:]
	}
	return out
}

// WaitCalls waits until rtpengine holds n calls.
func (r *RTPEngine) WaitCalls(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for {
		c := r.Calls(t)
		if len(c) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rtpengine holds %d calls %q, want %d", len(c), c, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Recorder is a UDP socket standing for a relay: it records each command
// (without its cookie) and answers with Answer's reply.
type Recorder struct {
	Addr   string
	Answer func(cmd string) string
	mu     sync.Mutex
	cmds   []string
	pc     net.PacketConn
}

// NewRecorder listens on a free port; closed at cleanup.
func NewRecorder(t testing.TB, answer func(cmd string) string) *Recorder {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Recorder{Addr: pc.LocalAddr().String(), Answer: answer}
	pc.Close()
	r.Reopen(t)
	return r
}

// Take returns the commands recorded so far and forgets them.
func (r *Recorder) Take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.cmds
	r.cmds = nil
	return c
}

// UA is one UDP socket of a test user agent.
type UA struct {
	pc   net.PacketConn
	Addr string
	t    testing.TB
}

// NewUA listens on a free port; closed at cleanup.
func NewUA(t testing.TB) *UA {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return &UA{pc: pc, Addr: pc.LocalAddr().String(), t: t}
}

// Send sends raw to addr.
func (u *UA) Send(addr, raw string) {
	u.t.Helper()
	a, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		u.t.Fatal(err)
	}
	if _, err := u.pc.WriteTo([]byte(raw), a); err != nil {
		u.t.Fatal(err)
	}
}

// Recv returns the next message from the address from that match
// accepts (others are skipped: retransmissions, 100 Trying, late
// messages of the other server).
func (u *UA) Recv(from string, match func(sip.Message) bool) sip.Message {
	u.t.Helper()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(Patience)
	for {
		u.pc.SetReadDeadline(deadline)
		n, src, err := u.pc.ReadFrom(buf)
		if err != nil {
			u.t.Fatalf("%s: no message: %v", u.Addr, err)
		}
		if src.String() != from {
			continue
		}
		m, err := sip.ParseMessage(bytes.Clone(buf[:n]))
		if err != nil {
			continue
		}
		if match(m) {
			return m
		}
	}
}

// Response matches replies with code, Request requests of method.
func Response(code int) func(sip.Message) bool {
	return func(m sip.Message) bool {
		r, ok := m.(*sip.Response)
		return ok && int(r.StatusCode) == code
	}
}

func Request(method string) func(sip.Message) bool {
	return func(m sip.Message) bool {
		r, ok := m.(*sip.Request)
		return ok && string(r.Method) == method
	}
}

// Call is one dialog's fixed identity, the same for every server it is
// sent through.
type Call struct {
	ID, FromTag, ToTag string
	Headers            []string // added to every request (X-Flags, ...)
	// Offer and Answer are the SDP bodies; SDP("10.0.0.1", 10000) and
	// SDP("10.0.0.2", 20000) when empty.
	Offer, Answer string
}

func (c Call) bodies() (offer, answer string) {
	offer, answer = c.Offer, c.Answer
	if offer == "" {
		offer = SDP("10.0.0.1", 10000)
	}
	if answer == "" {
		answer = SDP("10.0.0.2", 20000)
	}
	return offer, answer
}

// SDP returns a small audio offer from ip:port.
func SDP(ip string, port int) string {
	return fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp:%d\r\n",
		ip, ip, port, port+1)
}

// Request builds a request of the call from uac through proxy to uas
// (X-Next names the UAS, where the test script relays everything).
func (c Call) Request(method string, cseq int, uac *UA, uas *UA, withTo bool, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:bob@%s SIP/2.0\r\n", method, uas.Addr)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s%d%s;rport\r\n", uac.Addr, c.ID, cseq, strings.ToLower(method))
	fmt.Fprintf(&b, "From: <sip:alice@example.com>;tag=%s\r\n", c.FromTag)
	if withTo {
		fmt.Fprintf(&b, "To: <sip:bob@example.com>;tag=%s\r\n", c.ToTag)
	} else {
		b.WriteString("To: <sip:bob@example.com>\r\n")
	}
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\n", c.ID, cseq, method)
	fmt.Fprintf(&b, "Contact: <sip:alice@%s>\r\nX-Next: sip:%s\r\n", uac.Addr, uas.Addr)
	for _, h := range c.Headers {
		b.WriteString(h + "\r\n")
	}
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// Reply builds the UAS's reply to req (its Via and Record-Route copied,
// the call's To tag).
func (c Call) Reply(req sip.Message, code int, reason, body string) string {
	r := req.(*sip.Request)
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, h := range r.GetHeaders("Via") {
		b.WriteString("Via: " + h.Value() + "\r\n")
	}
	for _, h := range r.GetHeaders("Record-Route") {
		b.WriteString("Record-Route: " + h.Value() + "\r\n")
	}
	b.WriteString("From: " + r.From().Value() + "\r\n")
	fmt.Fprintf(&b, "To: <sip:bob@example.com>;tag=%s\r\n", c.ToTag)
	fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: %s\r\n", c.ID, r.CSeq().Value())
	b.WriteString("Contact: <sip:bob@127.0.0.1>\r\n")
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// Flow is what a call through the proxy showed: the bodies each side
// received, and the X-Manage headers (the manage function's results).
type Flow struct {
	Invite, OK, Ack, Bye string // bodies as received
	Results              []string
}

func results(m sip.Message, out *[]string) {
	for _, h := range m.GetHeaders("X-Manage") {
		*out = append(*out, h.Value())
	}
}

// Run drives a call through proxy: INVITE (with offer unless late), 200
// (with answer, or offer when late), ACK (with answer when late), BYE and
// its 200. inBetween, when not nil, runs once the call is set up.
func (c Call) Run(proxy string, uac, uas *UA, late bool, inBetween func()) Flow {
	var f Flow
	offer, answer := c.bodies()
	ibody := offer
	if late {
		ibody = ""
	}
	uac.Send(proxy, c.Request("INVITE", 1, uac, uas, false, ibody))
	inv := uas.Recv(proxy, Request("INVITE"))
	f.Invite = string(inv.Body())
	results(inv, &f.Results)
	okBody := answer
	if late {
		okBody = offer
	}
	uas.Send(proxy, c.Reply(inv, 200, "OK", okBody))
	ok := uac.Recv(proxy, Response(200))
	f.OK = string(ok.Body())
	results(ok, &f.Results)
	abody := ""
	if late {
		abody = answer
	}
	uac.Send(proxy, c.Request("ACK", 1, uac, uas, true, abody))
	ack := uas.Recv(proxy, Request("ACK"))
	f.Ack = string(ack.Body())
	results(ack, &f.Results)
	if inBetween != nil {
		inBetween()
	}
	uac.Send(proxy, c.Request("BYE", 2, uac, uas, true, ""))
	bye := uas.Recv(proxy, Request("BYE"))
	results(bye, &f.Results)
	uas.Send(proxy, c.Reply(bye, 200, "OK", ""))
	uac.Recv(proxy, Response(200))
	return f
}

// Rejected drives an INVITE the UAS rejects with 486.
func (c Call) Rejected(proxy string, uac, uas *UA) Flow {
	var f Flow
	offer, _ := c.bodies()
	uac.Send(proxy, c.Request("INVITE", 1, uac, uas, false, offer))
	inv := uas.Recv(proxy, Request("INVITE"))
	f.Invite = string(inv.Body())
	results(inv, &f.Results)
	uas.Send(proxy, c.Reply(inv, 486, "Busy Here", ""))
	busy := uac.Recv(proxy, Response(486))
	results(busy, &f.Results)
	// the ACK of a negative reply: the INVITE's branch, hop by hop
	ack := strings.Replace(c.Request("ACK", 1, uac, uas, true, ""), ";branch=z9hG4bK"+c.ID+"1ack;", ";branch=z9hG4bK"+c.ID+"1invite;", 1)
	uac.Send(proxy, ack)
	return f
}

// Script is the test proxy's Lua: every request and every reply above
// 100 goes through manage, the body of a Lua function returning the
// module's result (such as return KSR.rtpproxy.rtpproxy_manage("co")),
// its result added as X-Manage, and every request is relayed to its
// X-Next.
func Script(manage string) string {
	return `
function relay_manage()
	` + manage + `
end

function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	local r = relay_manage()
	KSR.hdr.append("X-Manage: " .. KSR.pv.get("$rm") .. " " .. tostring(r) .. "\r\n")
	KSR.tm.t_on_reply("ksr_onreply")
	KSR.pv.sets("$du", KSR.hdr.get("X-Next"))
	KSR.tm.t_relay()
end

function ksr_onreply()
	local s = KSR.kx.get_status()
	if s > 100 then
		local r = relay_manage()
		KSR.hdr.append("X-Manage: " .. s .. " " .. tostring(r) .. "\r\n")
	end
end
`
}

// RTPProxyAnswer answers the rtpproxy protocol as rtpengine does, with
// fixed ports: version 20040107, capability 20050322 only, U with port
// 35000 and L with 35002 on 198.51.100.9, 0 for the rest.
func RTPProxyAnswer(cmd string) string {
	switch {
	case cmd == "V":
		return "20040107\n"
	case cmd == "VF 20050322":
		return "1\n"
	case strings.HasPrefix(cmd, "VF"):
		return "0\n"
	case strings.HasPrefix(cmd, "U"):
		return "35000 198.51.100.9\n"
	case strings.HasPrefix(cmd, "L"):
		return "35002 198.51.100.9\n"
	}
	return "0\n"
}

// bstr reads the bencoded string after key in d ("" when absent).
func bstr(d, key string) string {
	k := strconv.Itoa(len(key)) + ":" + key
	i := strings.Index(d, k)
	if i < 0 {
		return ""
	}
	s := d[i+len(k):]
	j := strings.IndexByte(s, ':')
	if j < 0 {
		return ""
	}
	n, err := strconv.Atoi(s[:j])
	if err != nil || j+1+n > len(s) {
		return ""
	}
	return s[j+1 : j+1+n]
}

// NGAnswer answers the ng protocol: pong to ping, the offered SDP with
// "a=relayed:<command>" appended to offer and answer, ok to the rest.
func NGAnswer(cmd string) string {
	switch c := bstr(cmd, "command"); c {
	case "ping":
		return "d6:result4:ponge"
	case "offer", "answer":
		sdp := bstr(cmd, "sdp") + "a=relayed:" + c + "\r\n"
		return "d3:sdp" + strconv.Itoa(len(sdp)) + ":" + sdp + "6:result2:oke"
	case "query":
		return "d7:createdi1700000000e4:tagsd4:ftagd5:label1:a6:mediasld5:indexi1e4:type5:audio5:flagsl4:sendeeee" +
			"e6:quoted6:a\"b\\c\t5:emptyde6:result2:ok" +
			"6:totalsd3:RTPd5:bytesi100e7:packetsi10e6:errorsi0ee4:RTCPd5:bytesi20e7:packetsi2eeee"
	}
	return "d6:result2:oke"
}

// Calls are the flows SideBySide drives, each on its own Call-ID.
var sideCalls = []struct {
	name string
	run  func(c Call, proxy string, uac, uas *UA) Flow
}{
	{"call", func(c Call, p string, uac, uas *UA) Flow { return c.Run(p, uac, uas, false, nil) }},
	{"late offer", func(c Call, p string, uac, uas *UA) Flow { return c.Run(p, uac, uas, true, nil) }},
	{"rejected", func(c Call, p string, uac, uas *UA) Flow { return c.Rejected(p, uac, uas) }},
}

// MultiOffer and MultiAnswer are SDP bodies with several streams: a
// session c= and a stream's own c=, a disabled stream (port 0), a
// stream without a=rtcp, a held session address (0.0.0.0) and an IPv6
// stream.
const (
	MultiOffer = "v=0\r\no=- 7 7 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n" +
		"m=audio 10000 RTP/AVP 0 8\r\na=rtcp:10001\r\n" +
		"m=video 10002 RTP/AVP 96\r\nc=IN IP4 10.0.0.9\r\na=rtpmap:96 H264/90000\r\n" +
		"m=audio 0 RTP/AVP 0\r\n"
	MultiAnswer = "v=0\r\no=- 8 8 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" +
		"m=audio 20000 RTP/AVP 0\r\n" +
		"m=video 20002 RTP/AVP 96\r\nc=IN IP6 2001:db8::5\r\na=rtcp:20003 IN IP6 2001:db8::5\r\n" +
		"m=audio 0 RTP/AVP 0\r\n"
)

// SideBySide drives the same calls through Kamailio 5.6 and kemi running
// cfg (which loads the module under test with its socket at rec.Addr)
// and Script(manage), and fails on any difference in the bodies each side
// received, the manage results, or the control commands rec recorded
// (cookies aside; version queries and pings, which Kamailio sends from
// every process, left out). bodies, when given, are the offer and the
// answer.
func SideBySide(t *testing.T, p interface {
	Addrs() (kam, kemi string)
}, rec *Recorder, skip func(cmd string) bool, bodies ...string) {
	t.Helper()
	kam, kemi := p.Addrs()
	uac, uas := NewUA(t), NewUA(t)
	take := func() []string {
		var out []string
		for _, c := range rec.Take() {
			if !skip(c) {
				out = append(out, c)
			}
		}
		return out
	}
	take()
	for i, sc := range sideCalls {
		c := Call{ID: fmt.Sprintf("sbs%d-%s", i, strconv.FormatInt(time.Now().UnixNano(), 36)), FromTag: "ftag" + strconv.Itoa(i), ToTag: "ttag" + strconv.Itoa(i)}
		if len(bodies) == 2 {
			c.Offer, c.Answer = bodies[0], bodies[1]
		}
		fk := sc.run(c, kam, uac, uas)
		ck := take()
		fm := sc.run(c, kemi, uac, uas)
		cm := take()
		if fmt.Sprintf("%q", fk) != fmt.Sprintf("%q", fm) {
			t.Errorf("%s: what the UAs received differs:\n kamailio: %q\n     kemi: %q", sc.name, fk, fm)
		}
		if strings.Join(ck, "\n") != strings.Join(cm, "\n") {
			t.Errorf("%s: control commands differ:\n kamailio: %q\n     kemi: %q", sc.name, ck, cm)
		}
		t.Logf("%s: results %q, commands %q", sc.name, fm.Results, cm)
	}
}

// RPCScript answers a request with X-RPC by running it with jsonrpcs's
// jsonrpc_exec and answering 200 with the reply as the reason phrase
// (Kamailio's side of RPCSideBySide); other requests get 200.
const RPCScript = `
function ksr_request_route()
	local req = KSR.hdr.get("X-RPC")
	if req == nil then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.jsonrpcs.exec(req)
	local body = KSR.pv.get("$jsonrpl(body)") or "none"
	KSR.sl.send_reply(200, (string.gsub(body, "[\r\n\t]", "")))
end
`

// RPCCall is one RPC command of RPCSideBySide.
type RPCCall struct {
	Method string
	Params []any
}

// RPCSideBySide sends each call to Kamailio (through jsonrpc_exec, the
// pair runs RPCScript) and to kemi's JSON-RPC server and fails on a
// difference in results or faults. Tick counts: rtpengine's
// recheck_ticks (seconds left) may be a second apart; rtpproxy's recheck
// is an absolute tick count, which Kamailio starts from an arbitrary
// value: only whether it is positive, 0 or -1 is compared.
func RPCSideBySide(t *testing.T, kam *enginetest.Client, rpcURL string, calls []RPCCall) {
	t.Helper()
	for i, c := range calls {
		m := map[string]any{"jsonrpc": "2.0", "method": c.Method, "id": 1}
		if c.Params != nil {
			m["params"] = c.Params
		}
		req, _ := json.Marshal(m)
		var kres *sip.Response
		// Kamailio's RPC commands answer "Initializing - try later" until
		// every process is up (sr_instance_ready)
		for deadline := time.Now().Add(Patience); ; {
			kres = kam.Do(enginetest.Req{Method: "MESSAGE", Headers: []string{"X-RPC: " + string(req)}}, Patience)
			if kres == nil {
				t.Fatalf("%s: kamailio did not answer", req)
			}
			if !strings.Contains(kres.Reason, "Initializing - try later") || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		var k struct {
			Result any
			Error  *struct {
				Code    int
				Message string
			}
		}
		if err := json.Unmarshal([]byte(kres.Reason), &k); err != nil {
			t.Fatalf("%s: kamailio replied %q: %v", req, kres.Reason, err)
		}
		raw, err := jsonrpc.Call(context.Background(), rpcURL, c.Method, c.Params)
		var f *jsonrpc.Fault
		switch {
		case errors.As(err, &f):
			if k.Error == nil || k.Error.Code != f.Code || k.Error.Message != f.Message {
				t.Errorf("call %d %s: kamailio %s, kemi fault %d %q", i+1, req, kres.Reason, f.Code, f.Message)
			}
		case err != nil:
			t.Fatalf("%s: kemi: %v", req, err)
		default:
			var got any
			json.Unmarshal(raw, &got)
			if k.Error != nil || !reflect.DeepEqual(ticksOff(k.Result), ticksOff(got)) || ticksSkew(k.Result, got) > 1 {
				t.Errorf("call %d %s:\nkamailio %s\nkemi     %s", i+1, req, kres.Reason, raw)
			} else {
				t.Logf("%s: %s", req, raw)
			}
		}
	}
}

func isTicks(k string) bool { return k == "recheck" || k == "recheck_ticks" }

// ticksOff returns v with the tick counts zeroed.
func ticksOff(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = ticksOff(x)
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			if _, num := x.(float64); num && isTicks(k) && x.(float64) > 0 {
				x = float64(1)
			}
			out[k] = ticksOff(x)
		}
		return out
	}
	return v
}

// ticksSkew is the largest difference of the tick counts of a and b.
func ticksSkew(a, b any) float64 {
	var d float64
	var walk func(a, b any)
	walk = func(a, b any) {
		switch av := a.(type) {
		case []any:
			bv, _ := b.([]any)
			for i := range av {
				if i < len(bv) {
					walk(av[i], bv[i])
				}
			}
		case map[string]any:
			bv, _ := b.(map[string]any)
			for k, x := range av {
				if k == "recheck" {
					continue
				}
				if isTicks(k) {
					xf, _ := x.(float64)
					yf, _ := bv[k].(float64)
					d = max(d, math.Abs(xf-yf))
					continue
				}
				walk(x, bv[k])
			}
		}
	}
	walk(a, b)
	return d
}

// CallIDFor returns a Call-ID starting with prefix that the relay choice
// (the byte sum's low byte modulo the weights) sends to the relay at
// position pos of n relays of weight 1.
func CallIDFor(prefix string, pos, n int) string {
	for i := 0; ; i++ {
		id := prefix + strconv.Itoa(i)
		sum := 0
		for _, c := range []byte(id) {
			sum += int(c)
		}
		if (sum&0xff)%n == pos {
			return id
		}
	}
}

// Reopen listens again on the address of a closed recorder.
func (r *Recorder) Reopen(t testing.TB) {
	pc, err := net.ListenPacket("udp", r.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	r.pc = pc
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			cookie, cmd, _ := strings.Cut(string(buf[:n]), " ")
			r.mu.Lock()
			r.cmds = append(r.cmds, cmd)
			r.mu.Unlock()
			pc.WriteTo([]byte(cookie+" "+r.Answer(cmd)), from)
		}
	}()
}

// Close stops the recorder: what is sent to it gets an ICMP error.
func (r *Recorder) Close() { r.pc.Close() }

// ManagedCalls runs the three calls both relay modules' tests drive
// through a proxy whose script calls its *_manage function on every
// message: an early offer (INVITE with SDP, answered 200), a late offer
// (200 offers, ACK answers) and a call rejected with 486. checkRelayed
// checks an SDP the proxy passed on (what, the body, the phone's original
// media port); rtpengine must hold the call during each dialog and none
// after it; results are the manage functions' return codes per message.
func ManagedCalls(t *testing.T, re *RTPEngine, proxy string, checkRelayed func(t *testing.T, what, sdp string, orig int)) {
	t.Helper()
	uac, uas := NewUA(t), NewUA(t)
	call := Call{ID: "call-" + enginetest.RandomID(), FromTag: "ft1", ToTag: "tt1"}
	f := call.Run(proxy, uac, uas, false, func() { re.WaitCalls(t, 1) })
	checkRelayed(t, "INVITE", f.Invite, 10000)
	checkRelayed(t, "200", f.OK, 20000)
	if f.Ack != "" {
		t.Errorf("ACK got a body: %q", f.Ack)
	}
	if got := strings.Join(f.Results, ", "); got != "INVITE 1, 200 1, ACK -1, BYE 1" {
		t.Errorf("manage results: %s", got)
	}
	re.WaitCalls(t, 0)

	// A late offer: 200 carries the offer, ACK the answer.
	late := Call{ID: "late-" + enginetest.RandomID(), FromTag: "ft2", ToTag: "tt2"}
	f = late.Run(proxy, uac, uas, true, func() { re.WaitCalls(t, 1) })
	checkRelayed(t, "200 (offer)", f.OK, 10000)
	checkRelayed(t, "ACK (answer)", f.Ack, 20000)
	if got := strings.Join(f.Results, ", "); got != "INVITE -1, 200 1, ACK 1, BYE 1" {
		t.Errorf("manage results: %s", got)
	}
	re.WaitCalls(t, 0)

	// A rejected call: the 486 deletes the session.
	busy := Call{ID: "busy-" + enginetest.RandomID(), FromTag: "ft3", ToTag: "tt3"}
	f = busy.Rejected(proxy, uac, uas)
	checkRelayed(t, "INVITE", f.Invite, 10000)
	if got := strings.Join(f.Results, ", "); got != "INVITE 1, 486 1" {
		t.Errorf("manage results: %s", got)
	}
	re.WaitCalls(t, 0)
}
