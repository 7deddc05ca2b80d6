package sipnet

import (
	"testing"
)

// TestLiteTxNonInviteUDP: a non-INVITE transaction over UDP is kemi's own
// (liteTx) and behaves as sipgo's ServerTx: a retransmission before any
// reply is absorbed without an answer, a reply after the final one is
// refused, Done closes and the transaction leaves the table when it ends,
// and tm's counters see it created and deleted once.
func TestLiteTxNonInviteUDP(t *testing.T) {
	u, stubs := newTimedHarness(t)
	var tx *Tx
	u.h.onRequest = func(r *Request) {
		var err error
		if tx, err = r.NewTx(); err != nil {
			t.Fatal(err)
		}
	}
	msg := uacReq{method: "MESSAGE", branch: "z9hG4bK-lite-1", cseq: 7}.String()
	u.deliver(t, msg)
	u.h.onRequest = nil
	if tx == nil || !tx.lite.on || tx.stx != nil {
		t.Fatalf("transaction %+v, want a liteTx", tx)
	}
	u.deliver(t, msg) // Trying: absorbed, nothing sent
	if len(u.h.reqs) != 1 || u.srv.Stats().Absorbed != 1 || len(u.pc.statuses(t)) != 0 {
		t.Fatalf("routed %d, absorbed %d, sent %v", len(u.h.reqs), u.srv.Stats().Absorbed, u.pc.statuses(t))
	}
	done := tx.Done()
	if err := tx.Reply(404, "Not Here", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := tx.Reply(200, "OK", nil, nil); err != ErrTxGone {
		t.Fatalf("a second final reply: %v, want ErrTxGone", err)
	}
	u.deliver(t, msg) // Completed: the final reply again
	if got := u.pc.statuses(t); len(got) != 2 || got[0] != "404 MESSAGE" || got[1] != "404 MESSAGE" {
		t.Fatalf("sent %v, want 404 twice", got)
	}
	select {
	case <-done:
		t.Fatal("Done closed before the end")
	default:
	}
	if len(stubs.armed) != 1 {
		t.Fatalf("%d timers armed, want the wait timer", len(stubs.armed))
	}
	stubs.armed[0].fire(t)
	select {
	case <-done:
	default:
		t.Fatal("Done not closed at the end")
	}
	if !tx.Terminated() || u.srv.PendingTx() != 0 {
		t.Fatalf("terminated %v, pending %d", tx.Terminated(), u.srv.PendingTx())
	}
	select {
	case <-tx.Done(): // asked for after the end: closed already
	default:
		t.Fatal("Done after the end not closed")
	}
	tx.Terminate() // once only
	if st := u.srv.TMStats(); st.Transactions != 1 || st.Deleted != 1 || st.Waiting != 1 || st.Completed[4] != 1 {
		t.Fatalf("tm stats %+v", st)
	}
}
