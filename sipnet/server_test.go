package sipnet

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The tests of the server side of the transaction layer (onRequest, txKey,
// server transactions, CANCEL and ACK matching) run on a UDP listener whose
// socket is a pcRecorder: a datagram is handed to the listener on the test
// goroutine as serveUDP would hand it, the Handler runs on that goroutine,
// and whatever the listener sends is recorded by the time the call returns.
// Nothing waits for the wall clock.
//
// sipgo's server transaction keeps timers of its own, on the wall clock.
// The assertions hold whether or not its early ones fire during a test
// (100 Trying after 200 ms for an INVITE is never counted; timer G,
// resending a negative final reply to INVITE from 500 ms, is why no exact
// count of those is asserted). Only the timers that end a transaction
// (H and J, 32 s) could change an outcome, and no test pauses anywhere near
// that long between two steps. sipnet's own timers are stubs where a test
// needs them (timer_test.go).

// pcRecorder is a net.PacketConn that records what is written to it.
type pcRecorder struct {
	mu   sync.Mutex
	sent []datagram
}

// datagram is one write to a pcRecorder.
type datagram struct {
	data []byte
	to   netip.AddrPort
}

func (p *pcRecorder) WriteTo(b []byte, a net.Addr) (int, error) {
	ua, ok := a.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("pcRecorder: address %T", a)
	}
	p.mu.Lock()
	p.sent = append(p.sent, datagram{data: append([]byte(nil), b...), to: ua.AddrPort()})
	p.mu.Unlock()
	return len(b), nil
}

func (p *pcRecorder) ReadFrom([]byte) (int, net.Addr, error) { return 0, nil, net.ErrClosed }
func (p *pcRecorder) Close() error                           { return nil }
func (p *pcRecorder) LocalAddr() net.Addr                    { return net.UDPAddrFromAddrPort(udpHarnessAddr) }
func (p *pcRecorder) SetDeadline(time.Time) error            { return nil }
func (p *pcRecorder) SetReadDeadline(time.Time) error        { return nil }
func (p *pcRecorder) SetWriteDeadline(time.Time) error       { return nil }

// responses parses what was sent, leaving out sipgo's automatic 100 Trying.
func (p *pcRecorder) responses(t *testing.T) []*sip.Response {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*sip.Response
	for _, d := range p.sent {
		m, err := sip.ParseMessage(d.data)
		if err != nil {
			t.Fatalf("sent an unparsable datagram: %v\n%s", err, d.data)
		}
		res, ok := m.(*sip.Response)
		if !ok {
			t.Fatalf("sent a request: %s", d.data)
		}
		if res.StatusCode == 100 {
			continue
		}
		out = append(out, res)
	}
	return out
}

// statuses lists "CODE METHOD" (the CSeq method) of what was sent,
// without 100 Trying.
func (p *pcRecorder) statuses(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, r := range p.responses(t) {
		out = append(out, fmt.Sprintf("%d %s", r.StatusCode, r.CSeq().MethodName))
	}
	return out
}

// count counts the sent replies with this "CODE METHOD".
func (p *pcRecorder) count(t *testing.T, status string) int {
	t.Helper()
	n := 0
	for _, s := range p.statuses(t) {
		if s == status {
			n++
		}
	}
	return n
}

// routedLog is the Handler of the harness: it records what reaches the
// routing logic, and runs onRequest (when set) on each request.
type routedLog struct {
	reqs      []*Request
	res       []*Response
	onRequest func(*Request)
}

func (h *routedLog) HandleRequest(r *Request) {
	h.reqs = append(h.reqs, r)
	if h.onRequest != nil {
		h.onRequest(r)
	}
}

func (h *routedLog) HandleResponse(r *Response) { h.res = append(h.res, r) }

// methods lists the methods of the routed requests.
func (h *routedLog) methods() []string {
	var out []string
	for _, r := range h.reqs {
		out = append(out, string(r.Msg.Method))
	}
	return out
}

var (
	udpHarnessAddr = netip.MustParseAddrPort("127.0.0.1:5060")
	uacAddr        = netip.MustParseAddrPort("192.0.2.10:5070")
)

