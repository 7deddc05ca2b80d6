package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"kemi/ksr"
	"kemi/timers"
)

// rtimerSystem runs the rtimer module's timers (kamailio-reference.md §4):
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
// (rtimer_linux.go), precise to tens of microseconds; otherwise, and always
// with a virtual clock (tests, kemi test), they use the engine's
// timers.Clock, whose real timers fire up to 1 ms late on an idle process.
type rtimerSystem struct {
	e      *Engine
	wg     sync.WaitGroup
	cancel context.CancelFunc
	timers []*rtimerTimer // in definition order; read-only once Start returned
}

// rtimerTimer is one configured timer and its run-time counters.
type rtimerTimer struct {
	spec   *TimerSpec
	fns    []string           // run order: reverse definition order
	scheds []*timers.Schedule // one per goroutine running the timer
	errors atomic.Uint64      // exec routes that ended in an error
}

// rtimerJob is one timer goroutine: its VM and the timers it runs, with
// one schedule each (sched[i] drives timers[i]).
type rtimerJob struct {
	w      *worker
	timers []*rtimerTimer
	scheds []*timers.Schedule
}

// waiter blocks the calling goroutine until a deadline of the engine's
// clock. wait returns false when ctx is done first; an error means the
// waiter is broken and the caller should fall back to another one.
type waiter interface {
	wait(ctx context.Context, deadline time.Time) (bool, error)
	close()
}

// RtimerStat holds the counters of one rtimer timer.
type RtimerStat struct {
	Name     string        `json:"name"`
	Mode     int           `json:"mode"`
	Interval time.Duration `json:"interval_ns"`
	// Ticks counts runs of the exec list, summed over the timer's
	// goroutines (a mode=3 timer adds 3 per interval).
	Ticks uint64 `json:"ticks"`
	// Skipped counts ticks not run because a run overran its interval or
	// the goroutine woke late, summed over the goroutines.
	Skipped uint64 `json:"skipped"`
	// Errors counts exec route calls that ended in a Lua error.
	Errors uint64 `json:"errors"`
}

func (r *rtimerSystem) Name() string { return "rtimer" }

// runOrder returns the timer's functions in Kamailio's run order: the exec
// list is prepended to, so the last defined runs first.
func runOrder(t *TimerSpec) []string {
	out := make([]string, len(t.Execs))
	for i, x := range t.Execs {
		out[len(out)-1-i] = x
	}
	return out
}

func (r *rtimerSystem) Start(ctx context.Context) error {
	e := r.e
	ctx, r.cancel = context.WithCancel(ctx)
	start := e.clock.Now()
	var jobs []*rtimerJob
	var shared *rtimerJob
	fail := func(err error) error {
		for _, j := range jobs {
			j.w.Close()
		}
		r.cancel()
		return err
	}
	r.timers = nil
	for _, spec := range e.set.Rtimer.Timers {
		t := &rtimerTimer{spec: spec, fns: runOrder(spec)}
		r.timers = append(r.timers, t)
		if spec.Mode == 0 {
			if shared == nil {
				w, err := e.newWorker("rtimer/main", "rtimer", 0, false)
				if err != nil {
					return fail(err)
				}
				shared = &rtimerJob{w: w}
				jobs = append(jobs, shared)
			}
			s := timers.NewSchedule(start, spec.Interval)
			t.scheds = append(t.scheds, s)
			shared.timers = append(shared.timers, t)
			shared.scheds = append(shared.scheds, s)
			continue
		}
		for k := 0; k < spec.Mode; k++ {
			w, err := e.newWorker(fmt.Sprintf("rtimer/%s/%d", spec.Name, k), "rtimer:"+spec.Name, k, false)
			if err != nil {
				return fail(err)
			}
			s := timers.NewSchedule(start, spec.Interval)
			t.scheds = append(t.scheds, s)
			jobs = append(jobs, &rtimerJob{w: w, timers: []*rtimerTimer{t}, scheds: []*timers.Schedule{s}})
		}
	}
	for _, j := range jobs {
		r.wg.Add(1)
		go r.run(ctx, j)
	}
	return nil
}

