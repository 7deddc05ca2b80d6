package engine

import (
	"context"
	"errors"
	"slices"
	"sync"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/sipnet"
)

// relaySystem is Kamailio's tm relaying (KSR.tm.t_relay) and the core's
// stateless forwarding (KSR.forward, replies no transaction claims), on
// sipnet's client transactions. It implements ksr.Relay.
//
// A relayed request's server transaction carries a cell (Tx.RelayState):
// its branches, the best final reply so far and the Lua routes armed for
// it. Replies to the branches arrive on the receivers; the failure route
// runs when the last pending branch ends without a 2xx. Lua runs on the
// cell's request (its ksr.Msg) in one goroutine at a time: the worker that
// holds the cell "busy" (the request route that relayed it, an async resume,
// a failure route). A branch that ends while the cell is busy leaves the
// failure handling to that worker, which runs it when it releases the cell.
type relaySystem struct{ e *Engine }

var _ ksr.Relay = (*relaySystem)(nil)

// Kamailio's replies for a relay that could not be attempted (error.c
// err2reason, tm's "(1/TM)" internal error).
const (
	reasonUnresolvable = "Unresolvable destination (478/SL)"
	reasonSendFailed   = "Unfortunately error on sending to next hop occurred (477/SL)"
	reasonInternal     = "I'm terribly sorry, server error occurred (1/TM)"
)

// cell is one relayed server transaction (Kamailio's tm cell).
type cell struct {
	rs  *relaySystem
	tx  *sipnet.Tx
	msg *ksr.Msg // the request's context: failure routes run on it

	mu       sync.Mutex
	busy     bool             // a worker runs Lua on msg (see relaySystem)
	due      bool             // the last branch ended while busy: failure handling is due
	pending  int              // branches waiting for their final reply
	total    int              // branches created
	branches []*sipnet.Branch // each knows its index and branch flags (BranchOptions)
	// the storage of the first branch: most relays have one
	branch1  [1]*sipnet.Branch
	done     bool // a final reply went upstream through the relay
	canceled bool // CANCEL received from upstream
	best     finalReply
	onReply  string // t_on_reply function
	flags    uint32 // message flags at the last relay, for reply routes
	errCode  int    // last t_relay error, for the reply when nothing was relayed
	errText  string
}

// finalReply is a branch's final reply: received (res set) or local.
type finalReply struct {
	code    int
	reason  string
	res     *sip.Response // top Via removed; nil for a local reply
	timeout bool
	replied bool
	branch  *sipnet.Branch // the branch that ended so, for ksr.TMEvent
}

// better reports whether a should go upstream rather than b (RFC 3261
// 16.7 step 6): a 6xx wins, else the lowest class; within a class a
// received reply beats a local one (408 timeout, 487 cancel).
func better(a, b finalReply) bool {
	if b.code == 0 {
		return true
	}
	ac, bc := a.code/100, b.code/100
	switch {
	case bc == 6:
		return false
	case ac == 6:
		return true
	case ac != bc:
		return ac < bc
	}
	return b.res == nil && a.res != nil
}

// check validates the message a relay function acts on.
func (rs *relaySystem) check(m *ksr.Msg, fn string) bool {
	switch {
	case m == nil || m.Req == nil || m.Faked || m.Res != nil:
		rs.e.log.Error(fn + ": no received request to relay")
	case rs.e.sip == nil || m.Req.Listener == nil || (m.Req.Virtual() && !rs.e.sip.Virtual()):
		rs.e.log.Error(fn + ": no SIP network to relay the request on")
	default:
		return true
	}
	return false
}

// prepareCopy is the copy of m's request a proxy forwards: the pending
// From/To changes applied and received/rport on the sender's Via. As in
// Kamailio, Max-Forwards is left as the script left it: tm and the core
// never touch it, the maxfwd module does (KSR.maxfwd.process_maxfwd).
//
// The copy shares the headers nothing changes in place (sipnet.RelayCopy):
// the pending edits rewrite From and To, and rr's add_rr_param (in a branch
// route, or in a failure route before the next relay) extends the
// Record-Route record_route added, so those are the copy's own.
func (rs *relaySystem) prepareCopy(m *ksr.Msg) *sip.Request {
	out := sipnet.RelayCopy(m.Req.Msg, len(m.AddrEdits) > 0, m.RR.Added)
	m.ApplyEdits(out)
	m.Req.StampVia(out, m.ForceRport)
	return out
}

