package engine

import (
	"context"
	"errors"
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/luavm"
	"kemi/sipnet"
	"kemi/workers"
)

// worker is one VM and its KSR environment, owned by one goroutine (a group
// worker or a module's goroutine). It is the ksr.Runner of the modules'
// tasks and the workers.Runner of every group.
type worker struct {
	e     *Engine
	vm    *luavm.VM
	env   *ksr.Env
	group *workers.Group[ksr.Task] // nil outside a group (Host.NewRunner)
	busy  busyMark                 // stuck.go
}

var _ ksr.Runner = (*worker)(nil)

// Boxed event-route arguments, built once.
var argPreRouting = lua.LString("core:pre-routing")

func (e *Engine) newWorker(name, group string, index int, async bool) (*worker, error) {
	env := ksr.NewEnv(e.deps, name, group, index)
	env.AsyncWorker = async
	vm, err := luavm.New(&e.cur, luavm.Options{
		Name:        name,
		Init:        func(L *lua.LState) error { ksr.Register(L, env); return nil },
		Budget:      e.set.AppLua().MaxExec,
		Watchdog:    e.watchdog,
		LoadTimeout: e.loadTimeout(),
		MaxMem:      e.set.AppLua().MaxMem,
		MaxAlloc:    DefaultMaxAllocMB << 20,
		MemWatchdog: e.memdog,
	})
	if err != nil {
		return nil, err
	}
	w := &worker{e: e, vm: vm, env: env}
	env.Runner = w
	e.vmsMu.Lock()
	e.vms = append(e.vms, w)
	e.vmsMu.Unlock()
	return w, nil
}

// Close releases the VM.
func (w *worker) Close() {
	w.e.vmsMu.Lock()
	for i, x := range w.e.vms {
		if x == w {
			w.e.vms = append(w.e.vms[:i], w.e.vms[i+1:]...)
			break
		}
	}
	w.e.vmsMu.Unlock()
	w.vm.Close()
}

// Run runs one task on the worker's goroutine.
func (w *worker) Run(t ksr.Task) {
	defer w.e.pending.Add(-1)
	w.sync()
	t.Run(w)
}

// Env returns the worker's KSR environment (ksr.Runner).
func (w *worker) Env() *ksr.Env { return w.env }

// VM returns the worker's Lua VM (ksr.Runner).
func (w *worker) VM() *luavm.VM { return w.vm }

// Call syncs the VM and calls fn, a required function (ksr.Runner).
func (w *worker) Call(msg *ksr.Msg, fn string, args ...lua.LValue) error {
	w.sync()
	return w.call(msg, fn, true, args...)
}

// Request routes a received request (ksr.Runner).
func (w *worker) Request(r *sipnet.Request, delegated bool) { w.request(r, delegated) }

// Reply routes a received reply (ksr.Runner).
func (w *worker) Reply(r *sipnet.Response, delegated bool) { w.reply(r, delegated) }

// Post queues t for this worker only (ksr.Runner).
func (w *worker) Post(t ksr.Task) error {
	if w.group == nil {
		return fmt.Errorf("worker %q is not in a group", w.vm.Name())
	}
	return w.e.submit(workerOf{w.group, w.env.Index}, t)
}

// workerOf is one worker of a group as a submit target (engine.submit).
type workerOf struct {
	g *workers.Group[ksr.Task]
	i int
}

func (w workerOf) Submit(ctx context.Context, t ksr.Task) error { return w.g.SubmitTo(ctx, w.i, t) }

// requestTask is a received request as a receiver's task; a named pointer
// type, so that queueing a request allocates nothing.
type requestTask sipnet.Request

func (t *requestTask) Run(r ksr.Runner) { r.Request((*sipnet.Request)(t), false) }

// replyTask is a received reply as a receiver's task.
type replyTask sipnet.Response

func (t *replyTask) Run(r ksr.Runner) { r.Reply((*sipnet.Response)(t), false) }

// workerFunc is an engine task that needs the engine's own worker (relay
// events). Every group's runner is a *worker: the engine builds them all.
type workerFunc func(*worker)

func (f workerFunc) Run(r ksr.Runner) { f(r.(*worker)) }

// nudgeTask does nothing: running it makes a worker switch to the
// published script generation (reload.go).
type nudgeTask struct{}

func (nudgeTask) Run(ksr.Runner) {}

// sync switches the VM to the published script generation before an event.
func (w *worker) sync() {
	if _, err := w.vm.Sync(); err != nil {
		w.e.log.Error("worker keeps the previous script: new version failed to load", "worker", w.vm.Name(), "error", err)
	}
}

// call runs the global function fn with msg bound; a missing function is
// reported only when required is set.
func (w *worker) call(msg *ksr.Msg, fn string, required bool, args ...lua.LValue) error {
	w.env.Msg = msg
	w.enter(fn)
	err := w.vm.CallGlobal(fn, args...)
	w.leave()
	w.env.Msg = nil
	w.report(fn, required, err)
	return err
}

