package engine

import (
	"context"
	"errors"
	"fmt"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/luavm"
	"kemi/sipnet"
)

// worker is one VM and its KSR environment, owned by one goroutine (a group
// worker or an rtimer goroutine). It implements workers.Runner.
type worker struct {
	e   *Engine
	vm  *luavm.VM
	env *ksr.Env
}

// Boxed event-route arguments, built once.
var (
	argPreRouting = lua.LString("core:pre-routing")
	argRtimer     = lua.LString("rtimer")
	argTaskData   = lua.LString("async:task-data")
)

func (e *Engine) newWorker(name, group string, index int, async bool) (*worker, error) {
	env := ksr.NewEnv(e.deps, name, group, index)
	env.AsyncWorker = async
	vm, err := luavm.New(&e.cur, luavm.Options{
		Name:        name,
		Init:        func(L *lua.LState) error { ksr.Register(L, env); return nil },
		Budget:      e.set.MaxExec,
		Watchdog:    e.watchdog,
		MaxMem:      e.set.MaxMem,
		MemWatchdog: e.memdog,
	})
	if err != nil {
		return nil, err
	}
	w := &worker{e: e, vm: vm, env: env}
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
func (w *worker) Run(task any) {
	defer w.e.pending.Add(-1)
	w.sync()
	switch t := task.(type) {
	case *sipnet.Request:
		w.request(t, false)
	case *sipnet.Response:
		w.reply(t, false)
	case *delegated:
		w.delegated(t)
	case *resume:
		w.resume(t)
	case *dataTask:
		w.data(t)
	case func(*worker):
		t(w)
	default:
		w.e.log.Error("unknown task type", "type", fmt.Sprintf("%T", task))
	}
}

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
	err := w.vm.CallGlobal(fn, args...)
	w.env.Msg = nil
	if err == nil {
		return nil
	}
	if errors.Is(err, luavm.ErrNoFunction) {
		if required {
			w.logErr("missing:"+fn, "lua function not found", "function", fn)
		}
		return err
	}
	var le *luavm.Error
	if errors.As(err, &le) {
		w.logLuaErr(fn, le)
		return err
	}
	w.logErr("call:"+fn, "lua call failed", "function", fn, "error", err)
	return err
}

// logLuaErr logs a failed Lua call with its traceback, rate-limited as
// logErr, except a stop by the memory budget: each one is logged, as each
// means a Lua state dropped (and at least max_mem_mb allocated, so they
// cannot flood the log).
func (w *worker) logLuaErr(fn string, le *luavm.Error) {
	if le.Kind == luavm.KindMemory {
		w.e.log.Error("lua error", "function", fn, "worker", w.vm.Name(), "error", le.Error(), "traceback", le.Traceback)
		return
	}
	w.logErr("lua:"+fn, "lua error", "function", fn, "worker", w.vm.Name(), "error", le.Error(), "traceback", le.Traceback)
}

// logErr logs at error level, at most once per second and key, with the
// count of suppressed lines.
func (w *worker) logErr(key, msg string, args ...any) {
	ok, n := w.e.errLog.allow(key)
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	w.e.log.Error(msg, args...)
}

// request routes a received request: pre-routing (unless delegated), then
// the request route. The in-flight marker is released unless the request
// was suspended or handed to another worker.
func (w *worker) request(r *sipnet.Request, delegated bool) {
	e := w.e
	msg := &ksr.Msg{Req: r, Route: ksr.RouteRequest, Time: e.clock.Now()}
	if r.Tag != nil {
		e.observe(w, r, msg, delegated) // an injected request (inject.go)
	}
	if cb := e.set.PreRouteCB; cb != "" && !delegated {
		// Only the drop flag stops here, as in Kamailio: after
		// KSR.sworker.task without KSR.x.drop the request is routed here too.
		if w.preRoute(msg, cb, r) {
			r.Done()
			return
		}
	}
	if suspended := w.callRequest(msg, e.set.RequestCB); !suspended { // async.go
		w.relayDone(msg) // relay.go: pending failure handling, relay errors
		r.Done()
	}
}

// reply routes a received reply: pre-routing (unless delegated), then the
// core reply route.
func (w *worker) reply(r *sipnet.Response, delegated bool) {
	e := w.e
	msg := &ksr.Msg{Res: r, Route: ksr.RouteReply, Time: e.clock.Now()}
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
	if w.e.deps.Sworker != nil {
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
	e.submit(e.receivers, r)
}

// HandleResponse queues a received reply for the receivers (sipnet.Handler).
func (e *Engine) HandleResponse(r *sipnet.Response) {
	e.submit(e.receivers, r)
}

// submit queues a task, waiting while the group's inbox is full (back
// pressure reaches the socket, as in Kamailio).
func (e *Engine) submit(g interface {
	Submit(context.Context, any) error
}, task any) error {
	e.pending.Add(1)
	ctx := e.runCtx
	if ctx == nil {
		ctx = context.Background()
	}
	if err := g.Submit(ctx, task); err != nil {
		e.pending.Add(-1)
		if r, ok := task.(*sipnet.Request); ok {
			r.Done()
		}
		return err
	}
	return nil
}