// resolve finds the next hop: dst, else $du, else the copy's R-URI.
func (rs *relaySystem) resolve(dst string, out *sip.Request) (sipnet.Target, error) {
	if dst != "" {
		return rs.e.sip.ResolveURI(context.Background(), dst)
	}
	return rs.e.sip.Resolve(context.Background(), &out.Recipient)
}

// Forward implements KSR.forward: a stateless copy to dst, $du or the R-URI.
func (rs *relaySystem) Forward(env *ksr.Env, dst string) int {
	m := env.Msg
	if !rs.check(m, "forward") {
		return -1
	}
	r := m.Req
	out := rs.prepareCopy(m)
	if dst == "" {
		dst = m.DstURI
	}
	t, err := rs.resolve(dst, out)
	if err != nil {
		rs.e.log.Error("forward: cannot resolve the next hop", "error", err)
		rs.e.fwd.dropRequests.Inc()
		return -1
	}
	if err := rs.e.sip.SendStateless(out, t, r.Listener, sipnet.StatelessBranch(r.Msg)); err != nil {
		rs.e.log.Error("forward failed", "error", err)
		rs.e.fwd.dropRequests.Inc()
		return -1
	}
	rs.e.fwd.fwdRequests.Inc() // as Kamailio's forward_request: stateless only
	if m.Req.Observer != nil {
		forwardedTo(m, out, t, uriOr(dst, out))
	}
	return 1
}

// Relay implements KSR.tm.t_relay (see ksr.Relay).
func (rs *relaySystem) Relay(env *ksr.Env, dst string, onBranch func(*ksr.Msg) bool) int {
	e := rs.e
	m := env.Msg
	if !rs.check(m, "t_relay") {
		return -1
	}
	r := m.Req
	if r.Msg.IsAck() {
		return rs.Forward(env, dst) // an ACK has no transaction: tm forwards it statelessly
	}
	if m.Route != ksr.RouteRequest && m.Route != ksr.RouteFailure {
		e.log.Error("t_relay: only allowed in the request route, failure routes and async resumes")
		return -1
	}
	tx, err := r.NewTx()
	if err != nil {
		e.log.Error("t_relay: cannot create the transaction", "error", err)
		return -1
	}
	c := rs.cellFor(tx, m)
	if tx.Canceled() {
		e.log.Info("t_relay: transaction cancelled, no new branch", "callid", callID(r.Msg))
		return -1
	}
	if tx.FinalStatus() != 0 {
		e.log.Error("t_relay: a final reply was sent already", "status", tx.FinalStatus())
		return -1
	}
	// t_forward_nonack: a branch for the R-URI unless a relay consumed
	// it (and it was not set again), then one per destination set entry;
	// the set is emptied. dst (t_relay_to_*) overrides each branch's $du.
	tried, sent := 0, 0
	if !m.RuriConsumed {
		tried++
		d := dst
		if d == "" {
			d = m.DstURI
		}
		if rs.relayBranch(env, c, tx, "", d, m.PathVec, m.BFlags, onBranch) {
			sent++
		}
	}
	for _, br := range m.Branches {
		if tx.Canceled() {
			break
		}
		tried++
		d := dst
		if d == "" {
			d = br.DstURI
		}
		if rs.relayBranch(env, c, tx, br.URI, d, br.Path, br.Flags, onBranch) {
			sent++
		}
	}
	m.Branches, m.RuriConsumed = nil, true
	if tried == 0 {
		e.log.Error("t_relay: no branches for forwarding", "callid", callID(r.Msg))
	}
	if sent == 0 {
		return -1
	}
	return 1
}