// run is the body of one timer goroutine: wait for the earliest due tick
// among its schedules, run that timer's exec list, repeat until ctx is done.
func (r *rtimerSystem) run(ctx context.Context, j *rtimerJob) {
	defer r.wg.Done()
	defer j.w.Close()
	wt := r.newWaiter(ctx, j.w.vm.Name())
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
			r.e.log.Warn("rtimer: precise timer failed, falling back to the runtime's timers", "worker", j.w.vm.Name(), "error", err)
			wt.close()
			wt = &clockWaiter{c: r.e.clock}
			continue
		}
		if !ok {
			return
		}
		now := r.e.clock.Now()
		if now.Before(s.Next()) {
			continue // woke early: wait for the rest
		}
		skipped := pending[i] + s.CatchUp(now)
		r.tick(j.w, j.timers[i], s.Next(), skipped)
		pending[i] = s.Advance(r.e.clock.Now())
	}
}

// newWaiter returns the precise waiter when the engine runs on the real
// clock and the platform has one, else a waiter on the engine's clock.
func (r *rtimerSystem) newWaiter(ctx context.Context, name string) waiter {
	if r.e.opts.Clock == nil {
		w, err := newPreciseWaiter(ctx)
		if err == nil && w != nil {
			return w
		}
		if err != nil {
			r.e.log.Warn("rtimer: no precise timer, using the runtime's timers", "worker", name, "error", err)
		}
	}
	return &clockWaiter{c: r.e.clock}
}

// tick runs one timer's exec list on w for the tick due at at.
func (r *rtimerSystem) tick(w *worker, t *rtimerTimer, at time.Time, skipped int) {
	e := r.e
	if skipped > 0 { // rate-limited per timer by the engine's logger
		e.log.Warn("rtimer: a run overran its interval or started late: ticks skipped", "timer", t.spec.Name, "worker", w.vm.Name(), "skipped", skipped)
	}
	e.pending.Add(1)
	defer e.pending.Add(-1)
	w.sync()
	for _, fn := range t.fns {
		msg := w.env.Faked(ksr.RouteEvent)
		msg.Time = at
		if err := w.call(msg, fn, true, argRtimer); err != nil {
			t.errors.Add(1)
		}
	}
}

func (r *rtimerSystem) Stop(ctx context.Context) error {
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stats returns the counters of every timer, in definition order.
func (r *rtimerSystem) stats() []RtimerStat {
	if r == nil {
		return nil
	}
	out := make([]RtimerStat, 0, len(r.timers))
	for _, t := range r.timers {
		st := RtimerStat{Name: t.spec.Name, Mode: t.spec.Mode, Interval: t.spec.Interval, Errors: t.errors.Load()}
		for _, s := range t.scheds {
			st.Ticks += s.Ticks()
			st.Skipped += s.Skipped()
		}
		out = append(out, st)
	}
	return out
}

// counters adds the rtimer totals to c: rtimer_ticks, rtimer_skipped and
// rtimer_errors. It does nothing when the rtimer module has no timer.
func (r *rtimerSystem) counters(c map[string]int64) {
	if r == nil {
		return
	}
	var ticks, skipped, errs uint64
	for _, st := range r.stats() {
		ticks += st.Ticks
		skipped += st.Skipped
		errs += st.Errors
	}
	c["rtimer_ticks"] = int64(ticks)
	c["rtimer_skipped"] = int64(skipped)
	c["rtimer_errors"] = int64(errs)
}

// RtimerStats returns the counters of each rtimer timer, in definition
// order (none before Start or without timers). Safe for concurrent use.
func (e *Engine) RtimerStats() []RtimerStat { return e.rtimer.stats() }

// clockWaiter waits with one reusable timer of a timers.Clock.
type clockWaiter struct {
	c timers.Clock
	t timers.Timer
}

func (w *clockWaiter) wait(ctx context.Context, deadline time.Time) (bool, error) {
	d := deadline.Sub(w.c.Now())
	if d <= 0 {
		return ctx.Err() == nil, nil
	}
	if w.t == nil {
		w.t = w.c.NewTimer(d)
	} else {
		w.t.Reset(d)
	}
	select {
	case <-ctx.Done():
		return false, nil
	case <-w.t.C():
		return true, nil
	}
}

func (w *clockWaiter) close() {
	if w.t != nil {
		w.t.Stop()
	}
}
