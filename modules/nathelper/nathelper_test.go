package nathelper

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"kemi/jsonrpc"
	"kemi/ksr/ksrtest"
	"kemi/modules/usrloc"
	"kemi/sipnet"
	"kemi/timers"
)

// sent records what the keepalives send.
type sent struct {
	mu   sync.Mutex
	msgs []string // "socket dst payload"
}

func (s *sent) add(socket string, dst netip.AddrPort, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, socket+" "+dst.String()+" "+string(b))
}

func (s *sent) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.msgs
	s.msgs = nil
	return out
}

// keepalives provisions usrloc (nat_bflag 6) and nathelper with set on a
// virtual clock and starts them.
func keepalives(t *testing.T, set func(*Settings)) (*Module, *usrloc.Module, *timers.Fake, *sent) {
	t.Helper()
	clk := timers.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := &sent{}
	ul := usrloc.New()
	ul.Settings().Preload = []string{"location"}
	ul.Settings().NatBflag = 6
	m := New(ul)
	m.set.NatpingInterval = 3
	set(&m.set)
	ksrtest.DepsWith(t, io.Discard, ksrtest.Options{Clock: clk, Sent: s.add}, ul, m)
	for _, st := range []interface {
		Start(context.Context) error
		Stop(context.Context) error
	}{ul, m} {
		if err := st.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Stop(context.Background()) })
	}
	return m, ul, clk, s
}