// relayBranch adds and sends one branch of c: a copy of the request to
// uri ("" keeps the R-URI) with path as its first Route, through dst (""
// for the R-URI's host), after the branch route; bflags are the branch
// flags it sees. It reports whether the branch went out.
func (rs *relaySystem) relayBranch(env *ksr.Env, c *cell, tx *sipnet.Tx, uri, dst, path string, bflags uint32, onBranch func(*ksr.Msg) bool) bool {
	e := rs.e
	m := env.Msg
	r := m.Req
	out := rs.prepareCopy(m)
	if uri != "" {
		var u sip.Uri
		if err := sip.ParseUri(uri, &u); err != nil {
			e.log.Error("t_relay: bad branch uri", "uri", uri, "error", err)
			c.setError(478, reasonUnresolvable)
			return false
		}
		out.Recipient = u
	}
	if path != "" {
		out.PrependHeader(sip.NewHeader("Route", path))
	}
	if onBranch != nil {
		bm := &ksr.Msg{Req: &sipnet.Request{Msg: out, Listener: r.Listener, Src: r.Src}, Route: ksr.RouteBranch,
			DstURI: dst, Flags: m.Flags, BFlags: bflags, AVPs: m.AVPs, Time: m.Time, BranchIndex: c.branchCount()}
		if m.RR.Added != nil { // add_rr_param in the branch route extends this branch's copy
			if h, ok := out.GetHeader("Record-Route").(*sip.RecordRouteHeader); ok {
				bm.RR = m.RR
				bm.RR.Added = h
			}
		}
		if !onBranch(bm) {
			e.log.Info("t_relay: branch dropped by the branch route", "callid", callID(r.Msg))
			return false
		}
		dst = bm.DstURI // the branch route may change $du and $ru
	}
	t, err := rs.resolve(dst, out)
	if err != nil {
		e.log.Error("t_relay: cannot resolve the next hop", "error", err)
		c.setError(478, reasonUnresolvable)
		return false
	}
	if r.Msg.IsInvite() && tx.LastStatus() == 0 {
		tx.Reply(100, e.set.TM().Inv100Reason, nil, nil) // tm's auto_inv_100
	}
	c.mu.Lock()
	c.pending++
	c.total++
	c.onReply, c.flags = m.OnReply, m.Flags
	index := len(c.branches)
	c.mu.Unlock()
	// The branch carries its index and flags: its first reply may be
	// routed on another receiver before NewBranch returns.
	b, err := e.sip.NewBranch(out, sipnet.BranchOptions{
		Target:        t,
		Listener:      r.Listener,
		Timeout:       e.set.TM().FrTimer,
		InviteTimeout: e.set.TM().FrInvTimer,
		OnTimeout:     branchTimeout,
		Owner:         c,
		Index:         index,
		Flags:         bflags,
	})
	c.mu.Lock()
	if err != nil {
		c.pending--
		c.total--
		c.errCode, c.errText = 477, reasonSendFailed
		c.mu.Unlock()
		e.log.Error("t_relay failed", "error", err)
		return false
	}
	c.branches = append(c.branches, b)
	canceled := c.canceled
	c.mu.Unlock()
	if m.Req.Observer != nil { // kemi test: the URI is text only for it
		relayedTo(m, b, uriOr(dst, out))
	}
	if canceled && b.Cancel() { // a CANCEL raced with this relay
		rs.branchEnded(nil, c, finalReply{code: 487, reason: "Request Terminated"})
	}
	return true
}

// uriOr is the destination a relay went to: dst, else out's R-URI.
func uriOr(dst string, out *sip.Request) string {
	if dst != "" {
		return dst
	}
	return out.Recipient.String()
}

func callID(m sip.Message) string {
	if h := m.CallID(); h != nil {
		return string(*h)
	}
	return ""
}

// cellFor returns the transaction's cell, creating it (busy: the caller
// runs Lua on m) on the first relay.
func (rs *relaySystem) cellFor(tx *sipnet.Tx, m *ksr.Msg) *cell {
	if c, ok := tx.RelayState().(*cell); ok {
		return c
	}
	c := &cell{rs: rs, tx: tx, msg: m, busy: true}
	c.branches = c.branch1[:0:1]
	tx.SetRelayState(c)
	if m.Req.Msg.IsInvite() {
		tx.SetCancelHandler(func() { rs.cancel(c) })
	}
	return c
}