// udpHarness is a Server with one UDP listener on a pcRecorder.
type udpHarness struct {
	srv *Server
	ln  *Listener
	pc  *pcRecorder
	h   *routedLog
}

func newUDPHarness(t *testing.T) *udpHarness {
	t.Helper()
	h := &routedLog{}
	srv, err := New(Options{Logger: slog.New(slog.DiscardHandler)}, h)
	if err != nil {
		t.Fatal(err)
	}
	pc := &pcRecorder{}
	ln := &Listener{Proto: "udp", Addr: udpHarnessAddr, pc: pc, srv: srv,
		// Only for the 2xx retransmission of an INVITE, should its first
		// timer fire during a test.
		tp: sip.NewTransportLayer(net.DefaultResolver, sip.NewParser(), nil)}
	srv.listeners = []*Listener{ln}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Stop(ctx)
	})
	return &udpHarness{srv: srv, ln: ln, pc: pc, h: h}
}

// deliver hands raw to the listener as serveUDP does for a datagram from
// the UAC.
func (u *udpHarness) deliver(t *testing.T, raw string) {
	t.Helper()
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, raw)
	}
	u.deliverMsg(msg)
}

func (u *udpHarness) deliverMsg(msg sip.Message) {
	msg.SetTransport("UDP")
	msg.SetSource(uacAddr.String())
	u.ln.handle(msg, uacAddr)
}

// uacReq describes a request of the UAC's dialog: its method, the branch of
// its top Via ("" for none), its CSeq, and the sent-by of the Via
// (default 192.0.2.10:5070).
type uacReq struct {
	method, branch string
	cseq           int
	cseqMethod     string // default: method
	sentBy         string
	toTag          string
	drop           string // a header to leave out ("Via", "From", ...)
}

