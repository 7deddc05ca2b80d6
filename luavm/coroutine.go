package luavm

import (
	"errors"
	"runtime"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Coroutines let an event handler suspend itself in the middle (KSR.async.sleep)
// and continue later with its locals intact, while the VM's goroutine serves
// other events meanwhile.
//
// A handler started with CallCo runs in a gopher-lua thread of the VM's
// state. A binding that wants to suspend it asks Suspendable, arranges for
// its continuation, and returns Co.Yield; CallCo then returns the suspended
// *Co. Later, on the VM's goroutine again (a Lua state and its threads belong
// to one goroutine), Co.Resume continues the handler after the suspending
// call. Threads of handlers that ended normally go back to a small per-state
// pool; a thread left by an error or KSR.x.exit still holds frames and is
// dropped.
//
// Limits, all checked by Suspendable:
//   - only the handler started by CallCo can suspend: not a coroutine the
//     script created itself (coroutine.create/wrap);
//   - not across a Go call boundary: inside pcall/xpcall, a metamethod, a
//     generic-for iterator, a table.sort comparator or a string.gsub
//     callback, gopher-lua runs the Lua code in a nested Go call that a yield
//     would tear apart. This is found by counting gopher-lua's interpreter
//     loops on the Go stack between the binding and the thread's start.
//
// A reload does not disturb a suspended handler: it keeps running the code of
// the state it started in (its thread belongs to that state), and the next
// events use the new state.

// ErrNotSuspendable is returned by Suspendable when the caller is not the
// running handler of a CallCo, or when a suspension would cross a Go call
// boundary.
var ErrNotSuspendable = errors.New("cannot suspend here")

// coPoolSize bounds the finished threads kept for reuse per Lua state.
const coPoolSize = 16

// Co is a handler running as a coroutine of a VM: suspended between CallCo
// (or Resume) returning it and the next Resume. Its methods must be called
// on the VM's goroutine.
type Co struct {
	vm       *VM
	rt       *coRuntime
	th       *lua.LState // nil once finished
	yielding bool        // Yield was called and the thread has not run since
	ended    bool        // the handler ended at the suspending call (a tail call)
}

// coVM is the coroutine state of a VM.
type coVM struct {
	rt      *coRuntime // threads of the VM's current state
	running *Co        // the handler running now, if it runs as a coroutine
	frames  map[uintptr]uint8
}

// coRuntime holds the threads of one Lua state: a driver thread that resumes
// the others (so that the state itself may be closed by a reload while some
// of its threads are suspended) and a pool of finished threads.
type coRuntime struct {
	L    *lua.LState
	drv  *lua.LState
	free []*lua.LState
}

func (vm *VM) coRuntime() *coRuntime {
	if rt := vm.co.rt; rt != nil && rt.L == vm.L {
		return rt
	}
	vm.co.rt = &coRuntime{L: vm.L, drv: newThread(vm.L)}
	return vm.co.rt
}

// newThread makes a thread of L. Threads get a small registry and a call
// stack that grows on demand (Options.MinimizeStackMemory), instead of the
// main state's fixed sizes, so that a suspended handler costs kilobytes; the
// limits (maximum depth, maximum registry) stay those of the main state.
func newThread(L *lua.LState) *lua.LState {
	saved := L.Options
	L.Options.RegistrySize = 128
	L.Options.RegistryGrowStep = 128
	if L.Options.RegistryMaxSize < saved.RegistrySize {
		L.Options.RegistryMaxSize = saved.RegistrySize // may grow as far as the main state
	}
	L.Options.MinimizeStackMemory = true
	th, _ := L.NewThread() // the cancel func is the thread's: kill() calls it
	L.Options = saved
	return th
}

func (rt *coRuntime) get() *lua.LState {
	if n := len(rt.free); n > 0 {
		th := rt.free[n-1]
		rt.free[n-1] = nil
		rt.free = rt.free[:n-1]
		return th
	}
	return newThread(rt.L)
}

// put keeps a thread whose handler ended normally (its call stack is empty).
func (rt *coRuntime) put(th *lua.LState) {
	if len(rt.free) >= coPoolSize {
		return
	}
	th.Dead = false // set when its function returned; the thread is clean again
	th.SetTop(0)
	rt.free = append(rt.free, th)
}

// CallGlobalCo is CallCo of the global function name.
func (vm *VM) CallGlobalCo(name string, args ...lua.LValue) (*Co, error) {
	fn, ok := vm.L.GetGlobal(name).(*lua.LFunction)
	if !ok {
		return nil, ErrNoFunction
	}
	return vm.CallCo(fn, args...)
}

// CallCo runs fn(args...) as a coroutine, with the same contract as Call: a
// KSR.x.exit ends it normally, a Lua error, a Go panic in a binding or a
// budget overrun returns *Error. When the handler suspends itself (Yield),
// CallCo returns the suspended *Co, to be continued with Resume.
func (vm *VM) CallCo(fn *lua.LFunction, args ...lua.LValue) (*Co, error) {
	rt := vm.coRuntime()
	co := &Co{vm: vm, rt: rt, th: rt.get()}
	return vm.runCo(co, fn, args)
}

// Resume continues a suspended handler after the call that suspended it,
// which returns vals. It reports whether the handler suspended itself again;
// err is as for CallCo.
func (co *Co) Resume(vals ...lua.LValue) (suspended bool, err error) {
	if co.th == nil {
		return false, errors.New("luavm: resume of a finished coroutine")
	}
	if co.ended {
		co.ended, co.yielding = false, false
		co.rt.put(co.th)
		co.th = nil
		return false, nil
	}
	co.yielding = false
	c, err := co.vm.runCo(co, nil, vals)
	return c != nil, err
}

// VM returns the VM the coroutine belongs to (and must be resumed on).
func (co *Co) VM() *VM { return co.vm }

// Suspendable returns the running coroutine if the binding called through L
// may suspend it now: L must be the thread of the handler started by CallCo,
// and no Go call boundary (pcall, metamethod, iterator, ...) may lie between
// the handler and the binding. Otherwise the error wraps ErrNotSuspendable.
func (vm *VM) Suspendable(L *lua.LState) (*Co, error) {
	co := vm.co.running
	if co == nil {
		return nil, errors.Join(ErrNotSuspendable, errors.New("the handler does not run as a coroutine"))
	}
	if co.th != L {
		return nil, errors.Join(ErrNotSuspendable, errors.New("called from a coroutine the script created"))
	}
	if err := vm.yieldBoundary(); err != nil {
		return nil, err
	}
	return co, nil
}

// Yield suspends the handler: a binding returns its result right away
// (`return co.Yield(L)`). The handler continues when Resume is called.
func (co *Co) Yield(L *lua.LState) int {
	co.yielding = true
	return L.Yield()
}

// runCo resumes co's thread (starting fn on a fresh thread) on the VM's
// goroutine, with the budget of one event.
func (vm *VM) runCo(co *Co, fn *lua.LFunction, args []lua.LValue) (*Co, error) {
	th := co.th
	if vm.guard {
		th.SetContext(vm.ctx) // the VM's context changes after an overrun
		vm.started.Store(vm.stamp())
	}
	vm.depth++
	G := th.G
	cur := G.CurrentThread
	prev := vm.co.running
	vm.co.running = co
	st, err, _ := co.rt.drv.Resume(th, fn, args...)
	vm.co.running = prev
	G.CurrentThread = cur
	co.rt.drv.SetTop(0)
	vm.depth--
	stop := vm.endEvent(vm.L)
	if err != nil {
		co.th = nil // frames of the failed handler remain: not reusable
		e := vm.classify(err)
		if e == nil {
			vm.stopped = stopPoint{}
			return nil, nil // KSR.x.exit
		}
		vm.markStopped(e, stop)
		if e.Traceback == "" {
			e.Traceback = threadTraceback(th)
		}
		return nil, e
	}
	if stop == KindBudget {
		vm.stopped = stopPoint{} // the handler got past the budget without an error
	}
	switch {
	case st == lua.ResumeYield && !co.yielding:
		// coroutine.yield() called by the handler itself: nothing would ever
		// resume it. An error, as in a handler that does not run as a
		// coroutine; the thread still holds frames and is dropped.
		co.th = nil
		where := luaWhere(th, 0)
		return nil, &Error{Msg: where + ": can not yield from outside of a coroutine (coroutine.yield in an event handler)", Traceback: threadTraceback(th), Where: where}
	case st == lua.ResumeYield:
		return co, nil
	case co.yielding:
		// The suspending call was a tail call of the handler: gopher-lua
		// reports the end of the handler, but it must wait all the same.
		co.ended = true
		return co, nil
	}
	co.rt.put(th)
	co.th = nil
	return nil, nil
}

// threadTraceback formats the frames left on a thread after an error (the
// frame that raised it is gone; the message carries its position).
func threadTraceback(L *lua.LState) string {
	var b strings.Builder
	b.WriteString("stack traceback (coroutine):")
	writeFrames(&b, L, 0)
	return b.String()
}

// gopher-lua's interpreter functions, as the Go runtime names them.
const (
	glPkg       = "github.com/yuin/gopher-lua."
	glThreadRun = glPkg + "threadRun"
	glMainLoop  = glPkg + "mainLoop" // also matches mainLoopWithContext
)

// Kinds of Go frames for yieldBoundary.
const (
	frameUnknown uint8 = iota
	frameOther
	frameLoop   // an interpreter loop (mainLoop, mainLoopWithContext)
	frameThread // the start of a thread (threadRun)
)

// yieldBoundary checks that exactly one gopher-lua interpreter loop runs
// between the caller and the start of its thread (threadRun). Each pcall,
// metamethod, iterator or callback from Go code runs a nested loop, and a
// yield from inside one would return to that Go code as if the call had
// ended. Frame kinds are cached by program counter (owner goroutine only),
// so that a check costs one short stack walk.
func (vm *VM) yieldBoundary() error {
	var buf [64]uintptr
	skip, loops := 3, 0
	for _, size := range []int{16, 64} {
		pcs := buf[:size]
		n := runtime.Callers(skip, pcs)
		for _, pc := range pcs[:n] {
			switch vm.frameKind(pc) {
			case frameThread:
				if loops == 1 {
					return nil
				}
				return errors.Join(ErrNotSuspendable, errors.New("inside pcall, a metamethod, an iterator or another call from Go code"))
			case frameLoop:
				loops++
			}
		}
		if n < size {
			break
		}
		skip += n
	}
	return errors.Join(ErrNotSuspendable, errors.New("not in a coroutine, or the Go call stack is too deep"))
}

// frameKind classifies the physical Go frame of a return address.
func (vm *VM) frameKind(pc uintptr) uint8 {
	if k := vm.co.frames[pc]; k != frameUnknown {
		return k
	}
	// Expand inlined calls: the last frame is the physical function.
	var fn string
	frames := runtime.CallersFrames([]uintptr{pc})
	for {
		f, more := frames.Next()
		fn = f.Function
		if !more {
			break
		}
	}
	k := frameOther
	switch {
	case fn == glThreadRun:
		k = frameThread
	case strings.HasPrefix(fn, glMainLoop):
		k = frameLoop
	}
	if vm.co.frames == nil {
		vm.co.frames = make(map[uintptr]uint8)
	}
	vm.co.frames[pc] = k
	return k
}

// Mentions reports whether any function of the generation uses one of names
// as a string constant, e.g. a field name in KSR.async.sleep(...): the
// engine runs request handlers as coroutines only for scripts that may
// suspend them.
func (g *Generation) Mentions(names ...string) bool {
	for _, s := range g.Scripts {
		if protoMentions(s.Proto, names) {
			return true
		}
	}
	return false
}

func protoMentions(p *lua.FunctionProto, names []string) bool {
	for _, c := range p.Constants {
		if s, ok := c.(lua.LString); ok {
			for _, n := range names {
				if string(s) == n {
					return true
				}
			}
		}
	}
	for _, sub := range p.FunctionPrototypes {
		if protoMentions(sub, names) {
			return true
		}
	}
	return false
}
