package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/luavm"
	"kemi/sipnet"
	"kemi/timers"
	"kemi/workers"
)

// asyncSystem is the async module. A suspended request is a server
// transaction (retransmissions absorbed, CANCEL answered) parked in a
// deadline heap: no worker is held while it waits. One timer goroutine
// resumes each at its deadline, to the millisecond, where Kamailio 5.6 uses
// a one-second ring (0.2-2 s for a 1 s route; docs/bench/async.md).
//
//   - KSR.async.route / ms_route: the named function runs later on the async
//     module's workers (modparam("async", "workers", N)), as tm's
//     t_continue does: failure route, no arguments, the same message bound.
//   - KSR.async.task_route / task_group_route: the same, now, on a core
//     async_workers group.
//   - KSR.async.sleep / ms_sleep (kemi only): the running request handler is
//     a coroutine of its worker's VM (luavm.Co); it is suspended and
//     continued after the pause on that same worker, which serves other
//     requests meanwhile.
//
// A resume never runs while the handler that suspended the request is still
// running (the script goes on after KSR.async.route until it returns, as in
// KEMI): each resume waits for two events, its deadline and the release by
// the suspending worker, so that one message is never used by two
// goroutines at once.
type asyncSystem struct {
	e         *Engine
	group     *workers.Group // modparam("async", "workers", N); nil for N=0
	deadlines *timers.Deadlines[*resume]
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	started   bool
	drained   atomic.Bool // shutting down: no new suspension
	holding   sync.Map    // *ksr.Msg -> *resume, until the suspending handler returns
	byEnv     sync.Map    // *ksr.Env -> *worker, for KSR.async.sleep
	yields    atomic.Pointer[genYields]

	mu      sync.Mutex
	waiting int // suspended requests not yet handed to a worker (kemi test reads it)
}

// genYields caches, per script generation, whether its request handler may
// suspend itself (the script mentions KSR.async.sleep or ms_sleep).
type genYields struct {
	gen    *luavm.Generation
	yields bool
}

// resume is a suspended request due to continue: in fn on a worker of group
// (route, task), or as the coroutine co on worker index of group (sleep).
type resume struct {
	req   *sipnet.Request
	msg   *ksr.Msg
	fn    string
	due   time.Time
	group *workers.Group
	index int // sleep: the worker that owns co
	co    *luavm.Co
	gate  atomic.Int32 // 2 = due and released: hand it over
	shut  atomic.Bool  // shutdown: answer 503 instead of resuming
}

// dataTask is KSR.async.task_data: fn(evname) with data, no transaction.
type dataTask struct {
	fn, data string
}

// Return codes of KSR.async.sleep / ms_sleep.
const (
	sleepOK     = 1  // returned after the pause
	sleepFailed = -1 // no pause: not suspendable here, or no transaction
)

func newAsync(e *Engine) *asyncSystem {
	a := &asyncSystem{e: e, deadlines: timers.NewDeadlines[*resume]()}
	if n := e.set.Async.Workers; n > 0 {
		a.group, _ = workers.NewGroup(workers.Options{Name: "async", Workers: n, OnPanic: e.onPanic},
			func(i int) (workers.Runner, error) {
				// KSR.async.get_gname() is "async" here (Kamailio's ASYNC MOD
				// TIMER processes give ""; docs/async.md lists the difference).
				return e.newWorker(fmt.Sprintf("async/%d", i), "async", i, true)
			})
	}
	if e.set.Async.MSTimer > 0 {
		e.log.Info("modparam async ms_timer has no effect in kemi: every resume is scheduled to the millisecond")
	}
	return a
}

func (a *asyncSystem) Name() string { return "async" }

func (a *asyncSystem) Start(ctx context.Context) error {
	if a.group != nil {
		if err := a.group.Start(ctx); err != nil {
			return err
		}
	}
	ctx, a.cancel = context.WithCancel(ctx)
	a.started = true
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.deadlines.Run(ctx, a.e.clock, a.fire)
	}()
	return nil
}

// drain ends the waiting at shutdown, before the SIP listeners close: the
// timer stops, later suspensions are refused, and every request still
// suspended is answered 503 (it will not be resumed).
func (a *asyncSystem) drain(context.Context) error {
	if a.drained.Swap(true) || !a.started {
		return nil
	}
	a.cancel()
	a.wg.Wait()
	for _, r := range a.deadlines.PopDue(time.Unix(1<<40, 0), nil) {
		r.shut.Store(true)
		a.arm(r) // answered now, or when its handler returns
	}
	return nil
}

