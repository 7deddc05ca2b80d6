package sipnet

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
)

// liteTx is kemi's own server transaction for a request received over UDP:
// a non-INVITE one (RFC 3261 17.2.2) here, an INVITE (17.2.1) in
// tx_invite.go. It is used instead of sipgo's ServerTx, which for
// every such request allocates a state machine, two channels, a Timer J
// (time.AfterFunc, 32 s, which kemi's wait timer always beats: see
// Tx.afterFinal) and the arguments of three debug log calls. It does what
// sipgo's does for it: a retransmission of the request is absorbed while no
// reply was sent (Trying), answered with the last reply after one
// (Proceeding, Completed); a reply after the final one is ignored; a reply
// that cannot be written ends the transaction. It ends on Tx.Terminate
// (the wait timer, shutdown). It lives inside its Tx.
type liteTx struct {
	on    bool // the Tx uses it (else sipgo's ServerTx or a virtual one)
	state int
	last  liteReply
	done  chan struct{} // made on demand by Tx.Done; closed at the end

	// An INVITE's (tx_invite.go): ta is Timer 1xx, then G (on wa); tb
	// is Timer H, L or I (the Tx's wait timer); gIv is G's interval;
	// no1xx is set once a reply or a retransmission stopped Timer 1xx.
	invite bool
	no1xx  bool
	gIv    time.Duration
	ta, tb timer
	wa     wheelTimer
}

// liteTx states.
const (
	liteTrying = iota
	liteProceeding
	liteCompleted
	liteTerminated
)

// usesLite reports whether a transaction for r can be a liteTx: a request
// on a datagram socket, an INVITE (tx_invite.go) or not. A CANCEL (one no
// INVITE transaction matched, routed by the script) stays with sipgo, whose
// ServerTx sends the replies to a CANCEL outside its state machine.
func usesLite(r *Request) bool {
	return r.Listener != nil && r.Listener.pc != nil && !r.Msg.IsAck() && !r.Msg.IsCancel()
}

// newLiteTx creates r's transaction as a liteTx (NewTx, usesLite true).
func (r *Request) newLiteTx() *Tx {
	tx := &Tx{req: r, key: r.key, srv: r.srv}
	tx.lite.on = true
	r.srv.tm.created.Add(1)
	if r.Msg.IsInvite() {
		tx.startInvite()
	}
	r.tx = tx
	r.srv.txs.setTx(r.key, tx)
	return tx
}

// liteReply is a reply a liteTx sent: a reply object (relayed, or built),
// or the bytes of a local one written without building it (Tx.Reply).
type liteReply struct {
	res *sip.Response
	raw []byte
}

func (r liteReply) set() bool { return r.res != nil || r.raw != nil }

// liteSend sends rep (see liteWrite).
func (t *Tx) liteSend(rep liteReply) error {
	if rep.raw != nil {
		return t.req.Listener.writeRawUDP(rep.raw, destinationAddr(t.req))
	}
	return t.liteWrite(rep.res)
}

// writeReply returns the bytes of buildResponse(r, code, reason, toTag,
// extra, body) as sent, written without building the reply (writeResponse),
// or nil when writeResponse cannot write it.
func writeReply(r *Request, code int, reason, toTag string, extra []sip.Header, body []byte) []byte {
	buf := replyBufs.Get().(*replyBuf)
	buf.b = buf.b[:0]
	var raw []byte
	if writeResponse(buf, r, code, reason, toTag, extra, body) {
		raw = append(make([]byte, 0, len(buf.b)), buf.b...)
	}
	putReplyBuf(buf)
	return raw
}

// writeRawUDP sends an encoded message on the listener's datagram socket
// (write's too, once it encoded one).
func (ln *Listener) writeRawUDP(b []byte, dst netip.AddrPort) error {
	if uc, ok := ln.pc.(*net.UDPConn); ok {
		return ln.sendUDP(uc, b, dst)
	}
	_, err := ln.pc.WriteTo(b, net.UDPAddrFromAddrPort(dst))
	return err
}

// liteWrite sends res where sipgo's ServerTx sent it through udpConn: to
// the reply's destination when it has one (a reply built here), else (a
// relayed reply: Tx.Forward no longer writes the address into it) to the
// request's reply address (RFC 3261 18.2.2, RFC 3581), which Forward wrote.
func (t *Tx) liteWrite(res *sip.Response) error {
	var dst netip.AddrPort
	if d := res.MessageData.Destination(); d != "" { // (Destination would make one up)
		var err error
		if dst, err = netip.ParseAddrPort(d); err != nil {
			dst = t.req.Src // as udpConn.WriteMsg
		}
	} else {
		dst = destinationAddr(t.req)
	}
	return t.req.Listener.write(res, dst)
}

// liteRespond is ServerTx.Respond for a liteTx: rep with status code.
func (t *Tx) liteRespond(code int, rep liteReply) error {
	l := &t.lite
	if l.invite {
		return t.inviteRespond(code, rep)
	}
	t.lmu.Lock()
	switch l.state {
	case liteTerminated:
		t.lmu.Unlock()
		return sip.ErrTransactionTerminated
	case liteCompleted:
		t.lmu.Unlock()
		return nil // sipgo's Completed state ignores it
	}
	if code >= 200 {
		l.state = liteCompleted
	} else {
		l.state = liteProceeding
	}
	l.last = rep
	err := t.liteSend(rep)
	t.lmu.Unlock()
	if err != nil {
		t.liteEnd()
		return fmt.Errorf("%w. %w", err, sip.ErrTransactionTransport)
	}
	return nil
}

// liteReceive is ServerTx.Receive for a retransmission of the request.
func (t *Tx) liteReceive(m *sip.Request) {
	if t.lite.invite {
		t.inviteReceive(m)
		return
	}
	if m.Method != t.req.Msg.Method {
		t.srv.log.Debug("transaction receive", "error", "unexpected message error")
		return
	}
	t.lmu.Lock()
	rep := t.lite.last
	resend := rep.set() && (t.lite.state == liteProceeding || t.lite.state == liteCompleted)
	var err error
	if resend {
		err = t.liteSend(rep)
	}
	t.lmu.Unlock()
	if err != nil {
		t.liteEnd()
	}
}

// liteEnd ends a liteTx once: Done closes and the transaction leaves the
// table, as sipgo's OnTerminate callbacks do for its ServerTx.
func (t *Tx) liteEnd() {
	t.lmu.Lock()
	if t.lite.state == liteTerminated {
		t.lmu.Unlock()
		return
	}
	t.lite.state = liteTerminated
	t.lite.inviteStop()
	if t.lite.done != nil {
		close(t.lite.done)
	}
	t.lmu.Unlock()
	t.whenEnded()
}

func (t *Tx) liteTerminated() bool {
	t.lmu.Lock()
	defer t.lmu.Unlock()
	return t.lite.state == liteTerminated
}

func (t *Tx) liteDone() <-chan struct{} {
	t.lmu.Lock()
	defer t.lmu.Unlock()
	if t.lite.done == nil {
		t.lite.done = make(chan struct{})
		if t.lite.state == liteTerminated {
			close(t.lite.done)
		}
	}
	return t.lite.done
}
