// Package async is Kamailio's async module in kemi, with kemi's
// KSR.async.sleep: a request handler suspends its request and it is
// resumed later, or now on another group, without holding a worker while
// it waits (docs/async.md).
//
// The home holds the settings and modparam parser (this file), the
// exports (ksr.go: KSR.async.*), and the runtime (suspend.go: the deadline
// heap, its timer goroutine, the resumes as typed tasks, and the module's
// own worker group made with ksr.Host.NewGroup).
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
// Concurrency: a Module is configured and provisioned by one goroutine.
// Its exports run on every worker at once; the deadline heap, the
// handover gates and the counters are safe for that. A resume never runs
// while the handler that suspended the request is still running (the
// script goes on after KSR.async.route until it returns, as in KEMI): each
// resume waits for two events, its deadline and the release by the
// suspending worker (ksr.Suspender), so one message is never used by two
// goroutines at once.
package async

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/luavm"
	"kemi/modules/tm"
	"kemi/timers"
)

// Settings are the async module's parameters.
type Settings struct {
	Workers int // default 1
	MSTimer int
	Return  int
}

// Module is one configuration's async.
type Module struct {
	set  Settings
	host ksr.Host  // nil while not loaded
	grp  ksr.Group // modparam("async", "workers", N); nil for N=0

	inv100    func() string // tm's auto_inv_100_reason (SetInv100Reason)
	deadlines *timers.Deadlines[*resume]
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	started   bool
	drained   atomic.Bool // shutting down: no new suspension
	holding   sync.Map    // *ksr.Msg -> *resume, until the suspending handler returns
	yields    atomic.Pointer[genYields]

	mu      sync.Mutex
	waiting int // suspended requests not yet handed to a worker
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
	_ ksr.Suspender   = (*Module)(nil)
	_ ksr.Idler       = (*Module)(nil)
	_ ksr.Drainer     = (*Module)(nil)
)

// New returns an unconfigured async module: one worker, as in Kamailio.
func New() *Module {
	return &Module{set: Settings{Workers: 1}, deadlines: timers.NewDeadlines[*resume]()}
}

// SetInv100Reason is the engine's hook to the tm module: reason returns
// tm's auto_inv_100_reason, the reason phrase of the 100 sent when an
// INVITE is suspended (Kamailio's t_suspend sends tm's). Without it the
// 100 carries tm's default.
func (m *Module) SetInv100Reason(reason func() string) { m.inv100 = reason }

// inv100Reason is the reason phrase of the 100 to a suspended INVITE.
func (m *Module) inv100Reason() string {
	if m.inv100 == nil {
		return tm.DefaultInv100Reason
	}
	return m.inv100()
}

// Settings returns the module's parameters as read from the configuration.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "async",
		Doc:  "suspend a request and resume it later or on another worker group; sleep inside a handler",
		Params: []ksr.Param{
			{Name: "workers", Set: m.paramWorkers},
			{Name: "ms_timer", Set: m.paramMSTimer},
			{Name: "return", Set: m.paramReturn},
			{Name: "mode", Set: m.paramMode},
		},
		Exports: m.exports(),
		// Not AfterWorkers: the async workers stop after the receivers,
		// whose handlers may still release suspended requests.
	}
}

func (m *Module) paramWorkers(_ *ksr.Setup, st config.Stmt) (err error) {
	m.set.Workers, err = config.IntParam(st, "async", 0, 1024)
	return err
}

func (m *Module) paramMSTimer(_ *ksr.Setup, st config.Stmt) (err error) {
	m.set.MSTimer, err = config.IntParam(st, "async", 0, 1000)
	return err
}

func (m *Module) paramReturn(_ *ksr.Setup, st config.Stmt) (err error) {
	m.set.Return, err = config.IntParam(st, "async", -1<<31, 1<<31-1)
	return err
}

func (m *Module) paramMode(c *ksr.Setup, st config.Stmt) error {
	c.Notice(st.Pos, "modparam async mode ignored")
	return nil
}

