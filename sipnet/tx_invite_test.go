package sipnet

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The INVITE server transaction over UDP (tx_invite.go), its timers stubs
// (timer_test.go): the test fires them.

// newLiteInvite delivers an INVITE whose handler creates its transaction
// (t_newtran) and answers nothing; it returns the transaction and its
// Timer 1xx.
func newLiteInvite(t *testing.T, u *udpHarness, stubs *timerStubs) (*Tx, *stubTimer) {
	t.Helper()
	var tx *Tx
	u.h.onRequest = func(r *Request) {
		var err error
		if tx, err = r.NewTx(); err != nil {
			t.Fatalf("NewTx: %v", err)
		}
	}
	u.deliver(t, uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}.String())
	u.h.onRequest = nil
	if tx == nil || !tx.lite.on || !tx.lite.invite || tx.stx != nil {
		t.Fatalf("transaction %+v, want an INVITE liteTx", tx)
	}
	if len(stubs.armed) != 1 {
		t.Fatalf("%d timers armed, want Timer 1xx", len(stubs.armed))
	}
	if d, pending, _ := stubs.armed[0].state(); d != sip.Timer_1xx || !pending {
		t.Fatalf("Timer 1xx %v pending %v", d, pending)
	}
	return tx, stubs.armed[0]
}

// allSent lists "CODE METHOD" of everything sent, 100 Trying included.
func allSent(t *testing.T, p *pcRecorder) []string {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, d := range p.sent {
		m, err := sip.ParseMessage(d.data)
		res, ok := m.(*sip.Response)
		if err != nil || !ok {
			t.Fatalf("sent %q", d.data)
		}
		out = append(out, fmt.Sprintf("%d %s", res.StatusCode, res.CSeq().MethodName))
	}
	return out
}

func isPending(t *testing.T, s *stubTimer, want bool) {
	t.Helper()
	if _, p, _ := s.state(); p != want {
		t.Fatalf("timer of %v pending %v, want %v", s.d, p, want)
	}
}

// TestInviteTxNegativeFinal: retransmissions before a reply are absorbed
// (and stop Timer 1xx), answered with the last provisional, then with the
// final 486; Timer G resends the 486 at T1, 2T1, 4T1, T2, T2; the ACK stops
// G and H and starts Timer I, after which everything is absorbed; Timer I
// ends the transaction, counted once by tm's statistics.
func TestInviteTxNegativeFinal(t *testing.T) {
	u, stubs := newTimedHarness(t)
	tx, t1xx := newLiteInvite(t, u, stubs)
	inv := uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}.String()
	u.deliver(t, inv)
	if len(u.h.reqs) != 1 || u.srv.Stats().Absorbed != 1 || len(allSent(t, u.pc)) != 0 {
		t.Fatalf("routed %d, absorbed %d, sent %v", len(u.h.reqs), u.srv.Stats().Absorbed, allSent(t, u.pc))
	}
	isPending(t, t1xx, false) // a retransmission stops Timer 1xx, as in sipgo
	if err := tx.Reply(180, "Ringing", nil, nil); err != nil {
		t.Fatal(err)
	}
	u.deliver(t, inv)
	if got := allSent(t, u.pc); len(got) != 2 || got[1] != "180 INVITE" {
		t.Fatalf("sent %v, want 180 twice", got)
	}
	done := tx.Done()
	if err := tx.Reply(486, "Busy Here", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Reply(500, "Again", nil, nil); !errors.Is(err, ErrTxGone) {
		t.Fatalf("a second final reply: %v", err)
	}
	if len(stubs.armed) != 3 {
		t.Fatalf("%d timers armed, want 1xx, G, H", len(stubs.armed))
	}
	g, h := stubs.armed[1], stubs.armed[2]
	if g.d != sip.T1 || h.d != 64*sip.T1 {
		t.Fatalf("Timer G %v, H %v", g.d, h.d)
	}
	u.deliver(t, inv) // Completed: the 486 again
	if got := u.pc.count(t, "486 INVITE"); got != 2 {
		t.Fatalf("sent %v, want 486 twice", u.pc.statuses(t))
	}
	// Timer G: each firing resends the 486 and arms the next, doubling up
	// to T2.
	want := []time.Duration{2 * sip.T1, 4 * sip.T1, sip.T2, sip.T2}
	for i, d := range want {
		g.fire(t)
		if got := u.pc.count(t, "486 INVITE"); got != 3+i {
			t.Fatalf("after Timer G %d: sent %v", i+1, u.pc.statuses(t))
		}
		if len(stubs.armed) != 4+i {
			t.Fatalf("%d timers armed after Timer G %d", len(stubs.armed), i+1)
		}
		g = stubs.armed[len(stubs.armed)-1]
		if g.d != d {
			t.Fatalf("Timer G %d: next in %v, want %v", i+1, g.d, d)
		}
	}
	n := len(allSent(t, u.pc))
	// The ACK (the INVITE's branch) belongs to the transaction.
	ack := uacReq{method: "ACK", branch: inviteBranch, cseq: 1, toTag: tx.ToTag()}.String()
	u.deliver(t, ack)
	if len(u.h.reqs) != 1 {
		t.Fatalf("the ACK was routed: %v", u.h.methods())
	}
	isPending(t, g, false)
	isPending(t, h, false)
	i := stubs.armed[len(stubs.armed)-1]
	if i.d != sip.T4 {
		t.Fatalf("Timer I %v, want T4", i.d)
	}
	u.deliver(t, inv) // Confirmed: absorbed
	u.deliver(t, ack)
	if len(u.h.reqs) != 1 || len(allSent(t, u.pc)) != n {
		t.Fatalf("Confirmed: routed %v, sent %v", u.h.methods(), allSent(t, u.pc)[n:])
	}
	select {
	case <-done:
		t.Fatal("ended before Timer I")
	default:
	}
	i.fire(t)
	select {
	case <-done:
	default:
		t.Fatal("Timer I did not end the transaction")
	}
	if !tx.Terminated() || u.srv.PendingTx() != 0 {
		t.Fatalf("terminated %v, pending %d", tx.Terminated(), u.srv.PendingTx())
	}
	u.deliver(t, inv) // a new transaction now: routed
	if len(u.h.reqs) != 2 {
		t.Fatalf("after the end the INVITE was not routed: %v", u.h.methods())
	}
	st := u.srv.TMStats()
	if st.Transactions != 1 || st.Deleted != 1 || st.Waiting != 1 || st.Completed[4] != 1 || st.RplGenerated != 2 || st.RplSent != 2 {
		t.Fatalf("tm stats %+v", st)
	}
}