func (q uacReq) String() string {
	cm := q.cseqMethod
	if cm == "" {
		cm = q.method
	}
	sentBy := q.sentBy
	if sentBy == "" {
		sentBy = uacAddr.String()
	}
	via := "Via: SIP/2.0/UDP " + sentBy
	if q.branch != "" {
		via += ";branch=" + q.branch
	}
	to := "To: <sip:bob@example.com>"
	if q.toTag != "" {
		to += ";tag=" + q.toTag
	}
	hdrs := []string{via, "Max-Forwards: 70", "From: <sip:alice@example.com>;tag=uac", to,
		"Call-ID: srv-test@192.0.2.10", fmt.Sprintf("CSeq: %d %s", q.cseq, cm)}
	var b strings.Builder
	fmt.Fprintf(&b, "%s sip:bob@example.com SIP/2.0\r\n", q.method)
	for _, h := range hdrs {
		if q.drop != "" && strings.HasPrefix(h, q.drop+":") {
			continue
		}
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

func (q uacReq) parse(t *testing.T) *sip.Request {
	t.Helper()
	m, err := sip.ParseMessage([]byte(q.String()))
	if err != nil {
		t.Fatalf("parse %v: %v", q, err)
	}
	return m.(*sip.Request)
}

const (
	inviteBranch = "z9hG4bK-inv-1"
	otherBranch  = "z9hG4bK-other-2"
)

func TestOnRequestMalformed(t *testing.T) {
	cases := []struct {
		name   string
		q      uacReq
		reason string // "" when nothing is sent back
	}{
		{"no From", uacReq{method: "OPTIONS", branch: "z9hG4bK-m1", cseq: 1, drop: "From"}, "missing From"},
		{"no To", uacReq{method: "OPTIONS", branch: "z9hG4bK-m2", cseq: 1, drop: "To"}, "missing To"},
		{"no Call-ID", uacReq{method: "OPTIONS", branch: "z9hG4bK-m3", cseq: 1, drop: "Call-ID"}, "missing Call-ID"},
		{"no CSeq", uacReq{method: "OPTIONS", branch: "z9hG4bK-m4", cseq: 1, drop: "CSeq"}, "missing CSeq"},
		{"CSeq of another method", uacReq{method: "OPTIONS", branch: "z9hG4bK-m5", cseq: 1, cseqMethod: "INVITE"}, "CSeq method does not match the request method"},
		{"no Via: nowhere to answer", uacReq{method: "OPTIONS", cseq: 1, drop: "Via"}, ""},
		{"an ACK is never answered", uacReq{method: "ACK", branch: "z9hG4bK-m6", cseq: 1, drop: "From"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newUDPHarness(t)
			msg := c.q.parse(t)
			why := Malformed(msg)
			if c.reason != "" && why != c.reason {
				t.Fatalf("Malformed = %q, want %q", why, c.reason)
			}
			if why == "" {
				t.Fatal("Malformed found nothing wrong")
			}
			u.deliverMsg(msg)
			if len(u.h.reqs) != 0 {
				t.Fatalf("a malformed request was routed: %v", u.h.methods())
			}
			if st := u.srv.Stats(); st.BadRequests != 1 || st.Requests != 1 || st.Absorbed != 0 {
				t.Fatalf("stats %+v, want 1 request, 1 bad, none absorbed", st)
			}
			res := u.pc.responses(t)
			if c.reason == "" {
				if len(res) != 0 {
					t.Fatalf("answered %d times, want silence", len(res))
				}
				return
			}
			if len(res) != 1 || res[0].StatusCode != 400 {
				t.Fatalf("sent %v, want one 400", u.pc.statuses(t))
			}
			if w := res[0].GetHeader("Warning"); w == nil || w.Value() != `399 kemi "`+c.reason+`"` {
				t.Fatalf("Warning %v, want the reason", w)
			}
			if to := u.pc.sent[0].to; to != uacAddr {
				t.Fatalf("400 sent to %v, want the Via's sent-by %v", to, uacAddr)
			}
		})
	}
	if why := Malformed(uacReq{method: "OPTIONS", branch: "z9hG4bK-ok", cseq: 1}.parse(t)); why != "" {
		t.Fatalf("a well-formed request is %q", why)
	}
	ok := uacReq{method: "OPTIONS", branch: "z9hG4bK-ok", cseq: 1, drop: "Max-Forwards"}
	if why := Malformed(ok.parse(t)); why != "" {
		t.Fatalf("a request without Max-Forwards is %q (tolerated as proxies do)", why)
	}
}

func TestOnRequestRetransmissionInFlightAbsorbed(t *testing.T) {
	u := newUDPHarness(t)
	opt := uacReq{method: "OPTIONS", branch: "z9hG4bK-opt-1", cseq: 1}
	u.deliver(t, opt.String())
	if len(u.h.reqs) != 1 {
		t.Fatalf("routed %d, want the first copy", len(u.h.reqs))
	}
	first := u.h.reqs[0]
	if !first.inflight || first.key == "" || first.Listener != u.ln || first.Src != uacAddr {
		t.Fatalf("handed over inflight=%v key=%q listener=%v src=%v", first.inflight, first.key, first.Listener, first.Src)
	}
	// The worker has not finished: a retransmission is absorbed, silently.
	u.deliver(t, opt.String())
	if len(u.h.reqs) != 1 || u.srv.Stats().Absorbed != 1 || len(u.pc.sent) != 0 {
		t.Fatalf("retransmission in flight: routed %d, absorbed %d, sent %d", len(u.h.reqs), u.srv.Stats().Absorbed, len(u.pc.sent))
	}
	// Other transactions are not: another branch, the same branch from
	// another sent-by, the same branch with another method.
	u.deliver(t, uacReq{method: "OPTIONS", branch: "z9hG4bK-opt-2", cseq: 1}.String())
	u.deliver(t, uacReq{method: "OPTIONS", branch: "z9hG4bK-opt-1", cseq: 1, sentBy: "192.0.2.11:5070"}.String())
	u.deliver(t, uacReq{method: "INFO", branch: "z9hG4bK-opt-1", cseq: 2}.String())
	if len(u.h.reqs) != 4 || u.srv.Stats().Absorbed != 1 {
		t.Fatalf("other transactions: routed %d (want 4), absorbed %d", len(u.h.reqs), u.srv.Stats().Absorbed)
	}
	// Done (stateless handling ended): a retransmission is routed anew, as
	// Kamailio's sl does.
	first.Done()
	first.Done() // idempotent
	u.deliver(t, opt.String())
	if len(u.h.reqs) != 5 || u.srv.Stats().Absorbed != 1 {
		t.Fatalf("after Done: routed %d (want 5), absorbed %d", len(u.h.reqs), u.srv.Stats().Absorbed)
	}
	if st := u.srv.Stats(); st.Requests != 6 || st.BadRequests != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOnRequestWithoutBranchIsRoutedEveryTime(t *testing.T) {
	u := newUDPHarness(t)
	raw := uacReq{method: "OPTIONS", cseq: 1}.String() // RFC 2543 style: no branch
	u.deliver(t, raw)
	u.deliver(t, raw)
	if len(u.h.reqs) != 2 || u.srv.Stats().Absorbed != 0 {
		t.Fatalf("routed %d, absorbed %d: without a key nothing is absorbed", len(u.h.reqs), u.srv.Stats().Absorbed)
	}
	r := u.h.reqs[0]
	if r.key != "" || r.inflight {
		t.Fatalf("key %q inflight %v", r.key, r.inflight)
	}
	if _, err := r.NewTx(); err == nil {
		t.Fatal("NewTx without a transaction key")
	}
	// It can still be answered statelessly.
	if err := r.Reply(200, "OK", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := u.pc.statuses(t); len(got) != 1 || got[0] != "200 OPTIONS" {
		t.Fatalf("sent %v", got)
	}
	r.Done() // no marker to release
}

func TestTxKey(t *testing.T) {
	key := func(q uacReq, as sip.RequestMethod) string {
		t.Helper()
		k, ok := txKey(q.parse(t), as)
		if !ok {
			t.Fatalf("no key for %+v", q)
		}
		return k
	}
	inv := uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}
	kInv := key(inv, "")
	if want := inviteBranch + "|192.0.2.10:5070|INVITE"; kInv != want {
		t.Fatalf("INVITE key %q, want %q (branch, sent-by, method)", kInv, want)
	}
	distinct := map[string]uacReq{
		"another branch":   {method: "INVITE", branch: otherBranch, cseq: 1},
		"another host":     {method: "INVITE", branch: inviteBranch, cseq: 1, sentBy: "192.0.2.11:5070"},
		"another port":     {method: "INVITE", branch: inviteBranch, cseq: 1, sentBy: "192.0.2.10:5071"},
		"CANCEL":           {method: "CANCEL", branch: inviteBranch, cseq: 1},
		"an ACK (for 2xx)": {method: "ACK", branch: inviteBranch, cseq: 1},
	}
	seen := map[string]string{kInv: "the INVITE"}
	for name, q := range distinct {
		k := key(q, "")
		if prev, dup := seen[k]; dup {
			t.Fatalf("%s has the key of %s: %q", name, prev, k)
		}
		seen[k] = name
	}
	// The CSeq number is not part of the key: the branch is.
	if k := key(uacReq{method: "INVITE", branch: inviteBranch, cseq: 2}, ""); k != kInv {
		t.Fatalf("CSeq number changed the key: %q", k)
	}
	// CANCEL and an ACK for a non-2xx reply carry the INVITE's branch and
	// are matched to its transaction by keying them as INVITE.
	for _, m := range []string{"CANCEL", "ACK"} {
		if k := key(uacReq{method: m, branch: inviteBranch, cseq: 1}, sip.INVITE); k != kInv {
			t.Fatalf("%s as INVITE: %q, want the INVITE's %q", m, k, kInv)
		}
	}
	// An ACK on its own is an INVITE-class key of its own (an ACK for a
	// 2xx, a new branch end to end): retransmissions of it match each other.
	if k := key(uacReq{method: "ACK", branch: otherBranch, cseq: 1}, ""); k != otherBranch+"|192.0.2.10:5070|INVITE|ACK" {
		t.Fatalf("ACK key %q", k)
	}
	// Nothing to key on.
	for name, q := range map[string]uacReq{
		"no branch": {method: "INVITE", cseq: 1},
		"no Via":    {method: "INVITE", branch: inviteBranch, cseq: 1, drop: "Via"},
		"no CSeq":   {method: "INVITE", branch: inviteBranch, cseq: 1, drop: "CSeq"},
	} {
		if k, ok := txKey(q.parse(t), ""); ok {
			t.Fatalf("%s: key %q", name, k)
		}
	}
}

func TestTxKeyAllocatesNothing(t *testing.T) {
	msg := uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}.parse(t)
	var buf [len(keyedRequest{}.keyBuf)]byte
	if n := testing.AllocsPerRun(100, func() { appendTxKey(buf[:0], msg, "") }); n != 0 {
		t.Fatalf("appendTxKey allocates %v times into a buffer large enough, want 0", n)
	}
	if b, _ := appendTxKey(buf[:0], msg, ""); string(b) != inviteBranch+"|192.0.2.10:5070|INVITE" {
		t.Fatalf("key %q", b)
	}
}

// TestTxShardsAsMap runs random claims, puts and drops on the transaction
// table beside a Go map; the few hash bits of a small table make long
// probe sequences, wrap-arounds and backward shifts common.
func TestTxShardsAsMap(t *testing.T) {
	var tab txShards
	tab.init()
	ref := map[string]*Tx{}
	txs := []*Tx{nil, {}, {}, {}}
	rng := rand.New(rand.NewPCG(1, 2))
	for step := 0; step < 200000; step++ {
		key := "k" + strconv.Itoa(rng.IntN(3000))
		tx := txs[rng.IntN(len(txs))]
		switch op := rng.IntN(4); op {
		case 0:
			got, fresh := tab.claim(key)
			want, ok := ref[key]
			if got != want || fresh == ok {
				t.Fatalf("step %d claim %s: %p %v, want %p %v", step, key, got, fresh, want, !ok)
			}
			if !ok {
				ref[key] = nil
			}
		case 1:
			tab.put(key, tx)
			ref[key] = tx
		case 2:
			tab.dropIf(key, tx)
			if cur, ok := ref[key]; ok && cur == tx {
				delete(ref, key)
			}
		case 3:
			if got := tab.get(key); got != ref[key] {
				t.Fatalf("step %d get %s: %p, want %p", step, key, got, ref[key])
			}
		}
		if step%1000 == 0 {
			if tab.len() != len(ref) {
				t.Fatalf("step %d: %d entries, want %d", step, tab.len(), len(ref))
			}
			for k, v := range ref {
				if got := tab.get(k); got != v {
					t.Fatalf("step %d: %s is %p, want %p", step, k, got, v)
				}
			}
			n := 0
			for _, v := range ref {
				if v != nil {
					n++
				}
			}
			if got := len(tab.values()); got != n {
				t.Fatalf("step %d: %d values, want %d", step, got, n)
			}
		}
	}
}

// newInviteTx delivers an INVITE whose handler creates its server
// transaction and answers 180, as t_newtran and a t_reply would.
func newInviteTx(t *testing.T, u *udpHarness) *Tx {
	t.Helper()
	var tx *Tx
	u.h.onRequest = func(r *Request) {
		var err error
		if tx, err = r.NewTx(); err != nil {
			t.Fatalf("NewTx: %v", err)
		}
		if err := tx.Reply(180, "Ringing", nil, nil); err != nil {
			t.Fatalf("180: %v", err)
		}
	}
	u.deliver(t, uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}.String())
	u.h.onRequest = nil
	if tx == nil {
		t.Fatal("the INVITE was not routed")
	}
	if u.srv.PendingTx() != 1 {
		t.Fatalf("PendingTx %d", u.srv.PendingTx())
	}
	return tx
}

func TestServerTxAbsorbsRetransmissions(t *testing.T) {
	u := newUDPHarness(t)
	tx := newInviteTx(t, u)
	if got := u.pc.count(t, "180 INVITE"); got != 1 {
		t.Fatalf("sent %v", u.pc.statuses(t))
	}
	inv := uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}.String()
	// Proceeding: a retransmission is answered with the last provisional.
	u.deliver(t, inv)
	if len(u.h.reqs) != 1 || u.srv.Stats().Absorbed != 1 {
		t.Fatalf("retransmission: routed %d, absorbed %d", len(u.h.reqs), u.srv.Stats().Absorbed)
	}
	if got := u.pc.count(t, "180 INVITE"); got != 2 {
		t.Fatalf("after a retransmission sent %v, want 180 twice", u.pc.statuses(t))
	}
	// Completed: the negative final reply is resent. (Timer G may resend it
	// too: only growth is asserted.)
	if err := tx.Reply(486, "Busy Here", nil, nil); err != nil {
		t.Fatal(err)
	}
	before := u.pc.count(t, "486 INVITE")
	if before < 1 {
		t.Fatalf("486 not sent: %v", u.pc.statuses(t))
	}
	u.deliver(t, inv)
	if len(u.h.reqs) != 1 || u.srv.Stats().Absorbed != 2 {
		t.Fatalf("retransmission after 486: routed %d, absorbed %d", len(u.h.reqs), u.srv.Stats().Absorbed)
	}
	if after := u.pc.count(t, "486 INVITE"); after <= before {
		t.Fatalf("the retransmission was not answered: %v", u.pc.statuses(t))
	}
	// One To tag for every reply of the transaction.
	tags := map[string]bool{}
	for _, r := range u.pc.responses(t) {
		tag, _ := r.To().Params.Get("tag")
		tags[tag] = true
	}
	if len(tags) != 1 || tags[""] {
		t.Fatalf("To tags %v", tags)
	}
}

