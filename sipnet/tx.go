package sipnet

import (
	"errors"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ErrTxGone is returned when replying on a transaction that was cancelled,
// timed out or already got its final reply.
var ErrTxGone = errors.New("sipnet: transaction is gone (cancelled, terminated or already answered)")

// Tx is a server transaction created on demand: over UDP kemi's own
// (liteTx: tx_lite.go, tx_invite.go), else wrapping sipgo's sip.ServerTx
// (retransmission absorption, timers); either way adding one To tag for all
// replies, CANCEL/487 (cancel) and 2xx retransmission for a local 2xx to
// INVITE over UDP until the ACK arrives.
type Tx struct {
	stx      *sip.ServerTx
	virt     *virtualTx // set instead of stx for a virtual request (virtual.go)
	lite     liteTx     // used instead of stx when lite.on (tx_lite.go)
	lmu      sync.Mutex // guards lite
	req      *Request
	key      string
	srv      *Server
	toTag    string // set by ToTag (or when created, for a virtual one)
	tagOnce  sync.Once
	canceled atomic.Bool
	waited   atomic.Bool // counted in the wait state (tmstats.go)
	gone     atomic.Bool // counted as ended

	mu    sync.Mutex
	final int
	last  int
	// lastRes is the last reply sent, for Retransmit; lastRaw instead
	// when it went out written without building it (a liteTx's).
	lastRes *sip.Response
	lastRaw []byte
	stop2   chan struct{}
	ackKey  string
	wait    wheelTimer // tm's wait timer (afterFinal)

	// relay: set when the request is relayed (branch.go, engine relay).
	onCancel func()
	relay    RelayCell
}

// RelayCell is the relaying layer's state of one relayed request (the
// engine's tm cell): kept on the server transaction and on each of its
// client branches, so replies and timeouts find it.
type RelayCell interface {
	// Pending reports whether a branch still waits for a reply, or a failure
	// handling is due.
	Pending() bool
}

// Request returns the request the transaction belongs to.
func (t *Tx) Request() *Request { return t.req }

// Canceled reports whether a CANCEL terminated the transaction.
func (t *Tx) Canceled() bool { return t.canceled.Load() }

// Terminated reports whether the transaction has ended.
func (t *Tx) Terminated() bool {
	if t.virt != nil {
		return t.virt.terminated()
	}
	if t.lite.on {
		return t.liteTerminated()
	}
	select {
	case <-t.stx.Done():
		return true
	default:
		return false
	}
}

// Done is closed when the transaction ends.
func (t *Tx) Done() <-chan struct{} {
	if t.virt != nil {
		return t.virt.done
	}
	if t.lite.on {
		return t.liteDone()
	}
	return t.stx.Done()
}

// FinalStatus returns the final status sent (0 while none).
func (t *Tx) FinalStatus() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.final
}

// LastStatus returns the last status sent, provisional or final (0 if none).
func (t *Tx) LastStatus() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// Reply sends a reply through the transaction. After a final reply, or once
// the transaction is gone, it returns ErrTxGone.
func (t *Tx) Reply(code int, reason string, extra []sip.Header, body []byte) error {
	t.mu.Lock()
	// A relayed transaction stays answerable after a CANCEL: its final
	// reply (the relayed 487) is still to come.
	if t.final != 0 || (t.canceled.Load() && t.onCancel == nil) || t.Terminated() {
		t.mu.Unlock()
		return ErrTxGone
	}
	if code >= 200 {
		t.final = code
	}
	t.last = code
	t.mu.Unlock()
	tag := "" // a 100 carries no To tag (buildResponse): none made for it
	if code != 100 {
		tag = t.ToTag()
	}
	if t.lite.on && (code < 200 || code >= 300 || !t.req.Msg.IsInvite()) {
		// Over UDP the reply is written without building it, as a
		// stateless one (tx_lite.go), unless a 2xx to INVITE is to be
		// retransmitted until the ACK (start2xx).
		if raw := writeReply(t.req, code, reason, tag, extra, body); raw != nil {
			t.mu.Lock()
			t.lastRes, t.lastRaw = nil, raw
			t.mu.Unlock()
			if err := t.liteRespond(code, liteReply{raw: raw}); err != nil {
				return err
			}
			t.sentLocal(code)
			t.afterFinal(code)
			return nil
		}
	}
	res := buildResponse(t.req, code, reason, tag, extra, body)
	t.mu.Lock()
	t.lastRes, t.lastRaw = res, nil
	t.mu.Unlock()
	if t.virt != nil {
		return t.respondVirtual(code, res)
	}
	if err := t.respond(res); err != nil {
		return err
	}
	t.sentLocal(code)
	if code >= 200 && code < 300 && t.req.Msg.IsInvite() && t.req.Proto() == "udp" {
		t.start2xx(res)
	}
	t.afterFinal(code)
	return nil
}

// sentLocal counts a local reply sent (Reply) and, for a final one, moves
// the transaction to the wait state.
func (t *Tx) sentLocal(code int) {
	t.srv.nReplies.Add(1)
	t.countSent(code, true)
	if code >= 200 {
		t.toWait()
	}
}