// TestInviteTxTimerH: without an ACK, Timer H ends the transaction and
// stops Timer G.
func TestInviteTxTimerH(t *testing.T) {
	u, stubs := newTimedHarness(t)
	tx, _ := newLiteInvite(t, u, stubs)
	if err := tx.Reply(603, "Decline", nil, nil); err != nil {
		t.Fatal(err)
	}
	g, h := stubs.armed[1], stubs.armed[2]
	g.fire(t)
	g = stubs.armed[3]
	h.fire(t)
	if !tx.Terminated() || u.srv.PendingTx() != 0 {
		t.Fatalf("after Timer H: terminated %v, pending %d", tx.Terminated(), u.srv.PendingTx())
	}
	isPending(t, g, false)
	if got := u.pc.count(t, "603 INVITE"); got != 2 {
		t.Fatalf("sent %v", u.pc.statuses(t))
	}
	if err := tx.Reply(200, "OK", nil, nil); !errors.Is(err, ErrTxGone) {
		t.Fatalf("a reply after the end: %v", err)
	}
	if st := u.srv.TMStats(); st.Transactions != 1 || st.Deleted != 1 {
		t.Fatalf("tm stats %+v", st)
	}
}

// TestInviteTx2xx: a relayed 2xx goes out once, moves to Accepted, where a
// retransmitted INVITE is absorbed unanswered and a later 2xx is still
// relayed; Timer L (64*T1) ends the transaction.
func TestInviteTx2xx(t *testing.T) {
	u, stubs := newTimedHarness(t)
	tx, t1xx := newLiteInvite(t, u, stubs)
	if err := tx.Reply(100, "Trying", nil, nil); err != nil { // tm's auto_inv_100
		t.Fatal(err)
	}
	isPending(t, t1xx, false)
	ok := sip.NewResponseFromRequest(tx.req.Msg, 200, "OK", nil)
	if err := tx.Forward(ok); err != nil {
		t.Fatal(err)
	}
	if len(stubs.armed) != 2 || stubs.armed[1].d != sip.Timer_L {
		t.Fatalf("%d timers, want Timer L", len(stubs.armed))
	}
	l := stubs.armed[1]
	u.deliver(t, uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}.String())
	if got := allSent(t, u.pc); len(got) != 2 || got[0] != "100 INVITE" || got[1] != "200 INVITE" || len(u.h.reqs) != 1 {
		t.Fatalf("sent %v, routed %v", got, u.h.methods())
	}
	again := sip.NewResponseFromRequest(tx.req.Msg, 200, "OK", nil)
	if err := tx.Forward(again); err != nil { // another branch's 2xx
		t.Fatal(err)
	}
	if got := u.pc.count(t, "200 INVITE"); got != 2 {
		t.Fatalf("sent %v", u.pc.statuses(t))
	}
	l.fire(t)
	if !tx.Terminated() || u.srv.PendingTx() != 0 {
		t.Fatalf("after Timer L: terminated %v, pending %d", tx.Terminated(), u.srv.PendingTx())
	}
	if st := u.srv.TMStats(); st.Transactions != 1 || st.Deleted != 1 || st.Completed[2] != 2 || st.RplGenerated != 1 || st.RplSent != 3 {
		t.Fatalf("tm stats %+v", st)
	}
}