// Stop drains (if the engine did not already), then lets the async workers
// finish.
func (a *asyncSystem) Stop(ctx context.Context) error {
	a.drain(ctx)
	if a.group != nil {
		return a.group.Stop(ctx)
	}
	return nil
}

// Suspended returns how many requests wait for their resume.
func (a *asyncSystem) Suspended() int { return a.deadlines.Len() }

// hold counts a new suspended request.
func (a *asyncSystem) hold() {
	a.mu.Lock()
	a.waiting++
	a.mu.Unlock()
	a.e.pending.Add(1)
}

// done uncounts a suspended request: handed to a worker, or given up.
func (a *asyncSystem) done() {
	a.mu.Lock()
	a.waiting--
	a.mu.Unlock()
	a.e.pending.Add(-1)
}

// fire is called by the timer goroutine when a resume is due.
func (a *asyncSystem) fire(r *resume) { a.arm(r) }

// release is called once the handler that may have suspended msg has
// returned: a resume waiting for it may go.
func (a *asyncSystem) release(msg *ksr.Msg) {
	if v, ok := a.holding.LoadAndDelete(msg); ok {
		a.arm(v.(*resume))
	}
}

// arm hands r over on its second call (due and released).
func (a *asyncSystem) arm(r *resume) {
	if r.gate.Add(1) != 2 {
		return
	}
	if r.shut.Load() {
		a.reject(r, "shutdown")
		return
	}
	var err error
	if r.co != nil {
		err = a.e.submit(workerOf{r.group, r.index}, r)
	} else {
		err = a.e.submit(r.group, r)
	}
	if err != nil {
		a.e.log.Error("async resume dropped: workers stopped", "route", r.fn, "group", r.group.Name(), "error", err)
		a.reject(r, "workers stopped")
		return
	}
	a.done()
}

// reject answers a request that will not be resumed with 503 and forgets it.
func (a *asyncSystem) reject(r *resume, why string) {
	if tx := r.req.Tx(); tx != nil {
		if err := tx.Reply(503, "Service Unavailable", nil, nil); err == nil {
			a.e.log.Info("async: suspended request answered 503", "reason", why, "route", r.fn)
		}
	}
	r.req.Done()
	a.done()
}

// workerOf is one worker of a group as a submit target (engine.submit).
type workerOf struct {
	g *workers.Group
	i int
}

func (w workerOf) Submit(ctx context.Context, task any) error { return w.g.SubmitTo(ctx, w.i, task) }

// suspend turns the current request into a suspended transaction: it creates
// the server transaction if needed (retransmissions are absorbed from then
// on) and sends 100 Trying for an INVITE, as tm's t_suspend does. It returns
// the request, or nil after logging why it cannot.
func (a *asyncSystem) suspend(e *ksr.Env, what string) *sipnet.Request {
	m := e.Msg
	switch {
	case a.drained.Load():
		a.e.log.Error(what + ": shutting down")
		return nil
	case m == nil || m.Req == nil || m.Faked || m.Res != nil:
		a.e.log.Error(what + ": no request to suspend (faked message or reply)")
		return nil
	case m.Route != ksr.RouteRequest && m.Route != ksr.RouteFailure:
		a.e.log.Error(what + ": only in the request route or an async resume (failure route)")
		return nil
	case m.TM != nil:
		// A t_on_failure route: relay.go sends the final reply when it
		// returns; suspending there is not supported (Kamailio allows it).
		a.e.log.Error(what + ": not supported in a tm failure route (t_on_failure)")
		return nil
	case m.Suspended:
		a.e.log.Error(what + ": request already suspended")
		return nil
	}
	req := m.Req
	if req.Msg.IsAck() || req.Msg.IsCancel() {
		a.e.log.Error(what + ": cannot suspend ACK or CANCEL")
		return nil
	}
	tx, err := req.NewTx()
	if err != nil {
		a.e.log.Error(what+": cannot create transaction", "error", err)
		return nil
	}
	if tx.FinalStatus() != 0 {
		// Kamailio's t_suspend returns -3 (a final reply went out) and 1
		// when the request is already canceled; both are refused here.
		a.e.log.Error(what+": the request got its final reply already", "status", tx.FinalStatus(), "canceled", tx.Canceled())
		return nil
	}
	if req.Msg.IsInvite() && tx.LastStatus() == 0 {
		tx.Reply(100, "Trying", nil, nil)
	}
	m.Suspended = true
	return req
}