// branchFlags is the branch flags b was relayed with (0 for a branch of
// another cell).
func (c *cell) branchFlags(b *sipnet.Branch) uint32 {
	if b == nil || b.Owner() != sipnet.RelayCell(c) {
		return 0
	}
	return b.Flags()
}

func (c *cell) setError(code int, text string) {
	c.mu.Lock()
	c.errCode, c.errText = code, text
	c.mu.Unlock()
}

// relayPending reports whether the transaction has a branch relayed and not
// yet answered: tm does not reply 500 after an async resume then.
func relayPending(tx *sipnet.Tx) bool {
	c := tx.RelayState()
	return c != nil && c.Pending()
}

// Pending reports whether a branch still waits for a reply or a failure
// handling is due (sipnet.RelayCell).
func (c *cell) Pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pending > 0 || c.due
}

// cellOf returns the cell of m's transaction, or nil.
func cellOf(m *ksr.Msg) *cell {
	if m == nil || m.Req == nil {
		return nil
	}
	tx := m.Req.Tx()
	if tx == nil {
		return nil
	}
	c, _ := tx.RelayState().(*cell)
	return c
}

// relayRelease ends the worker's hold on m's cell (after the route that
// relayed, or an async resume): a failure handling that came due meanwhile
// runs now, on this worker.
func (w *worker) relayRelease(m *ksr.Msg) {
	if c := cellOf(m); c != nil {
		c.release(w)
	}
}

// relayDone ends the request route's hold on the cell. If t_relay was
// called but nothing was relayed and no final reply sent, tm answers with
// the relay's error (478/477/500), as Kamailio does after the script; when
// the script answered statelessly the transaction just ends.
func (w *worker) relayDone(m *ksr.Msg) {
	c := cellOf(m)
	if c == nil {
		return
	}
	c.release(w)
	c.mu.Lock()
	idle := !c.busy && c.pending == 0 && !c.done && !c.due
	code, text := c.errCode, c.errText
	c.mu.Unlock()
	tx := c.tx
	if !idle || tx.FinalStatus() != 0 || tx.Terminated() || tx.Canceled() {
		return
	}
	if m.Req.Replied > 0 {
		tx.Terminate()
		return
	}
	if code == 0 {
		code, text = 500, reasonInternal
	}
	tx.Reply(code, text, nil, nil)
}

// release clears busy, unless a failure handling came due: then it runs it.
func (c *cell) release(w *worker) {
	c.mu.Lock()
	if !c.busy {
		c.mu.Unlock()
		return
	}
	if c.due {
		c.due = false
		c.mu.Unlock()
		w.failure(c)
		return
	}
	c.busy = false
	c.mu.Unlock()
}

// branchTimeout is a branch's fr_timer / fr_inv_timer (on a timer
// goroutine). A plain function, not a method value: BranchOptions takes it
// without an allocation per branch.
func branchTimeout(b *sipnet.Branch) {
	c, ok := b.Owner().(*cell)
	if !ok {
		return
	}
	rs := c.rs
	rep := finalReply{code: 408, reason: "Request Timeout", timeout: true, replied: b.Status() > 0, branch: b}
	rs.onWorker(func(w *worker) { rs.branchEnded(w, c, rep) })
}

// cancel is a CANCEL from upstream for a relayed INVITE (on the listener's
// read goroutine; the 200 for the CANCEL is sent already).
func (rs *relaySystem) cancel(c *cell) {
	rs.onWorker(func(w *worker) { w.relayCancel(c) })
}

// onWorker runs f on a receiver worker.
func (rs *relaySystem) onWorker(f func(*worker)) {
	if err := rs.e.submit(rs.e.receivers, workerFunc(f)); err != nil {
		rs.e.log.Debug("relay event dropped: receivers stopped", "error", err)
	}
}

// relayCancel cancels the pending branches: those with a provisional reply
// get a CANCEL (their 487 comes back), the others end with a local 487.
func (w *worker) relayCancel(c *cell) {
	c.mu.Lock()
	c.canceled = true
	bs := slices.Clone(c.branches)
	c.mu.Unlock()
	for _, b := range bs {
		if b.Cancel() {
			c.rs.branchEnded(w, c, finalReply{code: 487, reason: "Request Terminated"})
		}
	}
}

