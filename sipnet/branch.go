package sipnet

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// This file is the client transaction of relaying, Kamailio's tm UAC
// branches: Branch, its state machine (calling, proceeding, completed), its
// timers, the hop-by-hop ACK and CANCEL, and the table replies are matched
// in.
//
// Branch is kemi's own client transaction rather than sipgo's sip.ClientTx:
// ClientTx hands replies over an unbuffered channel (one goroutine parked
// per relayed request to read it), takes its timeouts from sipgo's global
// Timer_B/Timer_F (tm's fr_timer and fr_inv_timer are per configuration, and
// fr_inv_timer starts at the first provisional reply) and cannot CANCEL.

// DefaultFrTimer and DefaultFrInvTimer are tm's fr_timer and fr_inv_timer
// defaults.
const (
	DefaultFrTimer    = 30 * time.Second
	DefaultFrInvTimer = 120 * time.Second
)

// NewBranchID returns a fresh RFC 3261 branch.
func NewBranchID() string {
	const prefix = "z9hG4bKkm"
	var b [len(prefix) + 16]byte
	copy(b[:], prefix)
	v := rand.Uint64()
	for i := len(prefix); i < len(b); i++ {
		b[i] = hexdigits[v&0xf]
		v >>= 4
	}
	return string(b[:])
}

// ReplyKind says what a reply received on a Branch means for the proxy.
type ReplyKind int

const (
	// ReplyAbsorbed: a retransmission of a final reply, a reply to our
	// CANCEL, or a reply after the branch ended: nothing to relay.
	ReplyAbsorbed ReplyKind = iota
	// ReplyProvisional: a 1xx while the branch waits for its final reply.
	ReplyProvisional
	// ReplyFinal: the branch's final reply (2xx or negative).
	ReplyFinal
	// Reply2xxAgain: a 2xx to INVITE after the branch's final reply (a
	// retransmission by the UAS, or a 2xx after a timeout or a CANCEL):
	// proxies relay every 2xx upstream (RFC 3261 16.7 step 5).
	Reply2xxAgain
)

// BranchOptions configure a client transaction.
type BranchOptions struct {
	Target Target
	// Listener is the preferred socket (the request's); another one of
	// Target's protocol is used when it does not fit.
	Listener *Listener
	// Timeout is tm's fr_timer: the longest wait for a final reply (for
	// INVITE, until a provisional reply comes). 0 = 30 s.
	Timeout time.Duration
	// InviteTimeout is tm's fr_inv_timer: the longest wait for a final reply
	// to INVITE after a provisional one. 0 = 120 s.
	InviteTimeout time.Duration
	// OnTimeout runs (on a timer goroutine) when Timeout or InviteTimeout
	// expires without a final reply; it must not block for long.
	OnTimeout func(*Branch)
	// Owner is the relaying layer's state the branch belongs to.
	Owner RelayCell
	// Index and Flags are the owner's: its number for the branch and the
	// branch flags it was relayed with. They travel with the branch, so
	// a reply that arrives before NewBranch has returned finds them.
	Index int
	Flags uint32
}

// Branch states.
const (
	stCalling    = iota // sent, no reply yet
	stProceeding        // provisional reply received
	stCompleted         // final reply, timeout, or cancelled without reply
)

// Branch is a client transaction (RFC 3261 17.1) for one forwarded copy of
// a request: retransmissions over UDP (T1 doubling; capped at T2 for
// non-INVITE, stopped by a provisional reply for INVITE), tm's fr_timer and
// fr_inv_timer, the hop-by-hop ACK for a negative final reply to INVITE,
// and CANCEL. After the final reply it lingers to absorb retransmissions
// (T4 for non-INVITE, 32 s for INVITE over UDP).
//
// Replies matched to a Branch are handed to the Handler with
// Response.Branch set; the handler calls Receive to learn what they mean.
// A Branch is safe for concurrent use.
type Branch struct {
	srv    *Server
	ln     *Listener
	key    branchKey
	id     string
	invite bool
	cancel bool    // this is the CANCEL for another branch
	parent *Branch // the INVITE branch this CANCEL is for
	target Target
	opts   BranchOptions

	mu       sync.Mutex
	req      *sip.Request // as sent (Via on top); not modified after start
	state    int
	status   int // last status received
	final    int // final status received (0 while none)
	timedOut bool
	canceled bool // Cancel was called
	cancelTx *Branch
	ack      *sip.Request // ACK for a negative final reply to INVITE, built once
	retrIv   time.Duration
	retr     timer // nil when not armed, else one of the wheel timers below
	fr       timer
	linger   timer
	wRetr    wheelTimer
	wFr      wheelTimer
	wLinger  wheelTimer
	via      ownVia // the Via the branch put on top of req
	gone     bool   // removed from the table
}