// Route implements KSR.async.route / ms_route.
func (a *asyncSystem) Route(e *ksr.Env, fn string, delay time.Duration) int {
	if a.group == nil {
		a.e.log.Error("async route: modparam(\"async\", \"workers\", 0) leaves no worker to resume in (Kamailio's KEMI would crash here)", "route", fn)
		return -1
	}
	req := a.suspend(e, "async route")
	if req == nil {
		return -1
	}
	due := a.e.clock.Now().Add(delay)
	r := &resume{req: req, msg: e.Msg, fn: fn, due: due, group: a.group}
	a.hold()
	a.holding.Store(e.Msg, r)
	a.deadlines.Add(due, r)
	return a.e.set.Async.Return
}

// Task implements KSR.async.task_route / task_group_route: resume now in
// group ("" = the core default group).
func (a *asyncSystem) Task(e *ksr.Env, fn, group string) int {
	g, err := a.coreGroup(group)
	if err != nil {
		a.e.log.Error("async task: "+err.Error(), "route", fn)
		return -1
	}
	req := a.suspend(e, "async task")
	if req == nil {
		return -1
	}
	r := &resume{req: req, msg: e.Msg, fn: fn, group: g}
	a.hold()
	a.holding.Store(e.Msg, r)
	a.arm(r) // due now; goes once the handler returns
	return a.e.set.Async.Return
}

// Data implements KSR.async.task_data / task_group_data.
func (a *asyncSystem) Data(e *ksr.Env, fn, group, data string) int {
	g, err := a.coreGroup(group)
	if err != nil {
		a.e.log.Error("async data task: "+err.Error(), "route", fn)
		return -1
	}
	if err := a.e.submit(g, &dataTask{fn: fn, data: data}); err != nil {
		return -1
	}
	return 1
}

// coreGroup finds an async_workers group. Unlike Kamailio (which returns
// success and never runs the task), a missing group is an error.
func (a *asyncSystem) coreGroup(name string) (*workers.Group, error) {
	if name == "" {
		name = "default"
	}
	g := a.e.groups[name]
	if g == nil {
		if name == "default" {
			return nil, errors.New("no async_workers group: set async_workers=N (core parameter)")
		}
		return nil, fmt.Errorf("async_workers_group %q not found", name)
	}
	return g, nil
}

// Sleep implements KSR.async.sleep / ms_sleep (kemi extension): the running
// request handler is suspended (a coroutine of its VM) with its request, and
// continues after d on the same worker, where the call returns 1. When it
// cannot suspend, it returns -1 at once and the handler goes on.
func (a *asyncSystem) Sleep(e *ksr.Env, L *lua.LState, d time.Duration) int {
	fail := func(msg string, args ...any) int {
		a.e.log.Error("async sleep: "+msg, args...)
		L.Push(lua.LNumber(sleepFailed))
		return 1
	}
	w := a.workerFor(e)
	if w == nil {
		return fail("not in a SIP worker")
	}
	if m := e.Msg; m == nil || m.Route != ksr.RouteRequest || m.PreRouting {
		return fail("only in the request route (ksr_request_route and the functions it calls)")
	}
	co, err := w.vm.Suspendable(L)
	if err != nil {
		return fail(err.Error())
	}
	g := a.groupOf(w)
	if g == nil {
		return fail("the worker's group cannot resume coroutines", "worker", w.vm.Name())
	}
	req := a.suspend(e, "async sleep")
	if req == nil {
		L.Push(lua.LNumber(sleepFailed))
		return 1
	}
	due := a.e.clock.Now().Add(d)
	r := &resume{req: req, msg: e.Msg, due: due, group: g, index: w.env.Index, co: co}
	r.gate.Store(1) // the worker is released by the yield itself
	a.hold()
	a.deadlines.Add(due, r)
	return co.Yield(L)
}

// workerFor returns the worker whose KSR environment is env.
func (a *asyncSystem) workerFor(env *ksr.Env) *worker {
	if w, ok := a.byEnv.Load(env); ok {
		return w.(*worker)
	}
	a.e.vmsMu.Lock()
	defer a.e.vmsMu.Unlock()
	for _, w := range a.e.vms {
		if w.env == env {
			a.byEnv.Store(env, w)
			return w
		}
	}
	return nil
}