// Retransmit sends the last reply again, as tm's t_retransmit_reply does
// when t_check_trans finds the transaction of a request; false when no
// reply was sent yet or the transaction has ended.
func (t *Tx) Retransmit() bool {
	t.mu.Lock()
	res, raw := t.lastRes, t.lastRaw
	t.mu.Unlock()
	switch {
	case raw != nil: // a liteTx's
		return !t.Terminated() && t.req.Listener.writeRawUDP(raw, destinationAddr(t.req)) == nil
	case res == nil || t.Terminated():
		return false
	case t.virt != nil:
		return t.req.Sink(res) == nil
	case t.lite.on: // (a relayed reply carries no destination: liteWrite)
		return t.liteWrite(res) == nil
	case t.req.Listener == nil:
		return false
	}
	return t.req.Listener.send(res) == nil
}

// cancel handles a CANCEL matched to this INVITE transaction: 200 for the
// CANCEL, then 487 for the INVITE unless a final reply went out already.
func (t *Tx) cancel(c *sip.Request) {
	ok := buildResponse(&Request{Msg: c, Listener: t.req.Listener, Src: t.req.Src, srv: t.srv}, 200, "OK", "", nil, nil)
	if err := t.req.Listener.send(ok); err != nil {
		t.srv.log.Debug("reply to CANCEL failed", "error", err)
	} else {
		t.srv.countCancel()
	}
	t.mu.Lock()
	final, relayed := t.final, t.onCancel
	t.mu.Unlock()
	if final != 0 {
		return
	}
	t.canceled.Store(true)
	if relayed != nil {
		relayed() // a proxy cancels its branches and relays their replies
		return
	}
	res := buildResponse(t.req, 487, "Request Terminated", t.ToTag(), nil, nil)
	t.mu.Lock()
	t.final, t.last = 487, 487
	t.mu.Unlock()
	if err := t.respond(res); err != nil {
		t.srv.log.Debug("487 after CANCEL failed", "error", err)
	} else {
		t.countSent(487, true)
	}
	t.toWait()
	if !t.lite.on { // (a CANCEL matches INVITE transactions only)
		t.stx.TerminateGracefully()
	}
}

// SetCancelHandler makes a CANCEL matched to this INVITE transaction call
// f (after the 200 for the CANCEL, from the listener's read goroutine: f
// must not block) instead of answering 487: a proxy cancels its branches
// and relays their final replies. Canceled reports true from then on.
func (t *Tx) SetCancelHandler(f func()) {
	t.mu.Lock()
	t.onCancel = f
	t.mu.Unlock()
}

// ToTag returns the To tag of the transaction's local replies, made when
// first asked for: a relayed transaction whose replies all come from
// downstream never needs one.
func (t *Tx) ToTag() string {
	t.tagOnce.Do(func() {
		if t.toTag == "" {
			t.toTag = newTag()
		}
	})
	return t.toTag
}

// RelayState returns the value set with SetRelayState (nil when none).
func (t *Tx) RelayState() RelayCell {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.relay
}

// SetRelayState attaches the relaying layer's state to the transaction.
func (t *Tx) SetRelayState(v RelayCell) {
	t.mu.Lock()
	t.relay = v
	t.mu.Unlock()
}

// Forward relays a reply received from downstream (its top Via already
// removed) through the transaction. A provisional reply is refused after a
// final one (ErrTxGone); a 2xx to INVITE is always relayed (RFC 3261 16.7:
// every 2xx goes upstream), the ones after the first statelessly. The proxy
// does not retransmit a relayed 2xx itself: the UAS does.
func (t *Tx) Forward(res *sip.Response) error {
	code := int(res.StatusCode)
	t.mu.Lock()
	final := t.final
	again := final != 0 && code >= 200 && code < 300 && t.req.Msg.IsInvite()
	if (final != 0 && !again) || (t.Terminated() && !again) {
		t.mu.Unlock()
		return ErrTxGone
	}
	if final == 0 && code >= 200 {
		t.final = code
	}
	t.last = code
	t.lastRes, t.lastRaw = res, nil
	t.mu.Unlock()
	if t.virt != nil {
		return t.respondVirtual(code, res)
	}
	res.SetTransport(sip.NetworkToUpper(t.req.Proto()))
	var dst netip.AddrPort
	if t.lite.on {
		// Over UDP the liteTx sends it to the request's reply address
		// (liteWrite) without formatting it into the reply and parsing it
		// back: nothing else reads a relayed reply's destination. (A
		// received reply may carry one: the listener's, after a handoff.)
		res.SetDestination("")
		dst = destinationAddr(t.req)
	} else {
		res.SetDestination(destination(t.req))
	}
	if again {
		if !t.lite.on {
			var err error
			if dst, err = netip.ParseAddrPort(res.Destination()); err != nil {
				return err
			}
		}
		err := t.req.Listener.write(res, dst)
		if err == nil {
			t.srv.nRelayed.Add(1)
			t.countSent(code, false)
		}
		return err
	}
	if err := t.respond(res); err != nil {
		return err
	}
	t.srv.nRelayed.Add(1)
	t.countSent(code, false)
	if code >= 200 {
		t.toWait()
	}
	t.afterFinal(code)
	return nil
}