// Provision makes the module's worker group "async" (none for workers=0).
// KSR.async.get_gname() is "async" there (Kamailio's ASYNC MOD TIMER
// processes give ""; docs/async.md lists the difference).
func (m *Module) Provision(h ksr.Host) error {
	m.host = h
	if n := m.set.Workers; n > 0 {
		g, err := h.NewGroup("async", n)
		if err != nil {
			return err
		}
		m.grp = g
	}
	if m.set.MSTimer > 0 {
		h.Logger().Info("modparam async ms_timer has no effect in kemi: every resume is scheduled to the millisecond")
	}
	return nil
}

// Start starts the async workers and the timer goroutine that resumes each
// suspended request at its deadline, to the millisecond (Kamailio 5.6 uses
// a one-second ring: 0.2-2 s for a 1 s route; docs/bench/async.md).
func (m *Module) Start(ctx context.Context) error {
	if m.grp != nil {
		if err := m.grp.Start(ctx); err != nil {
			return err
		}
	}
	ctx, m.cancel = context.WithCancel(ctx)
	m.started = true
	clock := m.host.Clock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.deadlines.Run(ctx, clock, m.arm)
	}()
	return nil
}

// Drain ends the waiting at shutdown, before the SIP listeners close: the
// timer stops, later suspensions are refused, and every request still
// suspended is answered 503 (it will not be resumed).
func (m *Module) Drain(context.Context) error {
	if m.drained.Swap(true) || !m.started {
		return nil
	}
	m.cancel()
	m.wg.Wait()
	for _, r := range m.deadlines.PopDue(time.Unix(1<<40, 0), nil) {
		r.shut.Store(true)
		m.arm(r) // answered now, or when its handler returns
	}
	return nil
}

// Stop drains (if the engine did not already), then lets the async workers
// finish.
func (m *Module) Stop(ctx context.Context) error {
	m.Drain(ctx)
	if m.grp != nil {
		return m.grp.Stop(ctx)
	}
	return nil
}

// Suspended returns how many requests wait for their resume (kemi.status,
// kemi test).
func (m *Module) Suspended() int { return m.deadlines.Len() }

// Idle is kemi test's hook (ksr.Idler): the suspended requests not yet
// handed to a worker are held; the timer goroutine waits on the earliest
// deadline, which must be after now (appended to deadlines).
func (m *Module) Idle(now time.Time, deadlines []time.Time) (held int, _ []time.Time, busy string) {
	m.mu.Lock()
	held = m.waiting
	m.mu.Unlock()
	scheduled := m.deadlines.Len()
	next, _ := m.deadlines.Next()
	switch {
	case held != scheduled:
		busy = "async resumes being handed to the async workers"
	case scheduled > 0 && !next.After(now):
		busy = "an async resume is due"
	case scheduled > 0:
		deadlines = append(deadlines, next)
	}
	return held, deadlines, busy
}

// genYields caches, per script generation, whether its request handler may
// suspend itself (the script mentions KSR.async.sleep or ms_sleep).
type genYields struct {
	gen    *luavm.Generation
	yields bool
}

// Yields reports whether request handlers of r's script generation run as
// coroutines (ksr.Suspender): only when the script mentions
// KSR.async.sleep or ms_sleep (a coroutine costs little for a handler that
// returns, but a thread dropped after KSR.x.exit costs ~7 µs and 12 KB).
func (m *Module) Yields(r ksr.Runner) bool {
	g := r.VM().Generation()
	if c := m.yields.Load(); c != nil && c.gen == g {
		return c.yields
	}
	c := &genYields{gen: g, yields: g.Mentions("sleep", "ms_sleep")}
	m.yields.Store(c)
	return c.yields
}

// Released is called once the handler that may have suspended msg has
// returned (ksr.Suspender): a resume waiting for it may go.
func (m *Module) Released(msg *ksr.Msg) {
	if v, ok := m.holding.LoadAndDelete(msg); ok {
		m.arm(v.(*resume))
	}
}
