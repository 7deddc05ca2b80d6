package async

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/luavm"
	"kemi/sipnet"
)

// A suspended request is a server transaction (retransmissions absorbed,
// CANCEL answered) parked in the deadline heap: no worker is held while it
// waits.

// resume is a suspended request due to continue: in fn on a worker of
// group (route, task), or as the coroutine co on the worker runner (sleep).
// It is the task that resumes it.
type resume struct {
	m      *Module
	req    *sipnet.Request
	msg    *ksr.Msg
	fn     string
	due    time.Time
	group  ksr.Group  // route, task
	runner ksr.Runner // sleep: the worker that owns co
	co     *luavm.Co
	gate   atomic.Int32 // 2 = due and released: hand it over
	shut   atomic.Bool  // shutdown: answer 503 instead of resuming
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

// Boxed arguments, built once.
var (
	argTaskData lua.LValue = lua.LString("async:task-data")
	argSleepOK  lua.LValue = lua.LNumber(sleepOK)
)

// hold counts a new suspended request.
func (m *Module) hold() {
	m.mu.Lock()
	m.waiting++
	m.mu.Unlock()
	m.host.Hold(1)
}

// done uncounts a suspended request: handed to a worker, or given up.
func (m *Module) done() {
	m.mu.Lock()
	m.waiting--
	m.mu.Unlock()
	m.host.Hold(-1)
}

// arm hands r over on its second call (due and released): the timer
// goroutine calls it at the deadline, Released when the handler returns.
func (m *Module) arm(r *resume) {
	if r.gate.Add(1) != 2 {
		return
	}
	if r.shut.Load() {
		m.reject(r, "shutdown")
		return
	}
	var err error
	group := ""
	if r.co != nil {
		group = r.runner.Env().Group
		err = r.runner.Post(r)
	} else {
		group = r.group.Name()
		err = r.group.Submit(r)
	}
	if err != nil {
		m.host.Logger().Error("async resume dropped: workers stopped", "route", r.fn, "group", group, "error", err)
		m.reject(r, "workers stopped")
		return
	}
	m.done()
}

// reject answers a request that will not be resumed with 503 and forgets it.
func (m *Module) reject(r *resume, why string) {
	if tx := r.req.Tx(); tx != nil {
		if err := tx.Reply(503, "Service Unavailable", nil, nil); err == nil {
			m.host.Logger().Info("async: suspended request answered 503", "reason", why, "route", r.fn)
		}
	}
	r.req.Done()
	m.done()
}

// suspend turns the current request into a suspended transaction: it creates
// the server transaction if needed (retransmissions are absorbed from then
// on) and sends 100 Trying for an INVITE, as tm's t_suspend does. It returns
// the request, or nil after logging why it cannot. The 100's reason is tm's
// auto_inv_100_reason (t_suspend.c), through SetInv100Reason.
func (m *Module) suspend(e *ksr.Env, what string) *sipnet.Request {
	log := m.host.Logger()
	msg := e.Msg
	switch {
	case m.drained.Load():
		log.Error(what + ": shutting down")
		return nil
	case msg == nil || msg.Req == nil || msg.Faked || msg.Res != nil:
		log.Error(what + ": no request to suspend (faked message or reply)")
		return nil
	case msg.Route != ksr.RouteRequest && msg.Route != ksr.RouteFailure:
		log.Error(what + ": only in the request route or an async resume (failure route)")
		return nil
	case msg.TM != nil:
		// A t_on_failure route: the relay sends the final reply when it
		// returns; suspending there is not supported (Kamailio allows it).
		log.Error(what + ": not supported in a tm failure route (t_on_failure)")
		return nil
	case msg.Suspended:
		log.Error(what + ": request already suspended")
		return nil
	}
	req := msg.Req
	if req.Msg.IsAck() || req.Msg.IsCancel() {
		log.Error(what + ": cannot suspend ACK or CANCEL")
		return nil
	}
	tx, err := req.NewTx()
	if err != nil {
		log.Error(what+": cannot create transaction", "error", err)
		return nil
	}
	if tx.FinalStatus() != 0 {
		// Kamailio's t_suspend returns -3 (a final reply went out) and 1
		// when the request is already canceled; both are refused here.
		log.Error(what+": the request got its final reply already", "status", tx.FinalStatus(), "canceled", tx.Canceled())
		return nil
	}
	if req.Msg.IsInvite() && tx.LastStatus() == 0 {
		tx.Reply(100, m.inv100Reason(), nil, nil)
	}
	msg.Suspended = true
	return req
}

// suspendRoute implements KSR.async.route / ms_route.
func (m *Module) suspendRoute(e *ksr.Env, fn string, delay time.Duration) int {
	if m.grp == nil {
		m.host.Logger().Error("async route: modparam(\"async\", \"workers\", 0) leaves no worker to resume in (Kamailio's KEMI would crash here)", "route", fn)
		return -1
	}
	req := m.suspend(e, "async route")
	if req == nil {
		return -1
	}
	due := m.host.Clock().Now().Add(delay)
	r := &resume{m: m, req: req, msg: e.Msg, fn: fn, due: due, group: m.grp}
	m.hold()
	m.holding.Store(e.Msg, r)
	m.deadlines.Add(due, r)
	return m.set.Return
}

// task implements KSR.async.task_route / task_group_route: resume now in
// group ("" = the core default group).
func (m *Module) task(e *ksr.Env, fn, group string) int {
	g, err := m.coreGroup(group)
	if err != nil {
		m.host.Logger().Error("async task: "+err.Error(), "route", fn)
		return -1
	}
	req := m.suspend(e, "async task")
	if req == nil {
		return -1
	}
	r := &resume{m: m, req: req, msg: e.Msg, fn: fn, group: g}
	m.hold()
	m.holding.Store(e.Msg, r)
	m.arm(r) // due now; goes once the handler returns
	return m.set.Return
}

// data implements KSR.async.task_data / task_group_data.
func (m *Module) data(e *ksr.Env, fn, group, data string) int {
	g, err := m.coreGroup(group)
	if err != nil {
		m.host.Logger().Error("async data task: "+err.Error(), "route", fn)
		return -1
	}
	if err := g.Submit(&dataTask{fn: fn, data: data}); err != nil {
		return -1
	}
	return 1
}

// coreGroup finds an async_workers group. Unlike Kamailio (which returns
// success and never runs the task), a missing group is an error.
func (m *Module) coreGroup(name string) (ksr.Group, error) {
	if name == "" {
		name = "default"
	}
	g := m.host.Group(name)
	if g == nil {
		if name == "default" {
			return nil, errors.New("no async_workers group: set async_workers=N (core parameter)")
		}
		return nil, fmt.Errorf("async_workers_group %q not found", name)
	}
	return g, nil
}

// suspendSleep implements KSR.async.sleep / ms_sleep (kemi extension): the
// running request handler is suspended (a coroutine of its VM) with its
// request, and continues after d on the same worker, where the call returns
// 1. When it cannot suspend, it returns -1 at once and the handler goes on.
func (m *Module) suspendSleep(e *ksr.Env, L *lua.LState, d time.Duration) int {
	fail := func(msg string, args ...any) int {
		m.host.Logger().Error("async sleep: "+msg, args...)
		L.Push(lua.LNumber(sleepFailed))
		return 1
	}
	w := e.Runner
	if w == nil {
		return fail("not in a SIP worker")
	}
	if msg := e.Msg; msg == nil || msg.Route != ksr.RouteRequest || msg.PreRouting {
		return fail("only in the request route (ksr_request_route and the functions it calls)")
	}
	co, err := w.VM().Suspendable(L)
	if err != nil {
		return fail(err.Error())
	}
	req := m.suspend(e, "async sleep")
	if req == nil {
		L.Push(lua.LNumber(sleepFailed))
		return 1
	}
	due := m.host.Clock().Now().Add(d)
	r := &resume{m: m, req: req, msg: e.Msg, due: due, runner: w, co: co}
	r.gate.Store(1) // the worker is released by the yield itself
	m.hold()
	m.deadlines.Add(due, r)
	return co.Yield(L)
}

// Run resumes the request on a worker: as tm's t_continue (failure route,
// no arguments) for a route or task, or by continuing the coroutine on
// the worker that owns it for a sleep.
func (r *resume) Run(w ksr.Runner) {
	msg := r.msg
	msg.Suspended = false
	msg.Time = r.m.host.Clock().Now()
	if r.co != nil {
		// Post ran it on its owner; Continue checks it anyway.
		w.Continue(r.co, msg, argSleepOK)
	} else {
		msg.Route = ksr.RouteFailure
		w.Call(msg, r.fn)
	}
	w.Finish(r.req, msg)
}

// Run runs the data task on a faked request.
func (t *dataTask) Run(w ksr.Runner) {
	env := w.Env()
	env.AsyncData, env.InAsyncData = t.data, true
	w.Call(env.Faked(ksr.RouteEvent), t.fn, argTaskData)
	env.AsyncData, env.InAsyncData = "", false
}
