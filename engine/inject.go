package engine

// In-process injection for `kemi test`: requests enter the receivers group
// as if received from a socket, their replies are captured instead of sent,
// and a virtual clock moves only when the test says so. After each step the
// engine is driven to idle: nothing queued or running, every goroutine that
// waits on the clock waiting on the deadline it should. What a test then
// observes does not depend on timing: no sleep guesses how long work takes.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/sipnet"
	"kemi/timers"
)

// TestClock is the virtual clock of an engine under test: a timers.Fake that
// also knows the deadline of every armed timer, so that the engine can tell
// when each goroutine waiting on the clock waits on the deadline it should
// (see Engine.WaitIdle). Pass it as Options.Clock; only Engine.Advance moves
// it.
type TestClock struct {
	f     *timers.Fake
	mu    sync.Mutex
	armed map[*testTimer]time.Time
}

// NewTestClock returns a virtual clock reading start.
func NewTestClock(start time.Time) *TestClock {
	return &TestClock{f: timers.NewFake(start), armed: map[*testTimer]time.Time{}}
}

// Now returns the virtual time.
func (c *TestClock) Now() time.Time { return c.f.Now() }

// NewTimer returns a timer firing when the virtual time reaches Now()+d.
func (c *TestClock) NewTimer(d time.Duration) timers.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &testTimer{c: c, t: c.f.NewTimer(d)}
	if d > 0 {
		c.armed[t] = c.f.Now().Add(d)
	}
	return t
}

// deadlines returns the deadlines of the armed timers, sorted.
func (c *TestClock) deadlines() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, 0, len(c.armed))
	for _, at := range c.armed {
		out = append(out, at)
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// advanceTo moves the time to at (not before now), firing the timers due.
func (c *TestClock) advanceTo(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := at.Sub(c.f.Now()); d > 0 {
		c.f.Advance(d)
	}
	now := c.f.Now()
	for t, due := range c.armed {
		if !due.After(now) {
			delete(c.armed, t)
		}
	}
}

type testTimer struct {
	c *TestClock
	t timers.Timer
}

func (t *testTimer) C() <-chan time.Time { return t.t.C() }

func (t *testTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	delete(t.c.armed, t)
	return t.t.Stop()
}

func (t *testTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	delete(t.c.armed, t)
	was := t.t.Reset(d)
	if d > 0 {
		t.c.armed[t] = t.c.f.Now().Add(d)
	}
	return was
}

var (
	_ timers.Clock = (*TestClock)(nil)
	_ timers.Timer = (*testTimer)(nil)
)

// InjectOptions say where an injected request claims to come from.
type InjectOptions struct {
	// Proto is "udp" (default) or "tcp".
	Proto string
	// Src is the sender ($si, $sp); default 127.0.0.1:5080.
	Src netip.AddrPort
	// Local is the receiving socket ($Ri, $Rp); default the first listen=
	// address of Proto in the configuration (127.0.0.1:5060 without one).
	Local netip.AddrPort
}

// Route is one pass of an injected request through a worker.
type Route struct {
	Worker    string // e.g. "receiver/0", "slow/1"
	Group     string // e.g. "receivers", or the sworker group
	Delegated bool   // handed over by KSR.sworker.task
}

// Outcome is what happened to an injected request so far. Replies sent
// later (an async resume after Advance) are added as they go out. Read it
// while the engine is idle: after Inject, Advance, Cancel or WaitIdle
// returned.
type Outcome struct {
	e       *Engine
	mu      sync.Mutex
	replies []*sip.Response
	routes  []sipnet.Pass
	relays  []*Relay
}

var _ sipnet.Observer = (*Outcome)(nil)

func (o *Outcome) sink(res *sip.Response) error {
	o.mu.Lock()
	o.replies = append(o.replies, res)
	o.mu.Unlock()
	return nil
}

// Replies returns the replies sent so far, in order (provisional ones too).
func (o *Outcome) Replies() []*sip.Response {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.replies)
}