// Owner returns BranchOptions.Owner.
func (b *Branch) Owner() RelayCell { return b.opts.Owner }

// Index returns BranchOptions.Index.
func (b *Branch) Index() int { return b.opts.Index }

// Flags returns BranchOptions.Flags.
func (b *Branch) Flags() uint32 { return b.opts.Flags }

// Target returns where the branch was sent.
func (b *Branch) Target() Target { return b.target }

// ID returns the branch parameter of the branch's Via.
func (b *Branch) ID() string { return b.id }

// Status returns the last status received (0 when none).
func (b *Branch) Status() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

// TimedOut reports whether the branch ended by fr_timer / fr_inv_timer.
func (b *Branch) TimedOut() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timedOut
}

// NewBranch sends req (a copy the caller owns and no longer touches) as a
// client transaction to o.Target: a Via with a fresh branch goes on top.
func (s *Server) NewBranch(req *sip.Request, o BranchOptions) (*Branch, error) {
	ln, err := s.listenerFor(o.Target, o.Listener)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultFrTimer
	}
	if o.InviteTimeout <= 0 {
		o.InviteTimeout = DefaultFrInvTimer
	}
	id := NewBranchID()
	doubleRR(req, o.Listener, ln, o.Target)
	b := &Branch{srv: s, ln: ln, id: id, invite: req.IsInvite(), cancel: req.IsCancel(), target: o.Target, opts: o, req: req}
	ln.setVia(&b.via, o.Target, id)
	req.PrependHeader(&b.via.ViaHeader)
	b.key = branchKey{id, string(req.Method)}
	if err := b.start(); err != nil {
		return nil, err
	}
	return b, nil
}

// start registers the branch, arms its timers and sends the request.
func (b *Branch) start() error {
	s := b.srv
	s.branches.put(b.key, b)
	b.mu.Lock()
	if b.ln.pc != nil {
		b.retrIv = sip.T1
		b.retr = b.srv.arm(&b.wRetr, b.retrIv, branchRetransmit, b, false)
	}
	if !b.ln.virtual() { // a virtual branch ends by Expire (kemi test)
		b.fr = b.srv.arm(&b.wFr, b.opts.Timeout, branchExpire, b, true)
	}
	// Read under the lock: the final reply to a non-INVITE (Receive) drops
	// b.req, and it may be handled on another goroutine before send returns.
	req := b.req
	b.mu.Unlock()
	if err := b.send(req); err != nil {
		b.mu.Lock()
		b.state = stCompleted
		b.stopTimers()
		b.mu.Unlock()
		b.remove()
		return fmt.Errorf("send %s to %s: %w", req.Method, b.target, err)
	}
	s.nRelayed.Add(1)
	return nil
}

// branchKey identifies a client transaction (RFC 3261 17.1.3): the branch
// and the CSeq method (a CANCEL shares its INVITE's branch).
type branchKey struct{ id, method string }

// stopTimers stops retransmission and fr timers; b.mu held.
func (b *Branch) stopTimers() {
	if b.retr != nil {
		b.retr.Stop()
		b.retr = nil
	}
	if b.fr != nil {
		b.fr.Stop()
		b.fr = nil
	}
}

// The branch timers' callbacks (see arm): plain functions, so arming a
// timer allocates no closure. fr_timer's may block on the engine's queue
// (OnTimeout): it is armed async.
func branchRetransmit(b any) { b.(*Branch).retransmit() }
func branchExpire(b any)     { b.(*Branch).expire() }
func branchRemove(b any)     { b.(*Branch).remove() }

// retransmit is timer A/E.
func (b *Branch) retransmit() {
	b.mu.Lock()
	if b.retr == nil || b.state == stCompleted || (b.invite && b.state == stProceeding) {
		b.mu.Unlock()
		return
	}
	b.retrIv *= 2
	if !b.invite && (b.retrIv > sip.T2 || b.state == stProceeding) {
		b.retrIv = sip.T2
	}
	b.retr.Reset(b.retrIv)
	req := b.req
	b.mu.Unlock()
	if err := b.send(req); err != nil {
		b.srv.log.Debug("retransmission failed", "branch", b.id, "error", err)
	}
}

// expire is fr_timer / fr_inv_timer: the branch ends without a final reply.
// An INVITE branch that got a provisional reply is cancelled downstream.
func (b *Branch) expire() { b.end(false) }

// Expire does now what fr_timer does when it expires (virtual branches,
// which have no timer: kemi test's downstream that never answers). It
// reports false when the branch had ended already.
func (b *Branch) Expire() bool { return b.end(true) }