func TestServerTxNonInviteProvisionalRetransmitted(t *testing.T) {
	u := newUDPHarness(t)
	var tx *Tx
	u.h.onRequest = func(r *Request) {
		tx, _ = r.NewTx()
		tx.Reply(183, "Working", nil, nil)
	}
	msg := uacReq{method: "MESSAGE", branch: "z9hG4bK-msg-1", cseq: 5}.String()
	u.deliver(t, msg)
	u.h.onRequest = nil
	u.deliver(t, msg)
	if len(u.h.reqs) != 1 || u.srv.Stats().Absorbed != 1 {
		t.Fatalf("routed %d, absorbed %d", len(u.h.reqs), u.srv.Stats().Absorbed)
	}
	if got := u.pc.statuses(t); len(got) != 2 || got[0] != "183 MESSAGE" || got[1] != "183 MESSAGE" {
		t.Fatalf("sent %v, want the provisional again", got)
	}
	if tx.LastStatus() != 183 || tx.FinalStatus() != 0 {
		t.Fatalf("last %d final %d", tx.LastStatus(), tx.FinalStatus())
	}
}

func TestAckForNegativeReplyAbsorbedByServerTx(t *testing.T) {
	u := newUDPHarness(t)
	tx := newInviteTx(t, u)
	if err := tx.Reply(486, "Busy Here", nil, nil); err != nil {
		t.Fatal(err)
	}
	n := len(u.pc.statuses(t))
	// The ACK for a negative reply carries the INVITE's branch and the
	// reply's To tag: it ends the server transaction's retransmissions and
	// reaches no script.
	ack := uacReq{method: "ACK", branch: inviteBranch, cseq: 1, toTag: "any"}
	u.deliver(t, ack.String())
	if len(u.h.reqs) != 1 {
		t.Fatalf("the ACK was routed: %v", u.h.methods())
	}
	// Nothing answers an ACK (timer G may have resent the 486 meanwhile).
	for _, s := range u.pc.statuses(t)[n:] {
		if s != "486 INVITE" {
			t.Fatalf("sent %v after the ACK", u.pc.statuses(t))
		}
	}
	// An ACK with another branch (for a 2xx, end to end) is routed.
	u.deliver(t, uacReq{method: "ACK", branch: otherBranch, cseq: 1, toTag: "any"}.String())
	if got := u.h.methods(); len(got) != 2 || got[1] != "ACK" {
		t.Fatalf("routed %v, want the INVITE then the ACK for 2xx", got)
	}
}