// groupOf returns the group of a worker that routes requests: the receivers
// or an async_workers group (sworker delegation).
func (a *asyncSystem) groupOf(w *worker) *workers.Group {
	if w.env.Group == "receivers" {
		return a.e.receivers
	}
	return a.e.groups[w.env.Group]
}

// mayYield reports whether request handlers of generation g run as
// coroutines: only when the script mentions KSR.async.sleep or ms_sleep
// (a coroutine costs little for a handler that returns, but a thread
// dropped after KSR.x.exit costs ~7 µs and 12 KB).
func (a *asyncSystem) mayYield(g *luavm.Generation) bool {
	if c := a.yields.Load(); c != nil && c.gen == g {
		return c.yields
	}
	c := &genYields{gen: g, yields: g.Mentions("sleep", "ms_sleep")}
	a.yields.Store(c)
	return c.yields
}

// callRequest runs the request route; as a coroutine when the script may
// suspend it with KSR.async.sleep. It reports whether the request was
// suspended: then its resume may run as soon as callRequest returns, and
// the caller must not touch msg any more.
func (w *worker) callRequest(msg *ksr.Msg, fn string) (suspended bool) {
	a := w.e.async
	if a == nil {
		w.call(msg, fn, true)
		return false
	}
	if !a.mayYield(w.vm.Generation()) {
		w.call(msg, fn, true)
	} else {
		w.env.Msg = msg
		_, err := w.vm.CallGlobalCo(fn)
		w.env.Msg = nil
		w.report(fn, true, err)
	}
	if !msg.Suspended {
		return false
	}
	a.release(msg)
	return true
}

// report logs the error of a call, as call does.
func (w *worker) report(fn string, required bool, err error) {
	if err == nil {
		return
	}
	if errors.Is(err, luavm.ErrNoFunction) {
		if required {
			w.logErr("missing:"+fn, "lua function not found", "function", fn)
		}
		return
	}
	var le *luavm.Error
	if errors.As(err, &le) {
		w.logLuaErr(fn, le)
		return
	}
	w.logErr("call:"+fn, "lua call failed", "function", fn, "error", err)
}

// resume runs a resume on this worker.
func (w *worker) resume(r *resume) {
	if r.co != nil {
		w.continueCo(r)
		return
	}
	// As tm's t_continue: route type failure, no arguments.
	msg := r.msg
	msg.Suspended = false
	msg.Route = ksr.RouteFailure
	msg.Time = w.e.clock.Now()
	w.call(msg, r.fn, true)
	w.finish(r.req, msg)
}

// continueCo continues a handler suspended by KSR.async.sleep.
func (w *worker) continueCo(r *resume) {
	if r.co.VM() != w.vm {
		// Cannot happen: the resume was submitted to the owner of the VM.
		w.e.log.Error("async sleep: coroutine resumed on a foreign worker (bug)", "worker", w.vm.Name())
		r.msg.Suspended = false
		w.finish(r.req, r.msg) // tm's 500
		return
	}
	msg := r.msg
	msg.Suspended = false
	msg.Time = w.e.clock.Now()
	w.env.Msg = msg
	_, err := r.co.Resume(lua.LNumber(sleepOK))
	w.env.Msg = nil
	w.report(w.e.set.RequestCB, false, err)
	w.finish(r.req, msg)
}

// finish ends a resumed request as tm does after t_continue: unless it was
// suspended again, a transaction that got neither a final reply nor a relay
// is answered 500. A transaction already gone (CANCEL, shutdown) gets
// nothing more.
func (w *worker) finish(req *sipnet.Request, msg *ksr.Msg) {
	if msg.Suspended {
		if a := w.e.async; a != nil {
			a.release(msg)
		}
		return
	}
	w.relayRelease(msg) // relay.go: a failure handling due meanwhile runs now
	tx := req.Tx()
	if tx != nil && !tx.Terminated() && !tx.Canceled() && tx.FinalStatus() == 0 && !relayPending(tx) {
		tx.Reply(500, "I'm terribly sorry, server error occurred (1/TM)", nil, nil)
	}
	req.Done()
}

// data runs an async data task on a faked request.
func (w *worker) data(t *dataTask) {
	w.env.AsyncData = t.data
	w.call(w.env.Faked(ksr.RouteEvent), t.fn, true, argTaskData)
	w.env.AsyncData = ""
}