func (b *Branch) end(force bool) bool {
	b.mu.Lock()
	if (b.fr == nil && !force) || b.state == stCompleted {
		b.mu.Unlock()
		return false
	}
	b.state = stCompleted
	b.timedOut = true
	b.stopTimers()
	sendCancel := b.invite && b.status > 0 && b.cancelTx == nil
	b.mu.Unlock()
	if sendCancel {
		b.sendCancel()
	}
	b.startLinger()
	if b.opts.OnTimeout != nil && !b.cancel {
		b.opts.OnTimeout(b)
	}
	return true
}

// Receive updates the branch with a reply matched to it and says what it
// means. It sends the ACK for a negative final reply to INVITE (again for
// each retransmission of it).
func (b *Branch) Receive(res *sip.Response) ReplyKind {
	code := int(res.StatusCode)
	b.mu.Lock()
	if b.cancel { // reply to our CANCEL: stop retransmitting it
		if code >= 200 && b.state != stCompleted {
			b.state, b.final = stCompleted, code
			b.stopTimers()
			b.mu.Unlock()
			b.startLinger()
			return ReplyAbsorbed
		}
		b.mu.Unlock()
		return ReplyAbsorbed
	}
	if code < 200 {
		if b.state == stCompleted {
			// cancelled before any reply: now that one came, CANCEL it
			late := b.canceled && b.final == 0 && !b.timedOut && b.invite && b.cancelTx == nil
			b.mu.Unlock()
			if late {
				b.sendCancel()
			}
			return ReplyAbsorbed
		}
		first := b.status == 0
		b.status = code
		b.state = stProceeding
		if b.invite {
			if b.retr != nil {
				b.retr.Stop()
				b.retr = nil
			}
			if first && b.fr != nil {
				b.fr.Reset(b.opts.InviteTimeout)
			}
		}
		b.mu.Unlock()
		return ReplyProvisional
	}
	b.status = code
	if b.state == stCompleted { // retransmission, or a reply after timeout/cancel
		two := b.invite && code < 300
		var ackMsg *sip.Request
		if b.invite && code >= 300 {
			ackMsg = b.ackFor(res)
		}
		if b.final == 0 {
			b.final = code
		}
		b.mu.Unlock()
		if ackMsg != nil {
			b.sendAck(ackMsg)
		}
		if two {
			return Reply2xxAgain
		}
		return ReplyAbsorbed
	}
	b.state, b.final = stCompleted, code
	b.stopTimers()
	var ackMsg *sip.Request
	if b.invite && code >= 300 {
		ackMsg = b.ackFor(res)
	}
	if !b.invite {
		b.req = nil // nothing is sent for this branch any more
	}
	b.mu.Unlock()
	if ackMsg != nil {
		b.sendAck(ackMsg)
	}
	b.startLinger()
	return ReplyFinal
}

// ackFor builds (once) the ACK for a negative final reply to the INVITE
// (RFC 3261 17.1.1.3); b.mu held.
func (b *Branch) ackFor(res *sip.Response) *sip.Request {
	if b.ack == nil && b.req != nil {
		var to sip.Header
		if h := res.To(); h != nil {
			to = h
		}
		b.ack = hopRequest(b.req, sip.ACK, to)
	}
	return b.ack
}

// hopRequest is the hop-by-hop request (ACK for a negative reply, CANCEL)
// for the INVITE inv as sent (RFC 3261 9.1, 17.1.1.3): its R-URI, top Via,
// Route, Max-Forwards, From, Call-ID and CSeq number, with to as the To
// header (the reply's for an ACK), as tm's build_local_reparse (its
// default, reparse_invite=1) copies them from the INVITE as sent.
func hopRequest(inv *sip.Request, method sip.RequestMethod, to sip.Header) *sip.Request {
	m := sip.NewRequest(method, *inv.Recipient.Clone())
	m.SipVersion = inv.SipVersion
	if v := inv.Via(); v != nil {
		m.AppendHeader(v.Clone())
	}
	if h := inv.GetHeader("Max-Forwards"); h != nil {
		m.AppendHeader(sip.HeaderClone(h))
	}
	for _, h := range inv.GetHeaders("Route") {
		m.AppendHeader(sip.HeaderClone(h))
	}
	if h := inv.From(); h != nil {
		m.AppendHeader(sip.HeaderClone(h))
	}
	if to != nil {
		m.AppendHeader(sip.HeaderClone(to))
	}
	if h := inv.CallID(); h != nil {
		m.AppendHeader(sip.HeaderClone(h))
	}
	if h := inv.CSeq(); h != nil {
		m.AppendHeader(&sip.CSeqHeader{SeqNo: h.SeqNo, MethodName: method})
	}
	cl := sip.ContentLengthHeader(0)
	m.AppendHeader(&cl)
	return m
}