func TestAckFor2xxStopsItsRetransmission(t *testing.T) {
	u := newUDPHarness(t)
	tx := newInviteTx(t, u)
	if err := tx.Reply(200, "OK", nil, nil); err != nil {
		t.Fatal(err)
	}
	tx.mu.Lock()
	armed := tx.stop2 != nil
	tx.mu.Unlock()
	if !armed {
		t.Fatal("a 2xx to INVITE over UDP is retransmitted until the ACK")
	}
	// The ACK for the 2xx has a new branch: it is matched on Call-ID and
	// CSeq number, stops the retransmission, and is routed (to the script,
	// which relays it or not).
	u.deliver(t, uacReq{method: "ACK", branch: otherBranch, cseq: 1, toTag: "uas"}.String())
	tx.mu.Lock()
	stopped := tx.stop2 == nil
	tx.mu.Unlock()
	if !stopped {
		t.Fatal("the ACK did not stop the 2xx retransmission")
	}
	if got := u.h.methods(); len(got) != 2 || got[1] != "ACK" {
		t.Fatalf("routed %v", got)
	}
	// An ACK for another CSeq leaves another INVITE's retransmission alone.
	if ackTableKey("srv-test@192.0.2.10", 1) == ackTableKey("srv-test@192.0.2.10", 2) {
		t.Fatal("the ACK table key ignores the CSeq number")
	}
}

