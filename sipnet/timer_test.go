package sipnet

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The timers sipnet arms itself (branch retransmission, fr_timer and
// fr_inv_timer, lingering; the wait of an answered non-INVITE transaction)
// are stubs in these tests (Server.timerHook): a timer fires only when the
// test fires it, on the test goroutine, and the test reads how long it was
// armed for. They run on the UDP harness of server_test.go.

// timerStubs replaces time.AfterFunc for a server.
type timerStubs struct {
	mu    sync.Mutex
	armed []*stubTimer
}

// stubTimer is one timer armed through timerStubs.
type stubTimer struct {
	stubs   *timerStubs
	f       func()
	d       time.Duration // as last armed
	resets  int
	pending bool
}

func (s *timerStubs) afterFunc(d time.Duration, f func()) timer {
	t := &stubTimer{stubs: s, f: f, d: d, pending: true}
	s.mu.Lock()
	s.armed = append(s.armed, t)
	s.mu.Unlock()
	return t
}

func (t *stubTimer) Stop() bool {
	t.stubs.mu.Lock()
	defer t.stubs.mu.Unlock()
	was := t.pending
	t.pending = false
	return was
}

func (t *stubTimer) Reset(d time.Duration) bool {
	t.stubs.mu.Lock()
	defer t.stubs.mu.Unlock()
	was := t.pending
	t.pending, t.d = true, d
	t.resets++
	return was
}

// fire runs the timer's function if it is pending, as its expiry would.
func (t *stubTimer) fire(tb testing.TB) {
	tb.Helper()
	t.stubs.mu.Lock()
	was := t.pending
	t.pending = false
	t.stubs.mu.Unlock()
	if !was {
		tb.Fatal("fired a timer that is not pending")
	}
	t.f()
}

// state returns the duration the timer was last armed for, whether it is
// pending, and how many times it was reset.
func (t *stubTimer) state() (time.Duration, bool, int) {
	t.stubs.mu.Lock()
	defer t.stubs.mu.Unlock()
	return t.d, t.pending, t.resets
}

// newTimedHarness is the UDP harness with stub timers.
func newTimedHarness(t *testing.T) (*udpHarness, *timerStubs) {
	u := newUDPHarness(t)
	stubs := &timerStubs{}
	u.srv.timerHook = stubs.afterFunc
	return u, stubs
}

// branchTimers returns the stubs b's timers are (nil when not armed).
func branchTimers(t *testing.T, b *Branch) (retr, fr, linger *stubTimer) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	as := func(tm timer) *stubTimer {
		if tm == nil {
			return nil
		}
		s, ok := tm.(*stubTimer)
		if !ok {
			t.Fatalf("a %T timer, want a stub", tm)
		}
		return s
	}
	return as(b.retr), as(b.fr), as(b.linger)
}

// requests parses the requests sent, in order.
func (p *pcRecorder) requests(t *testing.T) []*sip.Request {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*sip.Request
	for _, d := range p.sent {
		m, err := sip.ParseMessage(d.data)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := m.(*sip.Request); ok {
			out = append(out, r)
		}
	}
	return out
}

// methodsSent lists the methods of the requests sent.
func (p *pcRecorder) methodsSent(t *testing.T) []string {
	var out []string
	for _, r := range p.requests(t) {
		out = append(out, string(r.Method))
	}
	return out
}

var branchTarget = Target{Proto: "udp", Addr: netip.MustParseAddrPort("192.0.2.20:5080")}