// branchEnded counts a branch's negative end (final reply, timeout, local
// cancel). When it was the last pending one, the failure handling runs on
// w, or on the worker holding the cell when it is busy (w may be nil only
// when the caller holds the cell).
func (rs *relaySystem) branchEnded(w *worker, c *cell, rep finalReply) {
	c.mu.Lock()
	c.pending--
	if better(rep, c.best) {
		c.best = rep
	}
	if c.pending > 0 || c.done {
		c.mu.Unlock()
		return
	}
	if c.busy {
		c.due = true
		c.mu.Unlock()
		return
	}
	c.busy = true
	c.mu.Unlock()
	if w == nil { // not reached: callers without a worker hold the cell
		rs.onWorker(func(w *worker) { w.failure(c) })
		return
	}
	w.failure(c)
}

// branchSucceeded relays a branch's 2xx and cancels the other branches.
func (w *worker) branchSucceeded(c *cell, b *sipnet.Branch, res *sip.Response) {
	c.mu.Lock()
	c.pending--
	first := !c.done
	c.done = true
	var others []*sipnet.Branch
	if first {
		for _, x := range c.branches {
			if x != b {
				others = append(others, x)
			}
		}
	}
	c.mu.Unlock()
	w.forwardUp(c, res)
	if first {
		w.tmSucceeded(c, b, res) // ksr.TMResponseOut (relay_tmcb.go)
	}
	for _, x := range others {
		if x.Cancel() {
			c.rs.branchEnded(w, c, finalReply{code: 487, reason: "Request Terminated"})
		}
	}
}

func (w *worker) forwardUp(c *cell, res *sip.Response) {
	if err := c.tx.Forward(res); err != nil && !errors.Is(err, sipnet.ErrTxGone) {
		w.e.log.Error("relaying a reply upstream failed", "status", res.StatusCode, "error", err)
	}
}

// failure runs when every branch ended without a 2xx (the worker holds the
// cell): the armed t_on_failure function, with the best reply in
// KSR.tm.t_check_status; unless it relayed again (serial forking) or
// replied, the best reply goes upstream (a local 487 once cancelled). The
// failure route is one-shot, as in Kamailio: t_on_failure and t_on_branch
// must be armed again for the next branches.
func (w *worker) failure(c *cell) {
	m := c.msg
	c.mu.Lock()
	best := c.best
	c.best = finalReply{}
	n := c.total
	canceled := c.canceled
	c.mu.Unlock()
	if best.code == 0 {
		best = finalReply{code: 500, reason: reasonInternal}
	}
	if canceled && best.res == nil {
		best.code, best.reason = 487, "Request Terminated"
	}
	if c.tx.FinalStatus() == 0 && !c.tx.Terminated() {
		m.Flags &^= w.tmEvent(c, ksr.TMOnFailure, best, m.Flags, true) // relay_tmcb.go
	}
	fn := m.OnFailure
	m.OnFailure, m.OnBranch = "", ""
	if fn != "" && c.tx.FinalStatus() == 0 && !c.tx.Terminated() {
		m.Route = ksr.RouteFailure
		m.Drop = false
		c.mu.Lock()
		m.BFlags = c.branchFlags(best.branch) // t_reply.c: the failed branch's flags
		c.mu.Unlock()
		m.RuriConsumed = true // faked_env: the R-URI is not forked again unless set anew
		m.TM = &ksr.TMReply{Code: best.code, Reason: best.reason, Res: best.res, Timeout: best.timeout, Replied: best.replied, Branches: c.branchCount()}
		m.Time = w.e.clock.Now()
		w.call(m, fn, true)
		m.TM = nil
		if st := c.tx.FinalStatus(); st != 0 { // the failure route replied (t_reply)
			// with the flags of the last relay, as Kamailio's callback reads
			// them: the failure route's changes are saved after it
			c.mu.Lock()
			fl := c.flags
			c.mu.Unlock()
			w.tmEvent(c, ksr.TMResponseOut, finalReply{code: st}, fl, true)
		}
	}
	c.mu.Lock()
	relayed := c.total > n
	if !relayed {
		c.done = true
	}
	c.mu.Unlock()
	if !relayed && c.tx.FinalStatus() == 0 && !c.tx.Terminated() {
		var err error
		if best.res != nil {
			err = c.tx.Forward(best.res)
		} else {
			err = c.tx.Reply(best.code, best.reason, nil, nil)
		}
		if err != nil && !errors.Is(err, sipnet.ErrTxGone) {
			w.e.log.Error("sending the final reply upstream failed", "status", best.code, "error", err)
		} else if err == nil {
			w.tmEvent(c, ksr.TMResponseOut, best, m.Flags, true)
		}
	}
	c.release(w)
}