func (b *Branch) sendAck(ack *sip.Request) {
	if err := b.send(ack); err != nil {
		b.srv.log.Debug("ACK for a negative reply failed", "branch", b.id, "error", err)
	}
}

// Cancel cancels a pending INVITE branch. A branch that got a provisional
// reply is sent a CANCEL (its final reply, usually 487, comes later through
// Receive); a branch that got no reply yet stops retransmitting and ends at
// once, as with tm's cancel_b_method 0 (it is sent a CANCEL should a
// provisional reply still come): Cancel then returns true and the caller
// counts the branch as ended with 487. Cancel returns false when there is
// nothing to cancel.
func (b *Branch) Cancel() bool {
	b.mu.Lock()
	if !b.invite || b.state == stCompleted || b.canceled {
		b.mu.Unlock()
		return false
	}
	b.canceled = true
	if b.status == 0 {
		b.state = stCompleted
		b.stopTimers()
		b.mu.Unlock()
		b.startLinger()
		return true
	}
	b.mu.Unlock()
	b.sendCancel()
	return false
}

// sendCancel sends a CANCEL for the INVITE (RFC 3261 9.1) as its own
// client transaction, once.
func (b *Branch) sendCancel() {
	b.mu.Lock()
	if b.cancelTx != nil || b.req == nil {
		b.mu.Unlock()
		return
	}
	inv := b.req
	var to sip.Header
	if h := inv.To(); h != nil {
		to = h
	}
	c := hopRequest(inv, sip.CANCEL, to)
	ct := &Branch{srv: b.srv, ln: b.ln, id: b.id, cancel: true, parent: b, target: b.target, req: c,
		opts: BranchOptions{Target: b.target, Timeout: 64 * sip.T1}}
	ct.key = branchKey{b.id, string(sip.CANCEL)}
	b.cancelTx = ct
	b.mu.Unlock()
	if err := ct.start(); err != nil {
		b.srv.log.Debug("CANCEL failed", "branch", b.id, "error", err)
	}
}

// startLinger keeps the ended branch in the table for a while to absorb
// retransmitted replies, then removes it.
func (b *Branch) startLinger() {
	if b.ln.virtual() {
		return // no timers: it absorbs late replies until the server stops
	}
	var d time.Duration
	switch {
	case b.ln.pc == nil:
		d = 0
	case b.invite:
		d = 32 * time.Second // timer D; also covers 2xx retransmissions (timer M)
	default:
		d = sip.T4 // timer K
	}
	if d == 0 {
		b.remove()
		return
	}
	b.mu.Lock()
	if b.linger == nil && !b.gone {
		b.linger = b.srv.arm(&b.wLinger, d, branchRemove, b, false)
	}
	b.mu.Unlock()
}

// remove takes the branch out of the table.
func (b *Branch) remove() {
	b.mu.Lock()
	if b.gone {
		b.mu.Unlock()
		return
	}
	b.gone = true
	b.stopTimers()
	if b.linger != nil {
		b.linger.Stop()
	}
	b.mu.Unlock()
	b.srv.branches.drop(b.key, b)
}

// matchBranch finds the client transaction a reply belongs to (RFC 3261
// 17.1.3: top Via branch and CSeq method).
func (s *Server) matchBranch(res *sip.Response) *Branch {
	via, cseq := res.Via(), res.CSeq()
	if via == nil || cseq == nil {
		return nil
	}
	branch, _ := via.Params.Get("branch")
	if branch == "" {
		return nil
	}
	method := string(cseq.MethodName)
	if method == string(sip.ACK) {
		return nil
	}
	return s.branches.get(branchKey{branch, method})
}

// PendingBranches returns the number of client transactions in the table
// (including those lingering after their final reply).
func (s *Server) PendingBranches() int { return s.branches.len() }

// branchTable maps client keys to branches.
type branchTable struct{ openTable[branchKey, *Branch] }

func (t *branchTable) init() { t.openTable.init(hashBranchKey) }

// hashBranchKey hashes the branch parameter and mixes in the method's
// first letter (a CANCEL's branch has the INVITE's branch parameter).
func hashBranchKey(seed maphash.Seed, k branchKey) uint64 {
	h := maphash.String(seed, k.id)
	if k.method != "" {
		h ^= uint64(k.method[0]) * 0x9e3779b97f4a7c15
	}
	return h
}

func (t *branchTable) drop(key branchKey, b *Branch) { t.dropIf(key, b) }

// terminateAll stops every branch (server shutdown).
func (t *branchTable) terminateAll() {
	for _, b := range t.values() {
		b.remove()
	}
}