// TestInviteTxCancel: a CANCEL before the final reply gets its 200 and the
// INVITE a 487, retransmitted on Timer G until the ACK, as before.
func TestInviteTxCancel(t *testing.T) {
	u, stubs := newTimedHarness(t)
	tx, _ := newLiteInvite(t, u, stubs)
	if err := tx.Reply(180, "Ringing", nil, nil); err != nil {
		t.Fatal(err)
	}
	u.deliver(t, uacReq{method: "CANCEL", branch: inviteBranch, cseq: 1}.String())
	if got := allSent(t, u.pc); len(got) != 3 || got[1] != "200 CANCEL" || got[2] != "487 INVITE" || len(u.h.reqs) != 1 {
		t.Fatalf("sent %v, routed %v", got, u.h.methods())
	}
	if !tx.Canceled() || tx.FinalStatus() != 487 {
		t.Fatalf("canceled %v final %d", tx.Canceled(), tx.FinalStatus())
	}
	g, h := stubs.armed[1], stubs.armed[2]
	g.fire(t)
	if got := u.pc.count(t, "487 INVITE"); got != 2 {
		t.Fatalf("Timer G: sent %v", u.pc.statuses(t))
	}
	u.deliver(t, uacReq{method: "ACK", branch: inviteBranch, cseq: 1, toTag: tx.ToTag()}.String())
	isPending(t, stubs.armed[3], false)
	isPending(t, h, false)
	stubs.armed[4].fire(t) // Timer I
	if !tx.Terminated() {
		t.Fatal("not ended after Timer I")
	}
	// The INVITE's transaction and the CANCEL's, as tm counts them.
	if st := u.srv.TMStats(); st.Transactions != 2 || st.Deleted != 2 || st.Completed[4] != 1 || st.Completed[2] != 1 {
		t.Fatalf("tm stats %+v", st)
	}
}

// TestInviteTxTimer1xx: with no reply within Timer 1xx the transaction
// sends sipgo's own 100 Trying, byte for byte as sipgo's ServerTx does,
// and answers a retransmission with it.
func TestInviteTxTimer1xx(t *testing.T) {
	u, stubs := newTimedHarness(t)
	tx, t1xx := newLiteInvite(t, u, stubs)
	t1xx.fire(t)
	u.deliver(t, uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}.String())
	u.pc.mu.Lock()
	sent := make([][]byte, len(u.pc.sent))
	for i, d := range u.pc.sent {
		sent[i] = d.data
	}
	u.pc.mu.Unlock()
	if len(sent) != 2 || !bytes.Equal(sent[0], sent[1]) {
		t.Fatalf("sent %q", sent)
	}
	if tx.LastStatus() != 0 || u.srv.TMStats().RplSent != 0 {
		t.Fatal("sipgo's 100 is counted as a reply of the transaction")
	}

	// sipgo's ServerTx on the same request (its own Timer_1xx, real time).
	v := newUDPHarness(t)
	msg := uacReq{method: "INVITE", branch: inviteBranch, cseq: 1}.parse(t)
	msg.SetTransport("UDP")
	msg.SetSource(uacAddr.String())
	stx := sip.NewServerTx("k", msg, udpConn{ln: v.ln, dst: uacAddr}, v.srv.log)
	if err := stx.Init(); err != nil {
		t.Fatal(err)
	}
	defer stx.Terminate()
	deadline := time.Now().Add(10 * time.Second)
	for len(allSent(t, v.pc)) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	v.pc.mu.Lock()
	defer v.pc.mu.Unlock()
	if len(v.pc.sent) != 1 || !bytes.Equal(v.pc.sent[0].data, sent[0]) {
		t.Fatalf("sipgo's 100 (%d sent):\n%q\nkemi's:\n%q", len(v.pc.sent), v.pc.sent[0].data, sent[0])
	}
}