// Routes returns the passes of the request through the routing logic.
func (o *Outcome) Routes() []Route {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Route, len(o.routes))
	for i, r := range o.routes {
		out[i] = Route{r.Worker, r.Group, r.Delegated}
	}
	return out
}

func (o *Outcome) passes() []sipnet.Pass {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.routes)
}

// Dropped reports whether the script dropped the request (KSR.x.drop or
// KSR.set_drop).
func (o *Outcome) Dropped() bool {
	for _, r := range o.passes() {
		if *r.Drop {
			return true
		}
	}
	return false
}

// Delegated returns the group KSR.sworker.task handed the request to.
func (o *Outcome) Delegated() (string, bool) {
	for _, r := range o.passes() {
		if r.Delegated {
			return r.Group, true
		}
	}
	return "", false
}

// Suspended reports whether the request waits for an async resume.
func (o *Outcome) Suspended() bool {
	for _, r := range o.passes() {
		if *r.Suspended {
			return true
		}
	}
	return false
}

// Relays returns the copies of the request sent to next hops so far, in
// order: one per KSR.tm.t_relay branch and per KSR.forward.
func (o *Outcome) Relays() []*Relay {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.relays)
}

// Relay is a copy of an injected request sent to a next hop. Under kemi
// test the network is virtual (see sipnet's Outgoing): nothing leaves the
// process, and the test plays the next hop with Reply and Expire.
type Relay struct {
	o         *Outcome
	branch    *sipnet.Branch // nil: stateless
	from      *sipnet.Listener
	uri       string
	to        sipnet.Target
	stateless bool
	msgs      []*sip.Request // the request as sent, then its ACKs and CANCELs; under o.mu
	toTag     string
}

// URI is the destination the request was sent to: t_relay's or forward's
// argument, else $du, else the R-URI.
func (r *Relay) URI() string { return r.uri }

// Target is where that destination resolved to ("udp:10.0.0.2:5060"); a
// host name stands for 192.0.2.1 under kemi test.
func (r *Relay) Target() string { return r.to.String() }

// Stateless reports a KSR.forward copy (no transaction: it cannot be
// answered).
func (r *Relay) Stateless() bool { return r.stateless }

// Sent returns what was sent on this branch: the request, then the ACK
// for a negative final reply to an INVITE and the CANCEL when the branch
// was cancelled.
func (r *Relay) Sent() []*sip.Request {
	r.o.mu.Lock()
	defer r.o.mu.Unlock()
	return slices.Clone(r.msgs)
}

