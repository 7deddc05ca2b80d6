package luavm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// ExitSentinel is the error value KSR.x.exit raises; the call path treats an
// error carrying it as a normal end of the callback (Kamailio's app_lua does
// the same, so a user pcall swallows it there too).
const ExitSentinel = "~~ksr~exit~~"

// ErrNoFunction is returned by CallGlobal when the global is not a function.
var ErrNoFunction = errors.New("no such lua function")

// Exit ends the running callback normally (KSR.x.exit).
func Exit(L *lua.LState) int {
	L.Error(lua.LString(ExitSentinel), 0)
	return 0
}

// Current holds the generation every VM should run. Store publishes a new
// one; VMs switch in Sync, before their next event.
type Current struct{ p atomic.Pointer[Generation] }

// Load returns the published generation.
func (c *Current) Load() *Generation { return c.p.Load() }

// Store publishes g.
func (c *Current) Store(g *Generation) { c.p.Store(g) }

// Options configures a VM.
type Options struct {
	// Name identifies the VM in logs and status output, e.g. "receiver/0".
	Name string
	// Init runs on every fresh Lua state before the scripts (it registers
	// KSR). It may be nil.
	Init func(L *lua.LState) error
	// Budget bounds one event's run time; 0 disables the bound. It is only
	// enforced when Watchdog is set.
	Budget   time.Duration
	Watchdog *Watchdog
	// LoadTimeout bounds the top level of the scripts each time the VM
	// starts or switches to a new generation (New, Sync); 0 disables the
	// bound. An overrun is a *LoadTimeoutError.
	LoadTimeout time.Duration
	// MaxMem bounds how much one event may grow the Go heap, in bytes, and
	// the size of one string.rep, string.format or table.concat result; 0
	// disables the bound. The heap growth is only enforced when
	// MemWatchdog is set (membudget.go).
	MaxMem      int64
	MemWatchdog *MemWatchdog
	// MaxAlloc bounds one string.rep, string.format or table.concat result
	// when MaxMem does not (or is larger); 0: only MaxMem. Unlike the heap
	// watchdog it costs nothing per instruction.
	MaxAlloc int64
}

// ErrorKind says why a call failed.
type ErrorKind int

const (
	KindRuntime ErrorKind = iota // a Lua error or a Go panic in a binding
	KindBudget                   // stopped by the per-event time budget
	KindMemory                   // stopped by the per-event memory budget; the state was dropped
)

// Error is a failed call: the Lua message and its traceback.
type Error struct {
	Kind      ErrorKind
	Msg       string
	Traceback string
	// Where is the position ("file:line") of the innermost Lua function
	// running when the error was raised or the budget stopped it; it may be
	// empty.
	Where string
}

func (e *Error) Error() string {
	switch e.Kind {
	case KindBudget:
		if e.Where != "" {
			return "lua: event stopped after exceeding its time budget, at " + e.Where
		}
		return "lua: event stopped after exceeding its time budget: " + e.Msg
	case KindMemory:
		return "lua: event stopped after exceeding its memory budget: " + e.Msg
	}
	return "lua: " + e.Msg
}

// VM is one Lua state owned by one goroutine.
type VM struct {
	L       *lua.LState
	name    string
	cur     *Current
	gen     *Generation
	version atomic.Int64
	opts    Options
	errfn   *lua.LFunction
	co      coVM // handlers running as coroutines (coroutine.go)

	// budget enforcement: started marks the running event (its start in
	// unix ns with a time budget, else a sequence number), 0 when idle, -1
	// once the time watchdog cancelled the event, -2 (stoppedByMemory) once
	// the memory watchdog did.
	guard   bool  // a watchdog may cancel events: started is kept, a context set
	seq     int64 // last event number without a time budget
	depth   int   // calls running on the state (owner goroutine)
	dirty   bool  // the state must be dropped at the next Sync
	memGrew atomic.Int64
	started atomic.Int64
	mu      sync.Mutex // guards ctx/cancel swaps against the watchdog
	ctx     context.Context
	cancel  context.CancelFunc
	stopped stopPoint // where the budget stopped the running event (owner goroutine)
}

// New builds a VM running cur's generation.
func New(cur *Current, opts Options) (*VM, error) {
	g := cur.Load()
	if g == nil {
		return nil, errors.New("luavm: no script generation published")
	}
	vm := &VM{name: opts.Name, cur: cur, opts: opts}
	vm.guard = opts.Budget > 0 && opts.Watchdog != nil || opts.MaxMem > 0 && opts.MemWatchdog != nil
	L, err := vm.instantiate(context.Background(), g, opts.LoadTimeout)
	if err != nil {
		return nil, err
	}
	vm.L, vm.gen = L, g
	vm.version.Store(g.Version)
	if opts.Watchdog != nil && opts.Budget > 0 {
		opts.Watchdog.add(vm)
	}
	if opts.MemWatchdog != nil && opts.MaxMem > 0 {
		opts.MemWatchdog.add(vm)
	}
	return vm, nil
}