func TestCancelMatchedToInvite(t *testing.T) {
	u := newUDPHarness(t)
	tx := newInviteTx(t, u)
	u.deliver(t, uacReq{method: "CANCEL", branch: inviteBranch, cseq: 1}.String())
	if len(u.h.reqs) != 1 {
		t.Fatalf("the CANCEL was routed: %v", u.h.methods())
	}
	// 200 for the CANCEL, then 487 for the INVITE (timer G may resend the
	// 487 later: only the order is asserted).
	got := u.pc.statuses(t)
	if len(got) < 3 || got[0] != "180 INVITE" || got[1] != "200 CANCEL" || got[2] != "487 INVITE" {
		t.Fatalf("sent %v, want 180, 200 for the CANCEL, 487", got)
	}
	if !tx.Canceled() || tx.FinalStatus() != 487 {
		t.Fatalf("canceled %v final %d", tx.Canceled(), tx.FinalStatus())
	}
	if err := tx.Reply(200, "OK", nil, nil); !errors.Is(err, ErrTxGone) {
		t.Fatalf("a reply after the CANCEL: %v, want ErrTxGone", err)
	}
	// The ACK for the 487 is absorbed too.
	u.deliver(t, uacReq{method: "ACK", branch: inviteBranch, cseq: 1, toTag: "x"}.String())
	if len(u.h.reqs) != 1 {
		t.Fatalf("the ACK for 487 was routed: %v", u.h.methods())
	}
}

