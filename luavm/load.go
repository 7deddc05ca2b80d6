package luavm

import (
	"context"
	"fmt"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// LoadTimeoutError is a script whose top level did not finish within the
// load timeout (e.g. an endless loop outside any function). It was stopped
// on the goroutine that ran it: nothing keeps running.
type LoadTimeoutError struct {
	Path      string        // the script whose top level was running
	Timeout   time.Duration // the bound it overran
	Where     string        // "file:line" where it was stopped, if known
	Traceback string
}

func (e *LoadTimeoutError) Error() string {
	at := e.Path
	if e.Where != "" {
		at = "stopped at " + e.Where
	}
	return fmt.Sprintf("script top level did not finish within %s (%s)", e.Timeout, at)
}

// Prove instantiates g in a scratch state, runs its top-level chunks and
// calls check (if not nil) on the result, then discards the state. It is the
// validation step of a reload. The top level is stopped when ctx ends or
// after timeout (0: no bound), a *LoadTimeoutError; it runs on the calling
// goroutine, so nothing keeps running once Prove returns.
func Prove(ctx context.Context, g *Generation, timeout time.Duration, init func(L *lua.LState) error, check func(L *lua.LState) error) error {
	vm := &VM{name: "scratch", opts: Options{Init: init}}
	L, err := vm.instantiate(ctx, g, timeout)
	if err != nil {
		return err
	}
	defer L.Close()
	if check != nil {
		return check(L)
	}
	return nil
}

// topLimit bounds the top-level chunks of a fresh state: while it is on, the
// state runs under a context of its own (gopher-lua checks it before every
// instruction and raises an error once it is done), cancelled by a timer or
// by the caller's ctx. end puts the state's previous context back (none, or
// the budget's), so handlers later run as before. The limit's context is a
// child of the previous one and is never cancelled after end: coroutines the
// chunks created (they inherit it) stay usable, and under the budget as
// before.
type topLimit struct {
	L       *lua.LState
	prev    context.Context // the state's context before, nil for none
	timeout time.Duration
	on      bool
	timer   *time.Timer
	stopCtx func() bool
	// cancel is only called by the timer or the caller's ctx: after end the
	// context stays live for the coroutines the chunks created.
	cancel context.CancelFunc
}

func limitTopLevel(ctx context.Context, L *lua.LState, timeout time.Duration) *topLimit {
	lim := &topLimit{L: L, prev: L.Context(), timeout: timeout}
	if timeout <= 0 && ctx.Done() == nil {
		return lim
	}
	parent := lim.prev
	if parent == nil {
		parent = context.Background()
	}
	lctx, cancel := context.WithCancel(parent)
	lim.on, lim.cancel = true, cancel
	if timeout > 0 {
		lim.timer = time.AfterFunc(timeout, cancel)
	}
	if ctx.Done() != nil {
		lim.stopCtx = context.AfterFunc(ctx, cancel)
	}
	L.SetContext(lctx)
	return lim
}

// end takes the limit off. If it had fired, the chunk at path (whose error,
// if any, is e) was stopped, or finished just as the limit passed: end
// returns the error to report, a *LoadTimeoutError for the timeout.
func (l *topLimit) end(ctx context.Context, path string, e *Error) error {
	if !l.on {
		return nil
	}
	l.on = false
	if l.prev != nil {
		l.L.SetContext(l.prev)
	} else {
		l.L.RemoveContext()
	}
	timedOut := l.timer != nil && !l.timer.Stop()
	cancelled := l.stopCtx != nil && !l.stopCtx()
	var where, tb string
	if e != nil {
		where, tb = e.Where, e.Traceback
	}
	switch {
	case timedOut:
		return &LoadTimeoutError{Path: path, Timeout: l.timeout, Where: where, Traceback: tb}
	case cancelled:
		return fmt.Errorf("load %s: stopped: %w", path, ctx.Err())
	}
	return nil
}

// stopPoint is where the time budget stopped an event.
type stopPoint struct{ where, traceback string }

// budgetCtx is the context of a Lua state under a time budget. Once it is
// done, gopher-lua calls Err from the interpreter loop it stops, on the VM's
// goroutine, before any frame is unwound: Err records the stopped position
// and traceback there. (A handler running as a coroutine loses its innermost
// frame before Resume returns, so its error alone cannot tell.)
type budgetCtx struct {
	context.Context
	vm *VM
	L  *lua.LState // the main state; its G names the running thread
}

func (c *budgetCtx) Err() error {
	err := c.Context.Err()
	if err != nil && c.vm.stopped.where == "" {
		th := c.L.G.CurrentThread
		if th == nil {
			th = c.L
		}
		var b strings.Builder
		b.WriteString("stack traceback:")
		writeFrames(&b, th, 0)
		c.vm.stopped = stopPoint{where: luaWhere(th, 0), traceback: b.String()}
	}
	return err
}

// luaWhere returns "file:line" of the innermost Lua function on L's stack
// from level from, or "".
func luaWhere(L *lua.LState, from int) string {
	for level := from; level < 40; level++ {
		dbg, ok := L.GetStack(level)
		if !ok {
			return ""
		}
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err != nil {
			return ""
		}
		if dbg.Source != "" && dbg.What != "G" && dbg.CurrentLine > 0 {
			return fmt.Sprintf("%s:%d", dbg.Source, dbg.CurrentLine)
		}
	}
	return ""
}
