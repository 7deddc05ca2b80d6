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

// rtimerSystem runs the rtimer timers: mode=0 timers share one goroutine
// (Kamailio's shared timer process), a mode=N timer gets N goroutines, each
// with its own VM, each running the timer's whole exec list every interval
// (N parallel runs per interval, as Kamailio's N processes do).
//
// Unlike Kamailio, which sleeps `interval` after each run and so drifts by
// the run time, ticks fall on absolute deadlines start+k*interval; a run
// that overruns skips the missed ticks (counted in Skipped) rather than
// queueing them.
type rtimerSystem struct {
	e       *Engine
	wg      sync.WaitGroup
	cancel  context.CancelFunc
	ticks   atomic.Uint64
	skipped atomic.Uint64
}

func (r *rtimerSystem) Name() string { return "rtimer" }

// execs returns the timer's functions in Kamailio's run order: the exec
// list is prepended, so the last defined runs first.
func execs(t *TimerSpec) []string {
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
	var jobs []rtimerJob
	var shared []*TimerSpec
	for _, t := range e.set.Rtimer.Timers {
		if t.Mode == 0 {
			shared = append(shared, t)
			continue
		}
		for k := 0; k < t.Mode; k++ {
			w, err := e.newWorker(fmt.Sprintf("rtimer/%s/%d", t.Name, k), "rtimer:"+t.Name, k, false)
			if err != nil {
				r.closeJobs(jobs)
				r.cancel()
				return err
			}
			jobs = append(jobs, rtimerJob{w, []*TimerSpec{t}})
		}
	}
	if len(shared) > 0 {
		w, err := e.newWorker("rtimer/main", "rtimer", 0, false)
		if err != nil {
			r.cancel()
			return err
		}
		jobs = append(jobs, rtimerJob{w, shared})
	}
	for _, j := range jobs {
		j := j
		scheds := make([]*timers.Schedule, len(j.timers))
		lists := make([][]string, len(j.timers))
		for i, t := range j.timers {
			scheds[i] = timers.NewSchedule(start, t.Interval)
			lists[i] = execs(t)
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer j.w.Close()
			timers.RunSchedules(ctx, e.clock, scheds, func(i int, tick time.Time, skipped int) {
				r.tick(j.w, lists[i], tick, skipped)
			})
		}()
	}
	return nil
}

// rtimerJob is one timer goroutine: its VM and the timers it runs.
type rtimerJob struct {
	w      *worker
	timers []*TimerSpec
}

func (r *rtimerSystem) closeJobs(jobs []rtimerJob) {
	for _, j := range jobs {
		j.w.Close()
	}
}

// tick runs one timer's exec list on w.
func (r *rtimerSystem) tick(w *worker, fns []string, tick time.Time, skipped int) {
	r.ticks.Add(1)
	if skipped > 0 {
		r.skipped.Add(uint64(skipped))
		w.logErr("rtimer-skip:"+w.vm.Name(), "rtimer callback overran its interval: ticks skipped", "worker", w.vm.Name(), "skipped", skipped)
	}
	w.e.pending.Add(1)
	defer w.e.pending.Add(-1)
	w.sync()
	for _, fn := range fns {
		msg := w.env.Faked(ksr.RouteEvent)
		msg.Time = tick
		w.call(msg, fn, true, argRtimer)
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
