package rtimer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/timers"
)

// timerRun runs the timers (kamailio-reference.md §4):
//
//   - mode=0 timers share one goroutine and one VM, "rtimer/main" (Kamailio's
//     shared timer process), so a Lua global set by one of them is seen by
//     the others;
//   - a mode=N timer gets N goroutines "rtimer/<name>/<k>", each with its own
//     VM, each running the timer's whole exec list every interval (N
//     parallel runs per interval, as Kamailio's N processes: not a pool).
//     $rtimer_worker is k there, 0 for mode 0.
//
// Each exec route is called as fn("rtimer") on a faked request, as
// Kamailio's KEMI does. A timer's exec routes run in REVERSE definition
// order: Kamailio prepends each exec to the timer's list
// (rtimer_mod.c stm_e_param), and kemi keeps that order so that the same
// script behaves the same (docs/rtimer.md).
//
// Unlike Kamailio, which sleeps `interval` after each run and so drifts by
// the run time, ticks fall on absolute deadlines start+k*interval
// (timers.Schedule); a run that overruns its interval skips the ticks it
// covered (counted, and logged at most once a second) instead of queueing
// them, and runs of one goroutine never overlap. A Lua error is logged with
// its traceback and counted; the timer keeps firing.
//
// With the real clock on Linux, waits use a timerfd in Go's netpoller
// (wait_linux.go), precise to tens of microseconds; otherwise, and always
// with a virtual clock (tests, kemi test), they use the engine's
// timers.Clock, whose real timers fire up to 1 ms late on an idle process.
//
// A cluster=one timer (cluster.go) tries its lease before each tick and
// lets the tick pass, counted as standby, when another node holds it.
type timerRun struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	timers []*timer // in definition order; read-only once Start returned
}

// timer is one configured timer and its run-time counters.
type timer struct {
	spec    *TimerSpec
	fns     []string           // run order: reverse definition order
	scheds  []*timers.Schedule // one per goroutine running the timer
	errors  atomic.Uint64      // exec routes that ended in an error
	lease   Lease              // cluster=one: the timer's lease; nil otherwise
	standby atomic.Uint64      // ticks let pass: another node held the lease
}

// job is one timer goroutine: its VM and the timers it runs, with one
// schedule each (sched[i] drives timers[i]).
type job struct {
	r      ksr.Runner
	name   string
	timers []*timer
	scheds []*timers.Schedule
}

// Stat holds the counters of one rtimer timer.
type Stat struct {
	Name     string        `json:"name"`
	Mode     int           `json:"mode"`
	Interval time.Duration `json:"interval_ns"`
	// Cluster is true for a cluster=one timer.
	Cluster bool `json:"cluster,omitempty"`
	// Ticks counts runs of the exec list, summed over the timer's
	// goroutines (a mode=3 timer adds 3 per interval).
	Ticks uint64 `json:"ticks"`
	// Standby counts the ticks of a cluster=one timer that this node let
	// pass because another node held the lease, summed over the goroutines.
	Standby uint64 `json:"standby,omitempty"`
	// Skipped counts ticks not run because a run overran its interval or
	// the goroutine woke late, summed over the goroutines.
	Skipped uint64 `json:"skipped"`
	// Errors counts exec route calls that ended in a Lua error.
	Errors uint64 `json:"errors"`
}

// argRtimer is the exec routes' argument, boxed once.
var argRtimer lua.LValue = lua.LString("rtimer")

// runOrder returns the timer's functions in Kamailio's run order: the exec
// list is prepended to, so the last defined runs first.
func runOrder(t *TimerSpec) []string {
	out := make([]string, len(t.Execs))
	for i, x := range t.Execs {
		out[len(out)-1-i] = x
	}
	return out
}

