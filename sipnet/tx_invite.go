package sipnet

import (
	"fmt"

	"github.com/emiago/sipgo/sip"
)

// An INVITE server transaction over UDP is a liteTx too (RFC 3261 17.2.1,
// with RFC 6026's Accepted state), doing what sipgo's ServerTx did for it,
// without its state machine, channels, a runtime timer per timer and a
// goroutine per ACK:
//
//   - Proceeding (from creation): a retransmitted INVITE is answered with
//     the last reply, none while there is none. Timer 1xx (sipgo's 200 ms):
//     when neither a reply nor a retransmission came by then, a "100 Trying"
//     of sipgo's making goes out (tm's auto_inv_100, sent by the relay at
//     t_relay, normally beats it).
//   - a 2xx: Accepted. Retransmitted INVITEs and ACKs are absorbed without
//     an answer (the UAS, or Tx.start2xx for a local 2xx, retransmits the
//     2xx); Timer L (64*T1) ends the transaction.
//   - a 300–699: Completed. Timer G resends it at T1, 2T1, … capped at T2,
//     a retransmitted INVITE gets it at once; the ACK (same branch) moves
//     to Confirmed; Timer H (64*T1) ends the transaction without one.
//   - Confirmed: everything is absorbed; Timer I (T4) ends it.
//
// A reply that cannot be written ends the transaction. Timer 1xx and G are
// the liteTx's ta (its wheelTimer wa), H, L and I the Tx's wait timer,
// whose callback ends the transaction: all on the server's wheels
// (timer.go). A CANCEL is server.go's (Tx.cancel), as before.

// liteAccepted and liteConfirmed are the INVITE-only liteTx states.
const (
	liteAccepted = liteTerminated + 1 + iota
	liteConfirmed
)

// startInvite arms Timer 1xx of a new INVITE liteTx (NewTx).
func (t *Tx) startInvite() {
	l := &t.lite
	t.lmu.Lock()
	l.invite = true
	l.state = liteProceeding
	l.ta = t.srv.arm(&l.wa, sip.Timer_1xx, txInviteTimerA, t, false)
	t.lmu.Unlock()
}

// inviteRespond is ServerTx.Respond for an INVITE liteTx.
func (t *Tx) inviteRespond(code int, rep liteReply) error {
	l := &t.lite
	t.lmu.Lock()
	switch l.state {
	case liteTerminated:
		t.lmu.Unlock()
		return sip.ErrTransactionTerminated
	case liteProceeding:
		l.no1xx = true
		l.ta.Stop() // Timer 1xx
		switch {
		case code < 200:
		case code < 300:
			l.state = liteAccepted
		default:
			l.state = liteCompleted
		}
	case liteAccepted:
		if code < 200 || code >= 300 {
			t.lmu.Unlock()
			return nil // ignored, as by sipgo's Accepted state
		}
	default: // Completed, Confirmed: ignored
		t.lmu.Unlock()
		return nil
	}
	l.last = rep
	err := t.liteSend(rep)
	if err == nil && code >= 200 {
		switch l.state {
		case liteAccepted:
			if l.tb == nil { // the first 2xx (a later one is only sent)
				l.tb = t.srv.arm(&t.wait, sip.Timer_L, txWaitEnd, t, false)
			}
		case liteCompleted:
			l.gIv = sip.Timer_G
			l.ta = t.srv.arm(&l.wa, l.gIv, txInviteTimerA, t, false)
			l.tb = t.srv.arm(&t.wait, sip.Timer_H, txWaitEnd, t, false)
		}
	}
	t.lmu.Unlock()
	if err != nil {
		t.liteEnd()
		return fmt.Errorf("%w. %w", err, sip.ErrTransactionTransport)
	}
	return nil
}

// inviteReceive is ServerTx.Receive for an INVITE liteTx: a retransmitted
// INVITE, or the ACK for a non-2xx final reply (same branch).
func (t *Tx) inviteReceive(m *sip.Request) {
	l := &t.lite
	t.lmu.Lock()
	if l.state == liteProceeding && !l.no1xx {
		l.no1xx = true // any request stops Timer 1xx, as in sipgo
		l.ta.Stop()
	}
	var err error
	switch {
	case m.IsInvite():
		if rep := l.last; rep.set() && (l.state == liteProceeding || l.state == liteCompleted) {
			err = t.liteSend(rep)
		}
	case m.IsAck():
		if l.state == liteCompleted {
			l.state = liteConfirmed
			l.ta.Stop() // Timer G
			l.tb.Stop() // Timer H
			l.tb = t.srv.arm(&t.wait, sip.Timer_I, txWaitEnd, t, false)
		}
	default:
		t.lmu.Unlock()
		t.srv.log.Debug("transaction receive", "error", "unexpected message error")
		return
	}
	t.lmu.Unlock()
	if err != nil {
		t.liteEnd()
	}
}

// txInviteTimerA is the callback of an INVITE liteTx's ta: Timer 1xx in
// Proceeding, Timer G in Completed; a stale one does nothing.
func txInviteTimerA(x any) {
	t := x.(*Tx)
	l := &t.lite
	t.lmu.Lock()
	var err error
	switch l.state {
	case liteProceeding:
		if l.no1xx {
			break
		}
		// sipgo's ServerTx's own 100 (its Timer_1xx): built from the
		// request as it is now, without a To tag, through the transaction.
		l.no1xx = true
		trying := sip.NewResponseFromRequest(t.req.Msg, 100, "Trying", nil)
		l.last = liteReply{res: trying}
		if err = t.liteWrite(trying); err != nil {
			t.srv.log.Error("send '100 Trying' response failed", "error", fmt.Errorf("%w. %w", err, sip.ErrTransactionTransport), "tx", t.key)
		}
	case liteCompleted:
		if err = t.liteSend(l.last); err == nil {
			l.gIv = min(2*l.gIv, sip.T2)
			l.ta = t.srv.arm(&l.wa, l.gIv, txInviteTimerA, t, false)
		}
	}
	t.lmu.Unlock()
	if err != nil {
		t.liteEnd()
	}
}

// inviteStop stops an INVITE liteTx's timers when it ends (t.lmu held).
func (l *liteTx) inviteStop() {
	if l.ta != nil {
		l.ta.Stop()
	}
	if l.tb != nil {
		l.tb.Stop()
	}
}