func TestCancelOfRelayedInviteRunsItsHandler(t *testing.T) {
	u := newUDPHarness(t)
	tx := newInviteTx(t, u)
	called := 0
	tx.SetCancelHandler(func() { called++ })
	u.deliver(t, uacReq{method: "CANCEL", branch: inviteBranch, cseq: 1}.String())
	if called != 1 || !tx.Canceled() || tx.FinalStatus() != 0 {
		t.Fatalf("handler called %d times, canceled %v, final %d", called, tx.Canceled(), tx.FinalStatus())
	}
	if got := u.pc.statuses(t); len(got) != 2 || got[1] != "200 CANCEL" {
		t.Fatalf("sent %v, want 180 and the 200 for the CANCEL only", got)
	}
	// The branches' 487 is still relayed through the transaction.
	if err := tx.Reply(487, "Request Terminated", nil, nil); err != nil {
		t.Fatalf("the relayed 487: %v", err)
	}
}

func TestCancelAfterFinalReplyOnlyAnswered(t *testing.T) {
	u := newUDPHarness(t)
	tx := newInviteTx(t, u)
	if err := tx.Reply(486, "Busy Here", nil, nil); err != nil {
		t.Fatal(err)
	}
	u.deliver(t, uacReq{method: "CANCEL", branch: inviteBranch, cseq: 1}.String())
	if tx.Canceled() || tx.FinalStatus() != 486 {
		t.Fatalf("canceled %v final %d", tx.Canceled(), tx.FinalStatus())
	}
	if u.pc.count(t, "200 CANCEL") != 1 || u.pc.count(t, "487 INVITE") != 0 {
		t.Fatalf("sent %v, want a 200 for the CANCEL and no 487", u.pc.statuses(t))
	}
}