// Start makes the timer goroutines and their VMs; the first tick of each
// timer is one interval after now.
func (m *Module) Start(ctx context.Context) error {
	if len(m.set.Timers) == 0 {
		return nil
	}
	r, h := &m.run, m.host
	ctx, r.cancel = context.WithCancel(ctx)
	start := h.Clock().Now()
	var jobs []*job
	var shared *job
	fail := func(err error) error {
		for _, j := range jobs {
			j.r.Close()
		}
		r.cancel()
		return err
	}
	r.timers = nil
	for _, spec := range m.set.Timers {
		t := &timer{spec: spec, fns: runOrder(spec)}
		r.timers = append(r.timers, t)
		if spec.Cluster {
			if m.cluster == nil {
				return fail(fmt.Errorf("rtimer timer %q: cluster=one without a cluster connection", spec.Name))
			}
			l, err := m.cluster.Lease(LeaseName(spec.Name), LeaseTTL(spec.Interval))
			if err != nil {
				return fail(fmt.Errorf("rtimer timer %q: cluster lease: %w", spec.Name, err))
			}
			t.lease = l
		}
		if spec.Mode == 0 {
			if shared == nil {
				w, err := h.NewRunner("rtimer/main", "rtimer", 0)
				if err != nil {
					return fail(err)
				}
				shared = &job{r: w, name: "rtimer/main"}
				jobs = append(jobs, shared)
			}
			s := timers.NewSchedule(start, spec.Interval)
			t.scheds = append(t.scheds, s)
			shared.timers = append(shared.timers, t)
			shared.scheds = append(shared.scheds, s)
			continue
		}
		for k := 0; k < spec.Mode; k++ {
			name := fmt.Sprintf("rtimer/%s/%d", spec.Name, k)
			w, err := h.NewRunner(name, "rtimer:"+spec.Name, k)
			if err != nil {
				return fail(err)
			}
			s := timers.NewSchedule(start, spec.Interval)
			t.scheds = append(t.scheds, s)
			jobs = append(jobs, &job{r: w, name: name, timers: []*timer{t}, scheds: []*timers.Schedule{s}})
		}
	}
	for _, j := range jobs {
		r.wg.Add(1)
		go m.loop(ctx, j)
	}
	return nil
}

// loop is the body of one timer goroutine: wait for the earliest due tick
// among its schedules, run that timer's exec list, repeat until ctx is done.
func (m *Module) loop(ctx context.Context, j *job) {
	defer m.run.wg.Done()
	defer j.r.Close()
	clock := m.host.Clock()
	wt := m.newWaiter(ctx, j.name)
	defer func() { wt.close() }()
	pending := make([]int, len(j.scheds)) // skipped by Advance, reported with the next tick
	for ctx.Err() == nil {
		i := 0
		for k := 1; k < len(j.scheds); k++ {
			if j.scheds[k].Next().Before(j.scheds[i].Next()) {
				i = k
			}
		}
		s := j.scheds[i]
		ok, err := wt.wait(ctx, s.Next())
		if err != nil {
			m.host.Logger().Warn("rtimer: precise timer failed, falling back to the runtime's timers", "worker", j.name, "error", err)
			wt.close()
			wt = &clockWaiter{c: clock}
			continue
		}
		if !ok {
			return
		}
		now := clock.Now()
		if now.Before(s.Next()) {
			continue // woke early: wait for the rest
		}
		skipped := pending[i] + s.CatchUp(now)
		if t := j.timers[i]; m.leader(ctx, j, t) {
			m.tick(j, t, s.Next(), skipped)
		}
		pending[i] = s.Advance(clock.Now())
	}
}

// newWaiter returns the precise waiter when the engine runs on the real
// clock and the platform has one, else a waiter on the engine's clock.
func (m *Module) newWaiter(ctx context.Context, name string) waiter {
	if m.host.Precise() {
		w, err := newPreciseWaiter(ctx)
		if err == nil && w != nil {
			return w
		}
		if err != nil {
			m.host.Logger().Warn("rtimer: no precise timer, using the runtime's timers", "worker", name, "error", err)
		}
	}
	return &clockWaiter{c: m.host.Clock()}
}