// replyRoute runs after pre-routing for a received reply: the core reply
// route (ksr_reply_route; KSR.x.drop stops the reply there), then, for a
// reply to a relayed request, tm's processing (t_on_reply route, relay
// upstream, failure handling), else stateless forwarding by the Via headers
// when the top one is ours (Kamailio's core forward_reply).
func (w *worker) replyRoute(msg *ksr.Msg) {
	r := msg.Res
	var c *cell
	if r.Branch != nil {
		c, _ = r.Branch.Owner().(*cell)
		if c != nil {
			c.mu.Lock()
			msg.Flags = c.flags
			msg.BFlags = c.branchFlags(r.Branch) // t_reply.c: the branch's flags in its reply routes
			c.mu.Unlock()
		}
	}
	if cb := w.e.set.ReplyCB; cb != "" {
		w.call(msg, cb, false)
		if msg.Drop {
			return
		}
	}
	if r.Branch != nil {
		w.relayReply(msg, c)
		return
	}
	if w.e.sip == nil || r.Listener == nil {
		return
	}
	for _, m := range w.e.mods {
		if f, ok := m.(ksr.ReplyFilter); ok && f.AbsorbReply(r.Msg) {
			return // a module's own keepalive's reply (nathelper)
		}
	}
	err := w.e.sip.ForwardResponse(r)
	if err != nil && !errors.Is(err, sipnet.ErrNotOurs) {
		w.e.log.Error("forwarding a reply failed", "status", r.Msg.StatusCode, "error", err)
	}
	// As Kamailio's forward_reply: replies of no transaction.
	if err != nil {
		w.e.fwd.dropReplies.Inc()
	} else {
		w.e.fwd.fwdReplies.Inc()
	}
}

// relayReply is tm's part of a reply to a branch: retransmissions are
// absorbed; the t_on_reply function runs (its KSR.x.drop stops a
// provisional reply); then 1xx (except 100) and 2xx go upstream and a
// negative final reply ends the branch.
func (w *worker) relayReply(msg *ksr.Msg, c *cell) {
	r := msg.Res
	// tm sets F_RB_REPLIED after handling a reply (t_reply.c
	// reply_received), so the failure route of a final reply sees the
	// branch as replied only when an earlier (provisional) reply came.
	prior := r.Branch.Status()
	kind := r.Branch.Receive(r.Msg)
	if kind == sipnet.ReplyAbsorbed || c == nil {
		return
	}
	code := int(r.Msg.StatusCode)
	c.mu.Lock()
	fn := c.onReply
	c.mu.Unlock()
	if fn != "" {
		msg.Route = ksr.RouteOnReply
		msg.Drop = false
		w.call(msg, fn, true)
		if msg.Drop && code < 200 {
			return
		}
	}
	r.Msg.RemoveHeader("Via") // ours
	switch {
	case kind == sipnet.Reply2xxAgain:
		w.forwardUp(c, r.Msg)
	case code < 200:
		if code > 100 { // tm does not relay 100 Trying (it sends its own)
			w.forwardUp(c, r.Msg)
		}
	case code < 300:
		w.branchSucceeded(c, r.Branch, r.Msg)
	default:
		c.rs.branchEnded(w, c, finalReply{code: code, reason: r.Msg.Reason, res: r.Msg, replied: prior > 0, branch: r.Branch})
	}
}