// TestLiteTxRelayedReplyAddress: a relayed reply goes to the request's
// reply address (the source address, its Via port without rport), whatever destination the
// received reply carried (a handoff's), and so does tm's retransmission of
// it (Tx.Retransmit) and the transaction's answer to a retransmission.
func TestLiteTxRelayedReplyAddress(t *testing.T) {
	u, _ := newTimedHarness(t)
	var tx *Tx
	u.h.onRequest = func(r *Request) { tx, _ = r.NewTx() }
	inv := uacReq{method: "INVITE", branch: inviteBranch, cseq: 1, sentBy: "198.51.100.7:5999"}.String()
	u.deliver(t, inv)
	u.h.onRequest = nil
	ringing := sip.NewResponseFromRequest(tx.req.Msg, 180, "Ringing", nil)
	ringing.SetDestination("127.0.0.1:1")
	if err := tx.Forward(ringing); err != nil {
		t.Fatal(err)
	}
	if !tx.Retransmit() {
		t.Fatal("Retransmit failed")
	}
	u.deliver(t, inv)
	want := netip.AddrPortFrom(uacAddr.Addr(), 5999)
	u.pc.mu.Lock()
	defer u.pc.mu.Unlock()
	if len(u.pc.sent) != 3 {
		t.Fatalf("%d sent, want 3", len(u.pc.sent))
	}
	for i, d := range u.pc.sent {
		if d.to != want {
			t.Fatalf("reply %d sent to %v, want %v", i, d.to, want)
		}
	}
}

// TestLiteTxLocalRepliesAsBuilt: a liteTx writes its local replies without
// building them; the bytes are those of the reply built as before
// (buildResponse, encoded as sipgo does), for the first sending, an
// answer to a retransmission, Timer G and tm's Retransmit.
func TestLiteTxLocalRepliesAsBuilt(t *testing.T) {
	for _, method := range []string{"INVITE", "MESSAGE"} {
		t.Run(method, func(t *testing.T) {
			u, stubs := newTimedHarness(t)
			var tx *Tx
			u.h.onRequest = func(r *Request) { tx, _ = r.NewTx() }
			req := uacReq{method: method, branch: inviteBranch, cseq: 1, sentBy: "198.51.100.7:5999"}.String()
			u.deliver(t, req)
			u.h.onRequest = nil
			extra := []sip.Header{sip.NewHeader("X-Why", "busy"), sip.NewHeader("Content-Type", "text/plain")}
			if err := tx.Reply(100, "Trying", nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := tx.Reply(486, "Busy Here", extra, []byte("sorry")); err != nil {
				t.Fatal(err)
			}
			u.deliver(t, req)
			if !tx.Retransmit() {
				t.Fatal("Retransmit failed")
			}
			if method == "INVITE" {
				stubs.armed[1].fire(t) // Timer G
			}
			enc := func(res *sip.Response) []byte {
				var b replyBuf
				encodeMessage(&b, res)
				return b.b
			}
			trying := enc(buildResponse(tx.req, 100, "Trying", "", nil, nil))
			busy := enc(buildResponse(tx.req, 486, "Busy Here", tx.ToTag(), extra, []byte("sorry")))
			want := netip.AddrPortFrom(uacAddr.Addr(), 5999)
			u.pc.mu.Lock()
			defer u.pc.mu.Unlock()
			n := 4
			if method == "INVITE" {
				n = 5
			}
			if len(u.pc.sent) != n {
				t.Fatalf("%d sent, want %d", len(u.pc.sent), n)
			}
			for i, d := range u.pc.sent {
				w := busy
				if i == 0 {
					w = trying
				}
				if !bytes.Equal(d.data, w) || d.to != want {
					t.Fatalf("reply %d to %v:\n%s\nwant to %v:\n%s", i, d.to, d.data, want, w)
				}
			}
		})
	}
}