// report logs the error of a call of fn, rate-limited per kind and
// function by the engine's logger: a missing function only when required
// is set, a Lua error with its traceback, any other failure as is.
func (w *worker) report(fn string, required bool, err error) {
	if err == nil {
		return
	}
	w.e.countCallError(fn, err)
	if errors.Is(err, luavm.ErrNoFunction) {
		if required {
			w.e.log.Error("lua function not found", "function", fn)
		}
		return
	}
	var le *luavm.Error
	if errors.As(err, &le) {
		// A stop by the memory budget is logged every time: each one means a
		// Lua state dropped (and at least max_mem_mb allocated, so these
		// cannot flood the log).
		log := w.e.log
		if le.Kind == luavm.KindMemory {
			log = w.e.ctl
		}
		log.Error("lua error", "function", fn, "worker", w.vm.Name(), "error", le.Error(), "traceback", le.Traceback)
		return
	}
	w.e.log.Error("lua call failed", "function", fn, "error", err)
}

// callRequest runs the request route; as a coroutine when the suspending
// module (async) says the script may suspend it with KSR.async.sleep. It
// reports whether the request was suspended: then its resume may run as
// soon as callRequest returns, and the caller must not touch msg any more.
func (w *worker) callRequest(msg *ksr.Msg, fn string) (suspended bool) {
	s := w.e.suspender
	if s == nil {
		w.call(msg, fn, true)
		return false
	}
	if !s.Yields(w) {
		w.call(msg, fn, true)
	} else {
		w.env.Msg = msg
		w.enter(fn)
		_, err := w.vm.CallGlobalCo(fn)
		w.leave()
		w.env.Msg = nil
		w.report(fn, true, err)
	}
	if !msg.Suspended {
		return false
	}
	s.Released(msg)
	return true
}

// Continue continues a request handler suspended by KSR.async.sleep
// (ksr.Runner).
func (w *worker) Continue(co *luavm.Co, msg *ksr.Msg, vals ...lua.LValue) error {
	if co.VM() != w.vm {
		// Cannot happen: the resume was posted to the owner of the VM.
		w.e.log.Error("async sleep: coroutine resumed on a foreign worker (bug)", "worker", w.vm.Name())
		return fmt.Errorf("coroutine of another VM resumed on %q", w.vm.Name())
	}
	w.env.Msg = msg
	w.enter(w.e.set.RequestCB)
	_, err := co.Resume(vals...)
	w.leave()
	w.env.Msg = nil
	w.report(w.e.set.RequestCB, false, err)
	return err
}