// Name returns the VM's name.
func (vm *VM) Name() string { return vm.name }

// Version returns the generation version the VM runs; safe from any goroutine.
func (vm *VM) Version() int64 { return vm.version.Load() }

// Generation returns the generation the VM runs (owner goroutine only).
func (vm *VM) Generation() *Generation { return vm.gen }

// Sync switches the VM to the published generation if it changed. On error
// the VM keeps its old state. It returns true when it switched.
func (vm *VM) Sync() (bool, error) {
	g := vm.cur.Load()
	if g == vm.gen {
		if vm.dirty {
			vm.dropState()
		}
		return false, nil
	}
	L, err := vm.instantiate(context.Background(), g, vm.opts.LoadTimeout)
	if err != nil {
		// Keep running the old code; do not retry this generation.
		vm.gen = g
		return false, err
	}
	old := vm.L
	vm.L, vm.gen, vm.dirty = L, g, false
	vm.version.Store(g.Version)
	old.Close()
	return true, nil
}

// instantiate makes a fresh Lua state running g's top-level chunks, which
// are stopped when ctx ends or after timeout (0: no bound).
func (vm *VM) instantiate(ctx context.Context, g *Generation, timeout time.Duration) (*lua.LState, error) {
	L := lua.NewState(lua.Options{
		CallStackSize:    256,
		RegistrySize:     1024,
		RegistryMaxSize:  1024 * 256,
		RegistryGrowStep: 1024,
	})
	guardOS(L)
	if limit := vm.allocLimit(); limit > 0 {
		guardMem(L, limit)
	}
	vm.errfn = L.NewFunction(traceback)
	if vm.opts.Init != nil {
		if err := vm.opts.Init(L); err != nil {
			L.Close()
			return nil, err
		}
	}
	if g.cover != nil {
		L.SetGlobal(CoverGlobal, L.NewFunction(g.cover.hit))
	}
	if g.prepare != nil {
		if err := g.prepare(L); err != nil {
			L.Close()
			return nil, err
		}
	}
	internKeys(L, g.constants()) // after Init and Prepare built KSR
	vm.setContext(L)             // the budget's context, if any, before the chunks: coroutines they make inherit it
	lim := limitTopLevel(ctx, L, timeout)
	last := ""
	for _, s := range g.Scripts {
		last = s.Path
		L.Push(L.NewFunctionFromProto(s.Proto))
		err := L.PCall(0, 0, vm.errfn)
		L.SetTop(0)
		if err == nil {
			continue
		}
		e := vm.classify(err)
		if e == nil {
			continue // KSR.x.exit at top level ends that chunk only
		}
		if stop := lim.end(ctx, s.Path, e); stop != nil {
			L.Close()
			return nil, stop
		}
		L.Close()
		return nil, fmt.Errorf("load %s: %w", s.Path, e)
	}
	if stop := lim.end(ctx, last, nil); stop != nil {
		L.Close()
		return nil, stop
	}
	return L, nil
}

// allocLimit is the largest single result the guarded library functions
// build: the smaller of MaxMem and MaxAlloc that is set.
func (vm *VM) allocLimit() int64 {
	limit := vm.opts.MaxAlloc
	if m := vm.opts.MaxMem; m > 0 && (limit == 0 || m < limit) {
		limit = m
	}
	return limit
}