func TestCancelWithoutTransactionIsRouted(t *testing.T) {
	u := newUDPHarness(t)
	// The INVITE is being routed statelessly (no transaction yet): the
	// CANCEL goes to the script, as in Kamailio, and so does one for a
	// branch never seen.
	u.deliver(t, uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}.String())
	u.deliver(t, uacReq{method: "CANCEL", branch: inviteBranch, cseq: 1}.String())
	u.deliver(t, uacReq{method: "CANCEL", branch: otherBranch, cseq: 1}.String())
	if got := u.h.methods(); len(got) != 3 || got[1] != "CANCEL" || got[2] != "CANCEL" {
		t.Fatalf("routed %v", got)
	}
	if len(u.pc.sent) != 0 {
		t.Fatalf("sent %v", u.pc.statuses(t))
	}
}

func TestRepliesHandedOverWithTheirBranch(t *testing.T) {
	u := newUDPHarness(t)
	raw := "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-nobody\r\n" +
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\nCall-ID: r1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	u.deliver(t, raw)
	if len(u.h.res) != 1 || u.h.res[0].Branch != nil || u.h.res[0].Src != uacAddr || u.srv.Stats().Responses != 1 {
		t.Fatalf("reply handed over as %+v", u.h.res)
	}
}

// BenchmarkTxClaimRelease: a stateless request's in-flight marker, claimed
// and released, in the transaction table (table) and in the generic
// sharded Go map it replaced (gomap: a lookup and an insert, then a lookup
// and a delete), with 1,000 live transactions besides.
func BenchmarkTxClaimRelease(b *testing.B) {
	keys := make([]string, 4096)
	for i := range keys {
		keys[i] = fmt.Sprintf("z9hG4bK-%d-1-0|127.0.0.1:18060|OPTIONS", 100000+i)
	}
	live := &Tx{}
	b.Run("table", func(b *testing.B) {
		var t txShards
		t.init()
		for i := range 1000 {
			t.put(fmt.Sprintf("live-%d", i), live)
		}
		i := 0
		for b.Loop() {
			k := keys[i&4095]
			i++
			if _, fresh := t.claim(k); !fresh {
				b.Fatal("not fresh")
			}
			t.dropIf(k, nil)
		}
	})
	b.Run("gomap", func(b *testing.B) {
		var t [64]struct {
			mu sync.Mutex
			m  map[string]*Tx
		}
		seed := maphash.MakeSeed()
		shard := func(k string) *struct {
			mu sync.Mutex
			m  map[string]*Tx
		} {
			return &t[maphash.String(seed, k)%64]
		}
		for i := range t {
			t[i].m = map[string]*Tx{}
		}
		for i := range 1000 {
			k := fmt.Sprintf("live-%d", i)
			shard(k).m[k] = live
		}
		i := 0
		for b.Loop() {
			k := keys[i&4095]
			i++
			sh := shard(k)
			sh.mu.Lock()
			_, ok := sh.m[k]
			if !ok {
				sh.m[k] = nil
			}
			sh.mu.Unlock()
			if ok {
				b.Fatal("not fresh")
			}
			sh = shard(k)
			sh.mu.Lock()
			if cur, ok := sh.m[k]; ok && cur == nil {
				delete(sh.m, k)
			}
			sh.mu.Unlock()
		}
	})
}