// afterFinal schedules the end of the transaction once code went out. sipgo
// would keep a non-INVITE UDP transaction for timer J (64*T1 = 32 s) to
// answer retransmissions; tm keeps it for its wait timer (wt_timer, 5 s). At
// thousands of requests per second the 32 s of requests and replies held make
// the heap, and the garbage collector's work, six times bigger.
func (t *Tx) afterFinal(code int) {
	switch {
	case code < 200:
	case !t.req.Msg.IsInvite() && t.req.Proto() == "udp":
		// Not stopped when the transaction ends sooner (shutdown): it
		// then finds it ended.
		t.srv.arm(&t.wait, RelayWait, txWaitEnd, t, false)
	case t.lite.on:
		// An INVITE over UDP: Timer L, H or I ends it (tx_invite.go), as
		// sipgo's TerminateGracefully left it to its timers.
	default:
		t.stx.TerminateGracefully()
	}
}

// txWaitEnd is the wait timer's callback (see Server.arm).
func txWaitEnd(x any) {
	if t := x.(*Tx); !t.Terminated() {
		t.Terminate()
	}
}

// RelayWait is how long a non-INVITE transaction over UDP stays to answer
// retransmissions after its final reply (tm's wt_timer default).
const RelayWait = 5 * time.Second

// respond sends res through the transaction's state machine.
func (t *Tx) respond(res *sip.Response) error {
	if t.lite.on {
		return t.liteRespond(int(res.StatusCode), liteReply{res: res})
	}
	return t.stx.Respond(res)
}

// whenEnded is what follows the end of the transaction: it leaves the
// table, stops retransmitting a 2xx and is counted.
func (t *Tx) whenEnded() {
	t.srv.txs.dropTx(t.key, t)
	t.stop2xx()
	t.ended()
}

// receive passes a retransmission or an ACK to the transaction.
func (t *Tx) receive(m *sip.Request) {
	if t.lite.on {
		t.liteReceive(m)
		return
	}
	if err := t.stx.Receive(m); err != nil {
		t.srv.log.Debug("transaction receive", "error", err)
	}
}

func (t *Tx) terminate() { t.Terminate() }

// Terminate ends the transaction without a reply (a relay that failed after
// the script answered statelessly): a retransmission is routed anew.
func (t *Tx) Terminate() {
	if t.virt != nil {
		t.virt.terminate()
		return
	}
	if t.lite.on {
		t.liteEnd()
		return
	}
	t.stx.Terminate()
}

// start2xx retransmits a 2xx to INVITE at T1, 2T1, ... capped at T2, until
// the ACK arrives or 64*T1 passes (RFC 3261 13.3.1.4).
func (t *Tx) start2xx(res *sip.Response) {
	cid := t.req.Msg.CallID()
	cseq := t.req.Msg.CSeq()
	if cid == nil || cseq == nil {
		return
	}
	key := ackTableKey(*cid, cseq.SeqNo)
	stop := make(chan struct{})
	t.mu.Lock()
	t.stop2, t.ackKey = stop, key
	t.mu.Unlock()
	acks := &t.srv.txs.acks
	acks.add(key, t)
	ln, dst := t.req.Listener, res.Destination()
	go func() {
		defer acks.remove(key, t)
		iv := sip.T1
		deadline := time.NewTimer(64 * sip.T1)
		defer deadline.Stop()
		tick := time.NewTimer(iv)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-deadline.C:
				return
			case <-tick.C:
				if err := ln.writeTo(res, dst); err != nil {
					return
				}
				iv *= 2
				if iv > sip.T2 {
					iv = sip.T2
				}
				tick.Reset(iv)
			}
		}
	}()
}

func (t *Tx) stop2xx() {
	t.mu.Lock()
	stop := t.stop2
	t.stop2 = nil
	t.mu.Unlock()
	if stop != nil {
		close(stop)
	}
}

// ackTable maps Call-ID|CSeq of INVITEs whose 2xx is being retransmitted.
type ackTable struct {
	mu sync.Mutex
	m  map[string]*Tx
}

func (a *ackTable) add(key string, t *Tx) {
	a.mu.Lock()
	a.m[key] = t
	a.mu.Unlock()
}

func (a *ackTable) remove(key string, t *Tx) {
	a.mu.Lock()
	if a.m[key] == t {
		delete(a.m, key)
	}
	a.mu.Unlock()
}

func ackMatched(tab *table, ack *sip.Request) {
	acks := &tab.acks
	cid := ack.CallID()
	cseq := ack.CSeq()
	if cid == nil || cseq == nil {
		return
	}
	acks.mu.Lock()
	t := acks.m[ackTableKey(*cid, cseq.SeqNo)]
	acks.mu.Unlock()
	if t != nil {
		t.stop2xx()
	}
}

// ackTableKey is the ackTable key of an INVITE: Call-ID|CSeq number.
func ackTableKey(callID sip.CallIDHeader, seq uint32) string {
	return string(callID) + "|" + strconv.FormatUint(uint64(seq), 10)
}