// Reply delivers a reply from the next hop (built from the request as
// sent: Via, From, To with a tag, Call-ID, CSeq, Record-Route where due,
// plus headers, "Name: value" lines, and body), as if it had arrived on
// the socket the request left from, then waits until the engine is idle:
// ksr_reply_route, t_on_reply and t_on_failure run and the reply goes
// upstream as it would over the network.
func (r *Relay) Reply(ctx context.Context, code int, reason string, headers []string, body string) error {
	if r.branch == nil {
		return errors.New("reply: a stateless forward has no transaction to answer")
	}
	if code < 100 || code > 699 {
		return fmt.Errorf("reply: status %d out of range 100-699", code)
	}
	r.o.mu.Lock()
	req := r.msgs[0]
	r.o.mu.Unlock()
	base := sip.NewResponseFromRequest(req, code, reason, nil)
	if to := base.To(); to != nil && code > 100 {
		if _, ok := to.Params.Get("tag"); !ok {
			to.Params.Add("tag", r.toTag)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, h := range base.Headers() {
		if !strings.EqualFold(h.Name(), "Content-Length") {
			b.WriteString(h.Name() + ": " + h.Value() + "\r\n")
		}
	}
	for _, h := range headers {
		b.WriteString(strings.TrimRight(h, "\r\n") + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	m, err := sipnet.Parse([]byte(b.String()))
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	if err := r.o.e.sip.Receive(m, r.from, r.to.Addr); err != nil {
		return err
	}
	return r.o.e.WaitIdle(ctx)
}

// Expire does what tm's fr_timer (fr_inv_timer after a provisional reply)
// does when the next hop never sends a final reply, then waits until the
// engine is idle. It reports false when the branch had ended already.
func (r *Relay) Expire(ctx context.Context) (bool, error) {
	if r.branch == nil {
		return false, errors.New("timeout: a stateless forward has no transaction")
	}
	if !r.branch.Expire() {
		return false, nil
	}
	return true, r.o.e.WaitIdle(ctx)
}

// outbound receives what the virtual network sends (Options.NoNetwork):
// messages of a relayed injected request's branches go to its Outcome.
// Stateless forwards are recorded by relaySystem.Forward.
func (e *Engine) outbound(out sipnet.Outgoing) {
	if out.Branch == nil {
		return
	}
	c, ok := out.Branch.Owner().(*cell)
	if !ok {
		return
	}
	if o := c.msg.Req.Observer; o != nil {
		o.Sent(out)
	}
}

// Sent records a message sent on a branch (sipnet.Observer).
func (o *Outcome) Sent(out sipnet.Outgoing) {
	req, isReq := out.Msg.(*sip.Request)
	if !isReq {
		return
	}
	req = req.Clone()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.relays {
		if r.branch == out.Branch {
			r.msgs = append(r.msgs, req)
			return
		}
	}
	o.relays = append(o.relays, &Relay{o: o, branch: out.Branch, from: out.From, to: out.To,
		msgs: []*sip.Request{req}, toTag: fmt.Sprintf("kemitest-hop%d", len(o.relays)+1)})
}

// relayedTo notes the destination URI of a branch of an injected request.
func relayedTo(m *ksr.Msg, b *sipnet.Branch, uri string) {
	if o := m.Req.Observer; o != nil {
		o.RelayedTo(b, uri)
	}
}

// RelayedTo notes the destination URI of a branch (sipnet.Observer).
func (o *Outcome) RelayedTo(b *sipnet.Branch, uri string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, r := range o.relays {
		if r.branch == b {
			r.uri = uri
		}
	}
}

// forwardedTo records a stateless forward of an injected request.
func forwardedTo(m *ksr.Msg, out *sip.Request, t sipnet.Target, uri string) {
	if o := m.Req.Observer; o != nil {
		o.Forwarded(out, t, uri)
	}
}

// Forwarded records a stateless forward (sipnet.Observer).
func (o *Outcome) Forwarded(out *sip.Request, t sipnet.Target, uri string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.relays = append(o.relays, &Relay{o: o, uri: uri, to: t, stateless: true, msgs: []*sip.Request{out.Clone()}})
}

// Cancel does what a CANCEL matched to the request's INVITE transaction
// does (200 to the CANCEL, 487 to the INVITE, the transaction ends; a
// relayed INVITE's branches are cancelled instead and their replies relayed
// upstream), then waits until the engine is idle. It reports false, and does nothing, when
// the request has no transaction or already got its final reply; a CANCEL
// without a transaction is routed like any request: inject one.
func (o *Outcome) Cancel(ctx context.Context) (bool, error) {
	var tx *sipnet.Tx
	for _, r := range o.passes() {
		if t := r.Req.Tx(); t != nil {
			tx = t
		}
	}
	if tx == nil || !tx.CancelVirtual() {
		return false, nil
	}
	return true, o.e.WaitIdle(ctx)
}

// Routed records a pass of the request through a worker
// (sipnet.Observer).
func (o *Outcome) Routed(p sipnet.Pass) {
	o.mu.Lock()
	o.routes = append(o.routes, p)
	o.mu.Unlock()
}

// Inject routes msg through the receivers group exactly as a request
// received from a socket (pre-routing, sworker delegation, async
// suspension), with its replies captured in the returned Outcome, and
// returns once the engine is idle. The engine must be started; with a
// TestClock the clock does not move.
func (e *Engine) Inject(ctx context.Context, msg *sip.Request, o InjectOptions) (*Outcome, error) {
	if e.runCtx == nil {
		return nil, errors.New("inject request: engine not started")
	}
	proto := strings.ToLower(o.Proto)
	switch proto {
	case "":
		proto = "udp"
	case "udp", "tcp":
	default:
		return nil, fmt.Errorf("inject request: unsupported protocol %q (udp or tcp)", o.Proto)
	}
	src := o.Src
	if !src.IsValid() {
		src = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 5080)
	}
	local := o.Local
	if !local.IsValid() {
		local = e.listenAddr(proto)
	}
	out := &Outcome{e: e}
	r := sipnet.NewVirtualRequest(msg, proto, local, src, out.sink)
	r.Observer = out
	if err := e.submit(e.receivers, (*requestTask)(r)); err != nil {
		r.Done()
		return nil, fmt.Errorf("inject request: %w", err)
	}
	return out, e.WaitIdle(ctx)
}

// listenAddr is the first configured listen address of proto, with port
// 5060 for an ephemeral one (127.0.0.1:5060 without one).
func (e *Engine) listenAddr(proto string) netip.AddrPort {
	for _, l := range e.set.Listen {
		if l.Proto != proto {
			continue
		}
		if ap, err := netip.ParseAddrPort(l.Addr); err == nil {
			return withPort(ap)
		}
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 5060)
}

// configuredAddrs are the listen= addresses of the configuration (port 0
// read as 5060), what the engine calls itself when it has no network.
func (e *Engine) configuredAddrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, l := range e.set.Listen {
		if ap, err := netip.ParseAddrPort(l.Addr); err == nil {
			out = append(out, withPort(ap))
		}
	}
	return out
}

// withPort reads an ephemeral port (0) as 5060.
func withPort(ap netip.AddrPort) netip.AddrPort {
	if ap.Port() == 0 {
		return netip.AddrPortFrom(ap.Addr(), 5060)
	}
	return ap
}

// Advance moves the TestClock forward by d, one timer deadline at a time:
// at each deadline due by then it fires the timers due and waits until the
// engine is idle again, so rtimer runs every tick and async resumes happen
// in deadline order, at their deadline, as they would in real time.
func (e *Engine) Advance(ctx context.Context, d time.Duration) error {
	c, ok := e.clock.(*TestClock)
	if !ok {
		return errors.New("advance clock: the engine does not run on a TestClock")
	}
	if e.runCtx == nil {
		return errors.New("advance clock: engine not started")
	}
	if d < 0 {
		return fmt.Errorf("advance clock: negative duration %s", d)
	}
	target := c.Now().Add(d)
	for {
		if err := e.WaitIdle(ctx); err != nil {
			return err
		}
		ds := c.deadlines()
		if len(ds) == 0 || ds[0].After(target) {
			break
		}
		c.advanceTo(ds[0])
	}
	c.advanceTo(target)
	return e.WaitIdle(ctx)
}

// WaitIdle waits until the engine is idle or ctx is done. Idle means: no
// task queued or running in any group (a request suspended by async is not
// a task while it waits), no async resume being handed over, and, with a
// TestClock, every goroutine that waits on the clock armed on the deadline
// it should (the next tick of each rtimer goroutine, the earliest async
// resume). Nothing then happens until the clock moves or a request comes.
//
// The state is polled (yielding, then backing off up to 1 ms): progress is
// spread over counters of several subsystems that signal nothing. Every
// poll reads the state twice and wants both reads equal, so that a change
// between two of its reads is not taken for idleness.
func (e *Engine) WaitIdle(ctx context.Context) error {
	var why string
	var a, b idleState
	if e.idleMu.TryLock() {
		// The deadline slices of the last wait are reused: polling does
		// not allocate. A concurrent wait makes its own.
		a.modDeadlines, b.modDeadlines = e.idleBufs[0], e.idleBufs[1]
		defer func() {
			e.idleBufs[0], e.idleBufs[1] = a.modDeadlines[:0], b.modDeadlines[:0]
			e.idleMu.Unlock()
		}()
	}
	for n := 0; ; n++ {
		e.readIdle(&a)
		e.readIdle(&b)
		if why = e.notIdle(&a); why == "" && a.equal(&b) {
			return nil
		}
		if ctx.Err() != nil {
			if why == "" {
				why = "state still changing"
			}
			return fmt.Errorf("wait for the engine to be idle: %s: %w", why, context.Cause(ctx))
		}
		switch {
		case n < 64:
			runtime.Gosched()
		default:
			time.Sleep(min(time.Duration(n-63)*20*time.Microsecond, time.Millisecond))
		}
	}
}

// idleState is one reading of what WaitIdle looks at.
type idleState struct {
	pending int64
	now     time.Time
	armed   []time.Time // TestClock timers
	test    bool        // the clock is a TestClock

	held         int         // work the modules hold outside the tasks (ksr.Idler)
	modDeadlines []time.Time // where the modules' goroutines should wait (ksr.Idler)
	modBusy      string      // why a module is not idle, "" when all are
}

func (s *idleState) equal(o *idleState) bool {
	return s.pending == o.pending && s.now.Equal(o.now) && slices.EqualFunc(s.armed, o.armed, time.Time.Equal) &&
		s.held == o.held && s.modBusy == o.modBusy && slices.EqualFunc(s.modDeadlines, o.modDeadlines, time.Time.Equal)
}

// readIdle reads the counters, the pending count first and again last.
func (e *Engine) readIdle(s *idleState) {
	*s = idleState{modDeadlines: s.modDeadlines[:0]}
	s.pending = e.pending.Load()
	if c, ok := e.clock.(*TestClock); ok {
		s.test = true
		s.now = c.Now()
		s.armed = c.deadlines()
	}
	for _, m := range e.mods {
		if i, ok := m.(ksr.Idler); ok {
			held, ds, busy := i.Idle(s.now, s.modDeadlines)
			s.held += held
			s.modDeadlines = ds
			if busy != "" && s.modBusy == "" {
				s.modBusy = busy
			}
		}
	}
	slices.SortFunc(s.modDeadlines, func(a, b time.Time) int { return a.Compare(b) })
	if p := e.pending.Load(); p != s.pending {
		s.pending = -1 // changed while reading: not idle
	}
}

// notIdle says why s is not idle, or "" when it is.
func (e *Engine) notIdle(s *idleState) string {
	switch {
	case s.pending < 0:
		return "tasks started or ended"
	case s.modBusy != "":
		return s.modBusy // async: a resume due or being handed over
	case s.pending != int64(s.held):
		return fmt.Sprintf("%d task(s) queued or running", s.pending-int64(s.held))
	case !s.test:
		return ""
	}
	want := e.expectedDeadlines(s)
	if !slices.EqualFunc(want, s.armed, time.Time.Equal) {
		return fmt.Sprintf("clock timers armed at %s, expected at %s", fmtTimes(s.armed, s.now), fmtTimes(want, s.now))
	}
	return ""
}

// expectedDeadlines lists, sorted, the deadline every goroutine waiting on
// the clock should be armed on when the engine is idle, as the modules
// report them (ksr.Idler): one per rtimer goroutine (its earliest next
// tick), one for the async resumes (the earliest). A module that adds a
// goroutine waiting on the clock must report it, or WaitIdle reports the
// unexpected timer.
func (e *Engine) expectedDeadlines(s *idleState) []time.Time {
	return s.modDeadlines // sorted by readIdle
}

func fmtTimes(ts []time.Time, now time.Time) string {
	if len(ts) == 0 {
		return "[]"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = "+" + t.Sub(now).String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}