func register(t *testing.T, ul *usrloc.Module, aor, contact, received string, cflags int) {
	t.Helper()
	d, err := ul.Domain("location")
	if err != nil {
		t.Fatal(err)
	}
	err = ul.Tx(d, aor, func(cs []*usrloc.Contact) ([]*usrloc.Contact, error) {
		return append(cs, &usrloc.Contact{Ruid: "ruid-" + aor, AOR: aor, Contact: contact, Received: received,
			Expires: ul.Now() + 3600, Q: -1, CFlags: cflags, Socket: "udp:127.0.0.1:5060", Methods: -1}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tick moves the virtual clock one second and waits until the keepalive
// goroutine has run its tick and waits again.
func tick(clk *timers.Fake) {
	clk.BlockUntil(1)
	clk.Advance(time.Second)
	clk.BlockUntil(1)
}

// TestKeepalivesOnTheVirtualClock: with natping_interval 3 each NATed
// contact gets one keepalive every three seconds of the engine's clock,
// to its received address; a contact without the NAT flag gets none with
// ping_nated_only; sipping_bflag chooses OPTIONS over the UDP ping; and
// nathelper.enable_ping stops and restarts them.
func TestKeepalivesOnTheVirtualClock(t *testing.T) {
	m, ul, clk, s := keepalives(t, func(st *Settings) {
		st.PingNatedOnly = true
		st.SippingBflag = 7
		st.SippingFrom = "sip:pinger@kemi.test"
	})
	register(t, ul, "alice", "sip:alice@10.0.0.5:5070", "sip:198.51.100.1:40000", 1<<6|1<<7)
	register(t, ul, "bob", "sip:bob@10.0.0.6", "sip:198.51.100.2:40001", 1<<6)
	register(t, ul, "carol", "sip:carol@192.0.2.9", "", 0)
	var all []string
	for i := 0; i < 3; i++ {
		tick(clk)
		all = append(all, s.take()...)
	}
	if len(all) != 2 {
		t.Fatalf("keepalives in one natping_interval: %q, want alice's and bob's", all)
	}
	var opt, udp string
	for _, x := range all {
		if strings.Contains(x, "OPTIONS ") {
			opt = x
		} else {
			udp = x
		}
	}
	if !strings.HasPrefix(opt, "udp:127.0.0.1:5060 198.51.100.1:40000 OPTIONS sip:alice@10.0.0.5:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK") ||
		!strings.Contains(opt, "\r\nFrom: sip:pinger@kemi.test;tag=ruid-alice-"+reverseHex(coreHash("alice"))+"-") ||
		!strings.HasSuffix(opt, "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n") {
		t.Errorf("alice's OPTIONS ping: %q", opt)
	}
	if udp != "udp:127.0.0.1:5060 198.51.100.2:40001 \x00\x00\x00\x00" {
		t.Errorf("bob's udp ping: %q", udp)
	}
	// The next interval pings them again, at the same seconds.
	for i := 0; i < 3; i++ {
		tick(clk)
		if got := len(s.take()); got > 1 {
			t.Errorf("second %d: %d keepalives, want them spread by the aor hash", i, got)
		}
	}
	if _, err := m.rpcEnablePing(context.Background(), params(t, 0)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		tick(clk)
	}
	if got := s.take(); len(got) != 0 {
		t.Errorf("keepalives after nathelper.enable_ping 0: %q", got)
	}
	m.rpcEnablePing(context.Background(), params(t, 1))
	for i := 0; i < 3; i++ {
		tick(clk)
	}
	if got := s.take(); len(got) != 2 {
		t.Errorf("keepalives after nathelper.enable_ping 1: %q", got)
	}
	if c := (map[string]int64{}); true {
		m.Counters(c)
		if c["nathelper.pings_sent"] != 6 {
			t.Errorf("pings_sent = %d, want 6", c["nathelper.pings_sent"])
		}
	}
}

// TestKeepalivesToEveryContact: without ping_nated_only every contact is
// pinged, with OPTIONS when sipping_bflag is set at all.
func TestKeepalivesToEveryContact(t *testing.T) {
	_, ul, clk, s := keepalives(t, func(st *Settings) {
		st.SippingBflag = 7
		st.SippingFrom = "sip:pinger@kemi.test"
		st.NatpingInterval = 1
	})
	register(t, ul, "carol", "sip:carol@192.0.2.9;transport=udp", "", 0)
	register(t, ul, "dave", "sip:dave@192.0.2.10;transport=tcp", "", 0)
	tick(clk)
	got := s.take()
	if len(got) != 1 || !strings.HasPrefix(got[0], "udp:127.0.0.1:5060 192.0.2.9:5060 OPTIONS sip:carol@192.0.2.9;transport=udp SIP/2.0") {
		t.Errorf("keepalives: %q, want carol's OPTIONS only (dave is on TCP)", got)
	}
}

func params(t *testing.T, v ...any) jsonrpc.Params {
	p, err := jsonrpc.NewParams(v...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestKeepaliveSettings: mod_init's checks.
func TestKeepaliveSettings(t *testing.T) {
	for _, c := range []struct {
		name string
		nat  int
		set  func(*Settings)
		want string
	}{
		{"ping_nated_only without nat_bflag", -1, func(s *Settings) { s.PingNatedOnly = true }, "no nat bflag set in usrloc"},
		{"sipping_bflag without sipping_from", 6, func(s *Settings) { s.SippingBflag = 7 }, "SIP ping FROM is empty"},
	} {
		ul := usrloc.New()
		ul.Settings().NatBflag = c.nat
		m := New(ul)
		m.set.NatpingInterval = 10
		c.set(&m.set)
		d := ksrtest.Deps(t, io.Discard, ul)
		err := m.Provision(ksrtest.Host{D: d})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	m := New(usrloc.New())
	m.set.NatpingInterval = 10
	if err := m.Provision(ksrtest.Host{D: ksrtest.Deps(t, io.Discard)}); err == nil || !strings.Contains(err.Error(), "usrloc") {
		t.Errorf("natping_interval without usrloc: %v", err)
	}
	if _, err := New(usrloc.New()).rpcEnablePing(context.Background(), params(t, 1)); err == nil || !strings.Contains(err.Error(), "NATping disabled") {
		t.Errorf("enable_ping without natping_interval: %v", err)
	}
}

func TestReverseHexAndCoreHash(t *testing.T) {
	if reverseHex(0) != "0" || reverseHex(0x1a2) != "2a1" || reverseHex(0xdeadbeef) != "feebdaed" {
		t.Errorf("reverseHex: %s %s %s", reverseHex(0), reverseHex(0x1a2), reverseHex(0xdeadbeef))
	}
	// int2reverse_hex(core_hash("a")): v = 'a' = 97, h = 97^(97>>3) = 109
	if h := coreHash("a"); h != 109 {
		t.Errorf("coreHash(a) = %d", h)
	}
}

// vm is a VM with nathelper's exports on a request received from src over
// proto.
func vm(t *testing.T, raw, src, proto string) *ksrtest.VM {
	t.Helper()
	m := New(usrloc.New())
	m.set.ReceivedAVP = "$avp(RECEIVED)"
	v := ksrtest.NewVM(t, ksrtest.Deps(t, io.Discard, m))
	msg := v.Bind(raw)
	msg.Req.Src = netip.MustParseAddrPort(src)
	msg.Req.Listener = &sipnet.Listener{Proto: proto, Addr: netip.MustParseAddrPort("192.0.2.1:5060")}
	return v
}

const wsInvite = "INVITE sip:bob@kemi.test SIP/2.0\r\nVia: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKx\r\n" +
	"From: <sip:alice@kemi.test>;tag=1\r\nTo: <sip:bob@kemi.test>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n" +
	"Contact: <sip:a8v2@df7jal23ls0d.invalid;transport=ws>\r\nContent-Length: 0\r\n\r\n"

// TestWebSocketAndIPv6: what the side-by-side test cannot send (it talks
// UDP over IPv4 loopback): a WebSocket request and an IPv6 source.
func TestWebSocketAndIPv6(t *testing.T) {
	v := vm(t, wsInvite, "198.51.100.7:50000", "wss")
	for _, c := range [][2]string{
		{"KSR.nathelper.nat_uac_test(64)", "1"},
		{"KSR.nathelper.nat_uac_test(2)", "1"},
		{"KSR.nathelper.add_rcv_param(1)", "-1"},
		{"KSR.nathelper.fix_nated_register()", "1"},
		{"KSR.pv.get('$avp(RECEIVED)')", "sip:198.51.100.7:50000;transport=wss"},
		{"KSR.nathelper.set_contact_alias()", "1"},
		{"KSR.pv.get('$ct')", "<sip:a8v2@df7jal23ls0d.invalid;transport=ws;alias=198.51.100.7~50000~6>"},
	} {
		if got := v.Eval(c[0]); got != c[1] {
			t.Errorf("wss: %s = %s, want %s", c[0], got, c[1])
		}
	}
	v = vm(t, strings.Replace(wsInvite, "transport=ws", "transport=udp", 1), "[2001:db8::7]:5070", "udp")
	for _, c := range [][2]string{
		{"KSR.nathelper.nat_uac_test(64)", "-1"},
		{"KSR.nathelper.nat_uac_test(32)", "-1"},
		{"KSR.nathelper.fix_nated_register()", "1"},
		{"KSR.pv.get('$avp(RECEIVED)')", "sip:[2001:db8::7]:5070"},
		{"KSR.nathelper.add_contact_alias()", "1"},
		{"KSR.pv.get('$ct')", "<sip:a8v2@df7jal23ls0d.invalid;alias=[2001:db8::7]~5070~1;transport=udp>"},
	} {
		if got := v.Eval(c[0]); got != c[1] {
			t.Errorf("ipv6: %s = %s, want %s", c[0], got, c[1])
		}
	}
	v = vm(t, strings.Replace(wsInvite, "transport=ws", "transport=udp", 1), "[2001:db8::7]:5070", "udp")
	if got := v.Eval("KSR.nathelper.fix_nated_contact()"); got != "1" {
		t.Errorf("fix_nated_contact = %s", got)
	}
	if got := v.Eval("KSR.pv.get('$ct')"); got != "<sip:a8v2@[2001:db8::7]:5070;transport=udp>" {
		t.Errorf("ipv6 fix_nated_contact: $ct = %s", got)
	}
}

// BenchmarkNatUACTest is the upstream example's NAT detection,
// nat_uac_test(19), on an INVITE with a private Contact that is not
// NATed by any other test (every test runs).
func BenchmarkNatUACTest(b *testing.B) {
	m := New(usrloc.New())
	v := ksrtest.NewVM(b, ksrtest.Deps(b, io.Discard, m))
	msg := v.Bind("INVITE sip:bob@kemi.test SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKx\r\n" +
		"From: <sip:alice@kemi.test>;tag=1\r\nTo: <sip:bob@kemi.test>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n" +
		"Contact: <sip:alice@198.51.100.7:5062>\r\nContent-Length: 0\r\n\r\n")
	msg.Req.Src = netip.MustParseAddrPort("198.51.100.7:5062")
	b.ReportAllocs()
	for b.Loop() {
		if m.natUACTest(v.Env, 19) != -1 {
			b.Fatal("NATed")
		}
	}
}

// TestSDPTestsWithoutBody: nat_uac_test's SDP tests (8, 256) on a request
// without a body find no session and log no error, as Kamailio's
// parse_sdp does (the example runs nat_uac_test on every request, and
// most have no body); fix_nated_sdp still logs extract_body's error.
func TestSDPTestsWithoutBody(t *testing.T) {
	var log bytes.Buffer
	m := New(usrloc.New())
	v := ksrtest.NewVM(t, ksrtest.Deps(t, &log, m))
	v.Bind("BYE sip:bob@kemi.test SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bKx\r\n" +
		"From: <sip:alice@kemi.test>;tag=1\r\nTo: <sip:bob@kemi.test>;tag=2\r\nCall-ID: c1\r\nCSeq: 2 BYE\r\n" +
		"Content-Length: 0\r\n\r\n")
	for _, expr := range []string{"KSR.nathelper.nat_uac_test(8)", "KSR.nathelper.nat_uac_test(256)"} {
		if got := v.Eval(expr); got != "-1" {
			t.Errorf("%s = %s, want -1", expr, got)
		}
	}
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("nat_uac_test without a body logged an error:\n%s", log.String())
	}
	v.Eval("KSR.nathelper.fix_nated_sdp(2)")
	if !strings.Contains(log.String(), "message body has length zero") {
		t.Errorf("fix_nated_sdp without a body: no extract_body error in the log:\n%s", log.String())
	}
}