func (vm *VM) setContext(L *lua.LState) {
	if !vm.guard {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	vm.mu.Lock()
	vm.ctx, vm.cancel = &budgetCtx{Context: ctx, vm: vm, L: L}, cancel
	vm.mu.Unlock()
	L.SetContext(vm.ctx)
}

// guardOS replaces os.exit, which would end the whole engine, with an error.
func guardOS(L *lua.LState) {
	if os, ok := L.GetGlobal("os").(*lua.LTable); ok {
		os.RawSetString("exit", L.NewFunction(func(L *lua.LState) int {
			L.RaiseError("os.exit is disabled in kemi (it would stop the whole engine)")
			return 0
		}))
	}
}

// HasFunction reports whether the global name is a Lua function.
func (vm *VM) HasFunction(name string) bool {
	_, ok := vm.L.GetGlobal(name).(*lua.LFunction)
	return ok
}

// CallGlobal calls the global function name with args.
func (vm *VM) CallGlobal(name string, args ...lua.LValue) error {
	fn, ok := vm.L.GetGlobal(name).(*lua.LFunction)
	if !ok {
		return ErrNoFunction
	}
	return vm.Call(fn, args...)
}

// Call runs fn(args...) protected. A KSR.x.exit ends it normally (nil). A
// Lua error, a Go panic in a binding, or a budget overrun returns *Error;
// after a memory budget overrun the VM runs on a fresh Lua state. The Lua
// stack is empty afterwards.
func (vm *VM) Call(fn lua.LValue, args ...lua.LValue) error {
	L := vm.L
	if vm.guard {
		vm.started.Store(vm.stamp())
	}
	vm.depth++
	L.Push(fn)
	for _, a := range args {
		L.Push(a)
	}
	err := L.PCall(len(args), 0, vm.errfn)
	L.SetTop(0)
	vm.depth--
	stop := vm.endEvent(L)
	var e *Error
	if err != nil {
		e = vm.classify(err)
	}
	if e == nil {
		if stop == KindBudget {
			vm.stopped = stopPoint{} // the event ended just as the budget passed
		}
		return nil
	}
	vm.markStopped(e, stop)
	return e
}

// budgetStop marks e as stopped by the budget, at the position recorded
// when the budget stopped the Lua code (budgetCtx).
func (vm *VM) budgetStop(e *Error) {
	e.Kind = KindBudget
	if p := vm.stopped; p.where != "" {
		e.Where, e.Traceback = p.where, p.traceback
	}
	vm.stopped = stopPoint{}
}

// stamp marks the start of an event in vm.started: its time when a time
// budget applies, else the next sequence number.
func (vm *VM) stamp() int64 {
	if vm.opts.Budget > 0 && vm.opts.Watchdog != nil {
		return time.Now().UnixNano()
	}
	vm.seq++
	return vm.seq
}

// endEvent clears the event marker and returns the error kind a watchdog
// stopped the event with (KindRuntime if none). After a stop, L gets a
// fresh context (waiting for the watchdog's cancel to finish).
func (vm *VM) endEvent(L *lua.LState) ErrorKind {
	if !vm.guard {
		return KindRuntime
	}
	switch vm.started.Swap(0) {
	case -1:
		vm.setContext(L)
		return KindBudget
	case stoppedByMemory:
		vm.setContext(L)
		return KindMemory
	}
	return KindRuntime
}

// markStopped marks e with the watchdog's reason: a time budget stop at the
// position recorded (budgetStop); a memory stop drops the state.
func (vm *VM) markStopped(e *Error, kind ErrorKind) {
	switch kind {
	case KindBudget:
		vm.budgetStop(e)
	case KindMemory:
		vm.memoryStopped(e)
	}
}

// classify turns a PCall error into nil (exit sentinel) or *Error.
func (vm *VM) classify(err error) *Error {
	var ae *lua.ApiError
	if !errors.As(err, &ae) {
		return &Error{Msg: err.Error()}
	}
	switch o := ae.Object.(type) {
	case lua.LString:
		if strings.Contains(string(o), ExitSentinel) {
			return nil
		}
		return &Error{Msg: string(o), Traceback: ae.StackTrace}
	case *lua.LUserData:
		if e, ok := o.Value.(*Error); ok {
			if strings.Contains(e.Msg, ExitSentinel) {
				return nil
			}
			return e
		}
	}
	return &Error{Msg: ae.Object.String(), Traceback: ae.StackTrace}
}

// traceback is the message handler of every protected call: the exit
// sentinel passes through untouched (no traceback is built for it), any
// other error becomes an *Error with its Lua traceback.
func traceback(L *lua.LState) int {
	v := L.Get(1)
	if s, ok := v.(lua.LString); ok && string(s) == ExitSentinel {
		L.Push(v)
		return 1
	}
	var msg string
	switch x := v.(type) {
	case lua.LString:
		msg = string(x)
	case *lua.LUserData:
		if _, ok := x.Value.(*Error); ok {
			L.Push(v)
			return 1
		}
		msg = x.String()
	default:
		msg = v.String()
	}
	var b strings.Builder
	b.WriteString("stack traceback:")
	writeFrames(&b, L, 1) // level 0 is this handler
	ud := L.NewUserData()
	ud.Value = &Error{Msg: msg, Traceback: b.String(), Where: luaWhere(L, 1)}
	L.Push(ud)
	return 1
}

// writeFrames appends L's stack frames from level from up to level 39,
// one per line, in Lua's traceback format.
func writeFrames(b *strings.Builder, L *lua.LState, from int) {
	for level := from; level < 40; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			break
		}
		if _, err := L.GetInfo("Sln", dbg, lua.LNil); err != nil {
			break
		}
		b.WriteString("\n\t")
		if dbg.Source == "" || dbg.What == "G" {
			b.WriteString("[G]: in function ")
		} else {
			fmt.Fprintf(b, "%s:%d: in ", dbg.Source, dbg.CurrentLine)
			if dbg.LineDefined == 0 {
				b.WriteString("main chunk")
				continue
			}
			b.WriteString("function ")
		}
		// gopher-lua names the function a thread started with "corountine".
		if dbg.Name != "" && dbg.Name != "main chunk" && dbg.Name != "corountine" {
			fmt.Fprintf(b, "'%s'", dbg.Name)
		} else {
			fmt.Fprintf(b, "<%s:%d>", dbg.Source, dbg.LineDefined)
		}
	}
}

// Close releases the Lua state.
func (vm *VM) Close() {
	if vm.opts.Watchdog != nil {
		vm.opts.Watchdog.remove(vm)
	}
	if vm.opts.MemWatchdog != nil {
		vm.opts.MemWatchdog.remove(vm)
	}
	if vm.L != nil {
		vm.L.Close()
	}
}