// sendBranch sends a request of method (CSeq 1) as a branch from u's
// listener to branchTarget.
func sendBranch(t *testing.T, u *udpHarness, method string, o BranchOptions) *Branch {
	t.Helper()
	o.Target = branchTarget
	b, err := u.srv.NewBranch(uacReq{method: method, branch: "z9hG4bK-up", cseq: 1}.parse(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answerBranch delivers the reply code to b's request (the first request
// sent with b's branch) and passes it to the branch it matched.
func answerBranch(t *testing.T, u *udpHarness, b *Branch, code int) ReplyKind {
	t.Helper()
	var sent *sip.Request
	for _, r := range u.pc.requests(t) {
		if id, _ := r.Via().Params.Get("branch"); id == b.ID() && r.Method != sip.ACK && r.Method != sip.CANCEL {
			sent = r
			break
		}
	}
	if sent == nil {
		t.Fatalf("branch %s sent nothing", b.ID())
	}
	res := sip.NewResponseFromRequest(sent, code, "Reason", nil)
	if code > 100 {
		res.To().Params.Add("tag", "uas")
	}
	u.deliverMsg(res)
	got := u.h.res[len(u.h.res)-1]
	if got.Branch != b {
		t.Fatalf("a %d matched %v, want branch %s", code, got.Branch, b.ID())
	}
	return b.Receive(res)
}

func TestBranchTimersInviteUDP(t *testing.T) {
	u, _ := newTimedHarness(t)
	timedOut := 0
	b := sendBranch(t, u, "INVITE", BranchOptions{Timeout: 7 * time.Second, InviteTimeout: 90 * time.Second,
		OnTimeout: func(*Branch) { timedOut++ }})
	retr, fr, linger := branchTimers(t, b)
	if retr == nil || fr == nil || linger != nil {
		t.Fatalf("armed retr=%v fr=%v linger=%v", retr, fr, linger)
	}
	if d, on, _ := retr.state(); d != sip.T1 || !on {
		t.Fatalf("timer A armed for %v (pending %v), want T1", d, on)
	}
	if d, on, _ := fr.state(); d != 7*time.Second || !on {
		t.Fatalf("fr_timer armed for %v (pending %v), want BranchOptions.Timeout", d, on)
	}
	// Timer A: the INVITE again, at doubling intervals.
	for i, want := range []time.Duration{2 * sip.T1, 4 * sip.T1, 8 * sip.T1, 16 * sip.T1} {
		retr.fire(t)
		if got := u.pc.methodsSent(t); len(got) != i+2 || got[i+1] != "INVITE" {
			t.Fatalf("after %d firings sent %v", i+1, got)
		}
		if d, on, _ := retr.state(); d != want || !on {
			t.Fatalf("timer A re-armed for %v (pending %v), want %v", d, on, want)
		}
	}
	// The first provisional reply stops timer A and switches fr_timer to
	// fr_inv_timer; a second one changes nothing.
	expectKind(t, "180", answerBranch(t, u, b, 180), ReplyProvisional)
	if _, on, _ := retr.state(); on {
		t.Fatal("timer A runs after a provisional reply")
	}
	d, on, resets := fr.state()
	if d != 90*time.Second || !on || resets != 1 {
		t.Fatalf("fr_timer %v (pending %v, %d resets), want fr_inv_timer", d, on, resets)
	}
	expectKind(t, "183", answerBranch(t, u, b, 183), ReplyProvisional)
	if _, _, r := fr.state(); r != 1 {
		t.Fatal("fr_inv_timer restarted by a second provisional reply")
	}
	// fr_inv_timer expires: the branch times out and is CANCELled.
	fr.fire(t)
	if !b.TimedOut() || timedOut != 1 {
		t.Fatalf("timedOut %v, OnTimeout calls %d", b.TimedOut(), timedOut)
	}
	if got := u.pc.methodsSent(t); got[len(got)-1] != "CANCEL" {
		t.Fatalf("sent %v, want a CANCEL last", got)
	}
	if u.srv.PendingBranches() != 2 {
		t.Fatalf("PendingBranches %d, want the INVITE's and the CANCEL's", u.srv.PendingBranches())
	}
	// The INVITE branch lingers for timer D (32 s) to absorb late replies,
	// then leaves the table.
	_, _, linger = branchTimers(t, b)
	if linger == nil {
		t.Fatal("no linger timer after the timeout")
	}
	if d, _, _ := linger.state(); d != 32*time.Second {
		t.Fatalf("linger %v, want 32 s", d)
	}
	expectKind(t, "487", answerBranch(t, u, b, 487), ReplyAbsorbed)
	if got := u.pc.methodsSent(t); got[len(got)-1] != "ACK" {
		t.Fatalf("sent %v, want the ACK for the 487 last", got)
	}
	linger.fire(t)
	if u.srv.PendingBranches() != 1 {
		t.Fatalf("PendingBranches %d after the linger, want the CANCEL's only", u.srv.PendingBranches())
	}
}

func TestBranchTimersNonInviteUDP(t *testing.T) {
	u, _ := newTimedHarness(t)
	b := sendBranch(t, u, "MESSAGE", BranchOptions{Timeout: 7 * time.Second})
	retr, fr, _ := branchTimers(t, b)
	// Timer E: doubling, capped at T2.
	for _, want := range []time.Duration{2 * sip.T1, 4 * sip.T1, min(8*sip.T1, sip.T2), sip.T2, sip.T2} {
		retr.fire(t)
		if d, _, _ := retr.state(); d != want {
			t.Fatalf("timer E re-armed for %v, want %v", d, want)
		}
	}
	if n := len(u.pc.requests(t)); n != 6 {
		t.Fatalf("sent %d copies, want 1 and 5 retransmissions", n)
	}
	// A provisional reply keeps timer E (at T2) and fr_timer as they are.
	expectKind(t, "100", answerBranch(t, u, b, 100), ReplyProvisional)
	if d, on, _ := retr.state(); d != sip.T2 || !on {
		t.Fatalf("timer E %v (pending %v) while proceeding", d, on)
	}
	if d, _, resets := fr.state(); d != 7*time.Second || resets != 0 {
		t.Fatalf("fr_timer %v, %d resets: a provisional reply does not extend it for a non-INVITE", d, resets)
	}
	retr.fire(t)
	if d, _, _ := retr.state(); d != sip.T2 || len(u.pc.requests(t)) != 7 {
		t.Fatalf("proceeding: timer E %v, %d sent", d, len(u.pc.requests(t)))
	}
	// The final reply stops both, and the branch lingers for timer K (T4).
	expectKind(t, "200", answerBranch(t, u, b, 200), ReplyFinal)
	if _, on, _ := retr.state(); on {
		t.Fatal("timer E runs after the final reply")
	}
	if _, on, _ := fr.state(); on {
		t.Fatal("fr_timer runs after the final reply")
	}
	_, _, linger := branchTimers(t, b)
	if d, on, _ := linger.state(); d != sip.T4 || !on {
		t.Fatalf("linger %v (pending %v), want T4", d, on)
	}
	expectKind(t, "200 again", answerBranch(t, u, b, 200), ReplyAbsorbed)
	linger.fire(t)
	if u.srv.PendingBranches() != 0 {
		t.Fatalf("PendingBranches %d after timer K", u.srv.PendingBranches())
	}
}

func TestBranchFrTimerNonInviteUDP(t *testing.T) {
	u, _ := newTimedHarness(t)
	var fired []*Branch
	b := sendBranch(t, u, "OPTIONS", BranchOptions{OnTimeout: func(b *Branch) { fired = append(fired, b) }})
	retr, fr, _ := branchTimers(t, b)
	if d, _, _ := fr.state(); d != DefaultFrTimer {
		t.Fatalf("fr_timer %v, want the default %v", d, DefaultFrTimer)
	}
	fr.fire(t)
	if !b.TimedOut() || len(fired) != 1 || fired[0] != b {
		t.Fatalf("timedOut %v, OnTimeout %v", b.TimedOut(), fired)
	}
	if _, on, _ := retr.state(); on {
		t.Fatal("timer E runs after fr_timer")
	}
	if got := u.pc.methodsSent(t); len(got) != 1 {
		t.Fatalf("sent %v: a non-INVITE is not CANCELled", got)
	}
	expectKind(t, "late 200", answerBranch(t, u, b, 200), ReplyAbsorbed)
}

func TestTxWaitTimerAfterNonInviteFinal(t *testing.T) {
	u, stubs := newTimedHarness(t)
	u.h.onRequest = func(r *Request) {
		tx, err := r.NewTx()
		if err != nil {
			t.Fatal(err)
		}
		tx.Reply(200, "OK", nil, nil)
	}
	msg := uacReq{method: "MESSAGE", branch: "z9hG4bK-msg-w", cseq: 3}.String()
	u.deliver(t, msg)
	u.h.onRequest = nil
	if len(stubs.armed) != 1 {
		t.Fatalf("%d timers armed, want tm's wait timer", len(stubs.armed))
	}
	wait := stubs.armed[0]
	if d, on, _ := wait.state(); d != RelayWait || !on {
		t.Fatalf("wait timer %v (pending %v), want RelayWait", d, on)
	}
	// While it runs, a retransmission is answered by the transaction...
	u.deliver(t, msg)
	if len(u.h.reqs) != 1 || u.pc.count(t, "200 MESSAGE") != 2 {
		t.Fatalf("routed %d, sent %v", len(u.h.reqs), u.pc.statuses(t))
	}
	// ...and once it fired, the transaction is gone and a retransmission
	// is routed anew.
	wait.fire(t)
	if u.srv.PendingTx() != 0 {
		t.Fatalf("PendingTx %d after the wait timer", u.srv.PendingTx())
	}
	u.deliver(t, msg)
	if len(u.h.reqs) != 2 {
		t.Fatalf("routed %d, want the retransmission routed anew", len(u.h.reqs))
	}
}
