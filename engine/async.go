package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/sipnet"
	"kemi/timers"
	"kemi/workers"
)

// asyncSystem is the async module: suspended requests wait as server
// transactions in a deadline heap (no worker is held), then resume in the
// async group's VMs. Resumes are scheduled to the millisecond on one timer
// goroutine, where Kamailio 5.6 uses a one-second ring.
type asyncSystem struct {
	e         *Engine
	group     *workers.Group // modparam("async", "workers", N)
	deadlines *timers.Deadlines[*resume]
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	mu        sync.Mutex
	waiting   int
}

// resume is a suspended request due to continue in fn.
type resume struct {
	req *sipnet.Request
	msg *ksr.Msg
	fn  string
	due time.Time
}

// dataTask is KSR.async.task_data: fn(evname) with data, no transaction.
type dataTask struct {
	fn, data string
}

func newAsync(e *Engine) *asyncSystem {
	a := &asyncSystem{e: e, deadlines: timers.NewDeadlines[*resume]()}
	if n := e.set.Async.Workers; n > 0 {
		a.group, _ = workers.NewGroup(workers.Options{Name: "async", Workers: n, OnPanic: e.onPanic},
			func(i int) (workers.Runner, error) {
				return e.newWorker(fmt.Sprintf("async/%d", i), "async", i, true)
			})
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
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.deadlines.Run(ctx, a.e.clock, a.fire)
	}()
	return nil
}

// Stop stops the timer, answers every request still suspended with 503 (it
// will not be resumed), then lets the async workers finish.
func (a *asyncSystem) Stop(ctx context.Context) error {
	a.cancel()
	a.wg.Wait()
	for _, r := range a.deadlines.PopDue(time.Unix(1<<40, 0), nil) {
		if tx := r.req.Tx(); tx != nil {
			tx.Reply(503, "Service Unavailable", nil, nil)
		}
		a.done()
	}
	if a.group != nil {
		return a.group.Stop(ctx)
	}
	return nil
}

// Suspended returns how many requests wait for their resume.
func (a *asyncSystem) Suspended() int { return a.deadlines.Len() }

func (a *asyncSystem) done() {
	a.mu.Lock()
	a.waiting--
	a.mu.Unlock()
	a.e.pending.Add(-1)
}

// fire hands a due resume to the async group.
func (a *asyncSystem) fire(r *resume) {
	if err := a.e.submit(a.group, r); err != nil {
		a.e.log.Error("async resume dropped: async workers stopped", "route", r.fn, "error", err)
	}
	a.done()
}

// suspend turns the current request into a suspended transaction; it returns
// the Kamailio code (the return param on success, -1 on error).
func (a *asyncSystem) suspend(e *ksr.Env) (*sipnet.Request, int) {
	m := e.Msg
	if m == nil || m.Req == nil || m.Faked || m.Res != nil {
		a.e.log.Error("async: no request to suspend (faked message or reply)")
		return nil, -1
	}
	if m.Suspended {
		a.e.log.Error("async: request already suspended")
		return nil, -1
	}
	req := m.Req
	if req.Msg.IsAck() || req.Msg.IsCancel() {
		a.e.log.Error("async: cannot suspend ACK or CANCEL")
		return nil, -1
	}
	tx, err := req.NewTx()
	if err != nil {
		a.e.log.Error("async: cannot create transaction", "error", err)
		return nil, -1
	}
	if tx.FinalStatus() != 0 && !tx.Canceled() {
		a.e.log.Error("async: a final reply was sent already")
		return nil, -1
	}
	if req.Msg.IsInvite() && tx.LastStatus() == 0 {
		tx.Reply(100, "Trying", nil, nil)
	}
	m.Suspended = true
	return req, a.e.set.Async.Return
}

// Route implements KSR.async.route / ms_route.
func (a *asyncSystem) Route(e *ksr.Env, fn string, delay time.Duration) int {
	if a.group == nil {
		a.e.log.Error("async: modparam(\"async\", \"workers\", 0) leaves no worker to resume in (Kamailio would crash here)")
		return -1
	}
	req, code := a.suspend(e)
	if req == nil {
		return code
	}
	a.mu.Lock()
	a.waiting++
	a.mu.Unlock()
	a.e.pending.Add(1)
	due := a.e.clock.Now().Add(delay)
	a.deadlines.Add(due, &resume{req: req, msg: e.Msg, fn: fn, due: due})
	return code
}

// Task implements KSR.async.task_route / task_group_route: resume now in
// group ("" = the core default group).
func (a *asyncSystem) Task(e *ksr.Env, fn, group string) int {
	g, err := a.coreGroup(group)
	if err != nil {
		a.e.log.Error("async task: "+err.Error(), "route", fn)
		return -1
	}
	req, code := a.suspend(e)
	if req == nil {
		return code
	}
	if err := a.e.submit(g, &resume{req: req, msg: e.Msg, fn: fn}); err != nil {
		e.Msg.Suspended = false
		return -1
	}
	return code
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

// Sleep implements KSR.async.sleep / ms_sleep (kemi extension).
func (a *asyncSystem) Sleep(e *ksr.Env, L *lua.LState, d time.Duration) int {
	a.e.log.Error("KSR.async.sleep is not available yet")
	L.Push(lua.LNumber(-1))
	return 1
}

// resume runs a suspended request's resume function, as tm's t_continue:
// route type failure, no arguments; a request that got neither a reply nor
// a relay is answered 500.
func (w *worker) resume(r *resume) {
	msg := r.msg
	msg.Suspended = false
	msg.Route = ksr.RouteFailure
	msg.Time = w.e.clock.Now()
	w.call(msg, r.fn, true)
	if msg.Suspended {
		return // suspended again
	}
	tx := r.req.Tx()
	if tx != nil && !tx.Terminated() && !tx.Canceled() && tx.FinalStatus() == 0 {
		tx.Reply(500, "I'm terribly sorry, server error occurred (1/TM)", nil, nil)
	}
	r.req.Done()
}

// data runs an async data task on a faked request.
func (w *worker) data(t *dataTask) {
	w.env.AsyncData = t.data
	w.call(w.env.Faked(ksr.RouteEvent), t.fn, true, argTaskData)
	w.env.AsyncData = ""
}