// tick runs one timer's exec list on j's runner for the tick due at at.
func (m *Module) tick(j *job, t *timer, at time.Time, skipped int) {
	if skipped > 0 { // rate-limited per timer by the engine's logger
		m.host.Logger().Warn("rtimer: a run overran its interval or started late: ticks skipped", "timer", t.spec.Name, "worker", j.name, "skipped", skipped)
	}
	m.host.Hold(1)
	defer m.host.Hold(-1)
	env := j.r.Env()
	for _, fn := range t.fns {
		msg := env.Faked(ksr.RouteEvent)
		msg.Time = at
		if err := j.r.Call(msg, fn, argRtimer); err != nil {
			t.errors.Add(1)
		}
	}
}

// Stop ends the timer goroutines, waiting for a running tick to finish,
// then releases the leases of the cluster=one timers.
func (m *Module) Stop(ctx context.Context) error {
	if m.run.cancel == nil {
		return nil
	}
	m.run.cancel()
	done := make(chan struct{})
	go func() { m.run.wg.Wait(); close(done) }()
	select {
	case <-done:
		m.releaseLeases(context.WithoutCancel(ctx))
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the counters of every timer, in definition order (none
// before Start or without timers).
func (m *Module) Stats() []Stat {
	out := make([]Stat, 0, len(m.run.timers))
	for _, t := range m.run.timers {
		st := Stat{Name: t.spec.Name, Mode: t.spec.Mode, Interval: t.spec.Interval, Cluster: t.spec.Cluster,
			Errors: t.errors.Load(), Standby: t.standby.Load()}
		for _, s := range t.scheds {
			st.Ticks += s.Ticks()
			st.Skipped += s.Skipped()
		}
		st.Ticks -= min(st.Standby, st.Ticks) // the schedules count the ticks let pass too
		out = append(out, st)
	}
	return out
}

// Counters adds the rtimer totals to c: rtimer_ticks, rtimer_skipped and
// rtimer_errors, and rtimer_standby when a timer is cluster=one. It adds
// nothing when the module has no timer.
func (m *Module) Counters(c map[string]int64) {
	if len(m.run.timers) == 0 {
		return
	}
	var ticks, skipped, errs, standby uint64
	cluster := false
	for _, st := range m.Stats() {
		ticks += st.Ticks
		skipped += st.Skipped
		errs += st.Errors
		standby += st.Standby
		cluster = cluster || st.Cluster
	}
	c["rtimer_ticks"] = int64(ticks)
	c["rtimer_skipped"] = int64(skipped)
	c["rtimer_errors"] = int64(errs)
	if cluster {
		c["rtimer_standby"] = int64(standby)
	}
}

// Idle is kemi test's hook (ksr.Idler): with the clock stopped at now,
// every timer goroutine waits on its earliest next tick, one interval
// step strictly after now (appended to deadlines). rtimer holds no work
// between ticks.
func (m *Module) Idle(now time.Time, deadlines []time.Time) (held int, _ []time.Time, busy string) {
	var shared time.Time
	for _, t := range m.run.timers {
		for _, sc := range t.scheds {
			next := NextTick(sc.Start(), sc.Interval(), now)
			if t.spec.Mode != 0 {
				deadlines = append(deadlines, next)
			} else if shared.IsZero() || next.Before(shared) {
				shared = next
			}
		}
	}
	if !shared.IsZero() {
		deadlines = append(deadlines, shared)
	}
	return 0, deadlines, ""
}

// NextTick is the first tick start+k*iv (k >= 1) strictly after now.
func NextTick(start time.Time, iv time.Duration, now time.Time) time.Time {
	if now.Before(start) {
		return start.Add(iv)
	}
	k := now.Sub(start)/iv + 1
	return start.Add(k * iv)
}