// Finish ends a resumed request as tm does after t_continue (ksr.Runner):
// unless it was suspended again, a transaction that got neither a final
// reply nor a relay is answered 500. A transaction already gone (CANCEL,
// shutdown) gets nothing more.
func (w *worker) Finish(req *sipnet.Request, msg *ksr.Msg) {
	if msg.Suspended {
		if s := w.e.suspender; s != nil {
			s.Released(msg)
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

// request routes a received request: pre-routing (unless delegated), then
// the request route. The in-flight marker is released unless the request
// was suspended or handed to another worker.
func (w *worker) request(r *sipnet.Request, delegated bool) {
	e := w.e
	msg := requestMsg(r)
	*msg = ksr.Msg{Req: r, Route: ksr.RouteRequest}
	if o := r.Observer; o != nil { // an injected request (inject.go)
		o.Routed(sipnet.Pass{Worker: w.vm.Name(), Group: w.env.Group, Delegated: delegated, Req: r,
			Drop: &msg.Drop, Suspended: &msg.Suspended})
	}
	if cb := e.set.PreRouteCB; cb != "" && !delegated {
		// Only the drop flag stops here, as in Kamailio: after
		// KSR.sworker.task without KSR.x.drop the request is routed here too.
		if w.preRoute(msg, cb, r) {
			r.Done()
			return
		}
	}
	if suspended := w.callRequest(msg, e.set.RequestCB); !suspended {
		w.relayDone(msg) // relay.go: pending failure handling, relay errors
		r.Done()
		e.recycle(r, msg)
	}
}

// recycle gives the memory of a request routed to its end (Done) back for
// the next ones, the parsed message (sipnet's arena) and the box with its
// ksr.Msg, when nothing can refer to them: no transaction, no observer,
// and the routes called only KSR functions that keep nothing of the
// message (ksr.Export.NoRetain; any other marks it Kept). Only a request
// the UDP listener parsed itself (Request.Recycle), routed with its box's
// own Msg, qualifies; any other is left to the collector.
func (e *Engine) recycle(r *sipnet.Request, msg *ksr.Msg) {
	if msg.Kept || r.Observer != nil || r.Tx() != nil {
		return
	}
	b, ok := r.Ext.(*reqBox)
	if !ok || &b.req != r || &b.msg != msg || !r.Recycle() {
		return
	}
	*b = reqBox{}
	e.boxes.Put(b)
}

// reqBox is a received request allocated with its routing state and the
// room for its transaction key: one allocation (sipnet.RequestAllocator).
// A box is reused (recycle) only when its request's routing ended with
// nothing holding any part of it; otherwise the request, its ksr.Msg and
// the key live as long as anything (a suspended transaction, a relay, a
// module's per-VM memory of "its" message) holds any of them, and no two
// requests that may both be referred to ever share a ksr.Msg.
type reqBox struct {
	req     sipnet.Request
	msg     ksr.Msg
	msgUsed bool
	key     [sipnet.KeyRoom]byte
}

// NewRequest allocates a received request (sipnet.RequestAllocator).
func (e *Engine) NewRequest() (*sipnet.Request, []byte) {
	b, ok := e.boxes.Get().(*reqBox)
	if !ok {
		b = new(reqBox)
	}
	b.req.Ext = b
	return &b.req, b.key[:0]
}

// requestMsg returns the ksr.Msg to route r with: the one allocated with
// it, the first time only and not for a copy (Handoff copies Ext), else a
// new one.
func requestMsg(r *sipnet.Request) *ksr.Msg {
	if b, ok := r.Ext.(*reqBox); ok && &b.req == r && !b.msgUsed {
		b.msgUsed = true
		return &b.msg
	}
	return new(ksr.Msg)
}

// resBox is reqBox for a received reply (sipnet.ResponseAllocator).
type resBox struct {
	res     sipnet.Response
	msg     ksr.Msg
	msgUsed bool
}

// NewResponse allocates a received reply (sipnet.ResponseAllocator).
func (e *Engine) NewResponse() *sipnet.Response {
	b := new(resBox)
	b.res.Ext = b
	return &b.res
}

// responseMsg is requestMsg for a reply.
func responseMsg(r *sipnet.Response) *ksr.Msg {
	if b, ok := r.Ext.(*resBox); ok && &b.res == r && !b.msgUsed {
		b.msgUsed = true
		return &b.msg
	}
	return new(ksr.Msg)
}

// reply routes a received reply: pre-routing (unless delegated), then the
// core reply route.
func (w *worker) reply(r *sipnet.Response, delegated bool) {
	e := w.e
	msg := responseMsg(r)
	*msg = ksr.Msg{Res: r, Route: ksr.RouteReply}
	if cb := e.set.PreRouteCB; cb != "" && !delegated {
		if w.preRoute(msg, cb, r) { // only drop stops, as for requests
			return
		}
	}
	w.replyRoute(msg) // relay.go: reply route, then tm or stateless forwarding
}

// preRoute runs the pre-routing callback cb on msg, then puts msg back in
// the route it came for, and reports whether the script dropped it. With
// sworker loaded, the message as received is kept meanwhile: that is what
// KSR.sworker.task passes on.
func (w *worker) preRoute(msg *ksr.Msg, cb string, kept interface {
	KeepReceived()
	ForgetReceived()
}) bool {
	if w.e.keepReceived {
		kept.KeepReceived()
	}
	route := msg.Route
	msg.PreRouting = true
	msg.Route = ksr.RouteEvent
	w.call(msg, cb, false, argPreRouting)
	msg.PreRouting = false
	msg.Route = route
	kept.ForgetReceived()
	return msg.Drop
}

// HandleRequest queues a received request for the receivers (sipnet.Handler).
func (e *Engine) HandleRequest(r *sipnet.Request) {
	e.countRequest(r)
	if err := e.submit(e.receivers, (*requestTask)(r)); err != nil {
		r.Done()
	}
}

// HandleResponse queues a received reply for the receivers (sipnet.Handler).
// The replies of a relayed request go to one receiver chosen by their
// Call-ID, so they are handled in the order they arrived (a 180 then a 486
// sent back to back reach upstream in that order); on any free receiver
// the 486 could end the transaction before the 180 was relayed.
func (e *Engine) HandleResponse(r *sipnet.Response) {
	e.countResponse(r)
	if r.Branch == nil {
		e.submit(e.receivers, (*replyTask)(r))
		return
	}
	callID := ""
	if h := r.Msg.CallID(); h != nil {
		callID = string(*h)
	}
	e.submitTo(e.receivers, int(fnv32(callID)%uint32(e.receivers.Size())), (*replyTask)(r))
}

// fnv32 is FNV-1a of s.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// submit queues a task, waiting while the group's inbox is full (back
// pressure reaches the socket, as in Kamailio).
func (e *Engine) submit(g interface {
	Submit(context.Context, ksr.Task) error
}, task ksr.Task) error {
	e.pending.Add(1)
	if err := g.Submit(e.submitCtx(), task); err != nil {
		e.pending.Add(-1)
		return err
	}
	return nil
}

// submitTo is submit to worker i of g (no interface value to allocate).
func (e *Engine) submitTo(g *workers.Group[ksr.Task], i int, task ksr.Task) error {
	e.pending.Add(1)
	if err := g.SubmitTo(e.submitCtx(), i, task); err != nil {
		e.pending.Add(-1)
		return err
	}
	return nil
}

func (e *Engine) submitCtx() context.Context {
	if e.runCtx == nil {
		return context.Background()
	}
	return e.runCtx
}
