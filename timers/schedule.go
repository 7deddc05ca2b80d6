package timers

import (
	"context"
	"sync/atomic"
	"time"
)

// Schedule is a drift-free periodic schedule: tick k (k = 1, 2, ...) is due
// at exactly start + k*interval, whatever the callbacks cost. It is pure
// logic with no goroutine; [RunSchedule] drives it with a [Clock], and a
// test can drive it by hand.
//
// A Schedule belongs to one goroutine (see the package concurrency
// contract); only Skipped, Ticks, Interval and Start may be read elsewhere.
type Schedule struct {
	start    time.Time
	interval time.Duration
	k        int64 // index of the next tick: Next() == start + k*interval

	ticks   atomic.Uint64
	skipped atomic.Uint64
}

// NewSchedule returns a schedule whose first tick is at start + interval
// (Kamailio's first run comes about one interval after start). It panics if
// interval is not positive: validating configuration is the caller's job.
func NewSchedule(start time.Time, interval time.Duration) *Schedule {
	if interval <= 0 {
		panic("timers: NewSchedule with a non-positive interval")
	}
	return &Schedule{start: start, interval: interval, k: 1}
}

// Next returns the time the next tick is due.
func (s *Schedule) Next() time.Time { return s.at(s.k) }

// Advance records that the tick due at Next() has run and moves Next to the
// first tick of the grid strictly after now, where now is the time the run
// ended. Ticks of the grid at or before now were covered by the run: they
// are skipped, not queued. It returns how many were skipped and adds them
// to Skipped. Advance takes constant time however far behind now is.
func (s *Schedule) Advance(now time.Time) (skipped int) {
	s.ticks.Add(1)
	s.k++
	n := s.due(now)
	s.skip(n)
	return int(n)
}

// CatchUp is for a wake-up that came late (a paused process, a starved
// scheduler): when several ticks are already due at now it skips all but
// the latest, so that the tick run next is the most recent one due. It
// returns how many were skipped and adds them to Skipped. It does nothing
// when at most one tick is due.
func (s *Schedule) CatchUp(now time.Time) (skipped int) {
	n := s.due(now) - 1
	if n <= 0 {
		return 0
	}
	s.skip(n)
	return int(n)
}

// Skipped returns how many ticks have been skipped so far.
func (s *Schedule) Skipped() uint64 { return s.skipped.Load() }

// Ticks returns how many ticks have run so far (calls to Advance).
func (s *Schedule) Ticks() uint64 { return s.ticks.Load() }

// Interval returns the period.
func (s *Schedule) Interval() time.Duration { return s.interval }

// Start returns the origin of the grid (tick 0, which never runs).
func (s *Schedule) Start() time.Time { return s.start }

func (s *Schedule) at(k int64) time.Time {
	return s.start.Add(time.Duration(k) * s.interval)
}

// due returns how many ticks from Next() on are at or before now.
func (s *Schedule) due(now time.Time) int64 {
	late := now.Sub(s.Next())
	if late < 0 {
		return 0
	}
	return int64(late/s.interval) + 1
}

func (s *Schedule) skip(n int64) {
	s.k += n
	s.skipped.Add(uint64(n))
}

// RunSchedule runs fn on the calling goroutine at each tick of s until ctx
// is done. fn receives the tick's scheduled time (not the time it was
// called) and how many ticks were skipped just before it because the
// previous run overran (or the wake-up came late). Runs never overlap.
// RunSchedule returns when ctx is done, after the current fn call, if any,
// has returned.
func RunSchedule(ctx context.Context, c Clock, s *Schedule, fn func(tick time.Time, skipped int)) {
	RunSchedules(ctx, c, []*Schedule{s}, func(_ int, tick time.Time, skipped int) { fn(tick, skipped) })
}

// RunSchedules runs several schedules on the calling goroutine (rtimer
// mode 0 timers share one goroutine, as they share Kamailio's slow timer
// process). At each step it runs the schedule due first, the lowest index
// among equal times, calling fn with that index; a long run delays the
// others, which then skip on their own grids. With no schedules it just
// waits for ctx. It returns when ctx is done.
func RunSchedules(ctx context.Context, c Clock, ss []*Schedule, fn func(i int, tick time.Time, skipped int)) {
	if len(ss) == 0 {
		<-ctx.Done()
		return
	}
	pending := make([]int, len(ss)) // skipped by Advance, reported with the next tick
	var t Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for ctx.Err() == nil {
		i := 0
		for j := 1; j < len(ss); j++ {
			if ss[j].Next().Before(ss[i].Next()) {
				i = j
			}
		}
		s := ss[i]
		now := c.Now()
		if d := s.Next().Sub(now); d > 0 {
			if t == nil {
				t = c.NewTimer(d)
			} else {
				t.Reset(d)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
			continue
		}
		skipped := pending[i] + s.CatchUp(now)
		fn(i, s.Next(), skipped)
		pending[i] = s.Advance(c.Now())
	}
}
