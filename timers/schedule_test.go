package timers

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestScheduleFirstTick(t *testing.T) {
	s := NewSchedule(t0(), 10*time.Millisecond)
	if got, want := s.Next(), t0().Add(10*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Next() = %v, want %v", got, want)
	}
	if s.Interval() != 10*time.Millisecond || !s.Start().Equal(t0()) {
		t.Fatalf("Interval() = %v, Start() = %v", s.Interval(), s.Start())
	}
	for _, iv := range []time.Duration{0, -time.Second} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewSchedule(%v) did not panic", iv)
				}
			}()
			NewSchedule(t0(), iv)
		}()
	}
}

// TestScheduleNoDrift runs a 10 ms schedule for 60 simulated seconds with
// callbacks costing 0.3 ms: exactly 6000 ticks, tick k at start + k*interval.
// Kamailio's sleep-then-run loop would get 60s/10.3ms = 5825 runs.
func TestScheduleNoDrift(t *testing.T) {
	const interval = 10 * time.Millisecond
	const cost = 300 * time.Microsecond
	end := t0().Add(60 * time.Second)
	s := NewSchedule(t0(), interval)
	n := 0
	for !s.Next().After(end) {
		tick := s.Next()
		n++
		if want := t0().Add(time.Duration(n) * interval); !tick.Equal(want) {
			t.Fatalf("tick %d at %v, want %v (drift %v)", n, tick, want, tick.Sub(want))
		}
		if skipped := s.Advance(tick.Add(cost)); skipped != 0 {
			t.Fatalf("tick %d: Advance skipped %d", n, skipped)
		}
	}
	if n != 6000 || s.Ticks() != 6000 || s.Skipped() != 0 {
		t.Fatalf("ran %d ticks (Ticks()=%d, Skipped()=%d), want 6000 and 0 skipped", n, s.Ticks(), s.Skipped())
	}

	// The drifting model, for contrast: it must lose ticks, or this test
	// would not tell the two apart.
	kam := 0
	for now := t0().Add(interval); !now.After(end); now = now.Add(cost + interval) {
		kam++
	}
	if kam >= n {
		t.Fatalf("sleep-then-run model ran %d ticks, not fewer than %d", kam, n)
	}
}

func TestScheduleOverrun(t *testing.T) {
	const iv = 10 * time.Millisecond
	for _, tc := range []struct {
		name    string
		cost    time.Duration
		skipped int
	}{
		{"fits", iv - time.Nanosecond, 0},
		{"exactly one interval", iv, 1},
		{"2.5 intervals", iv * 5 / 2, 2},
		{"100.5 intervals", iv * 201 / 2, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSchedule(t0(), iv)
			s.Advance(s.Next()) // tick 1, free
			tick := s.Next()    // tick 2 overruns
			got := s.Advance(tick.Add(tc.cost))
			if got != tc.skipped || s.Skipped() != uint64(tc.skipped) {
				t.Fatalf("Advance skipped %d (Skipped()=%d), want %d", got, s.Skipped(), tc.skipped)
			}
			// Still on the original grid.
			want := t0().Add(time.Duration(3+tc.skipped) * iv)
			if !s.Next().Equal(want) {
				t.Fatalf("Next() = %v, want %v", s.Next(), want)
			}
			if !s.Next().After(tick.Add(tc.cost)) {
				t.Fatal("Next() is not after the end of the run")
			}
			if s.Ticks() != 2 {
				t.Fatalf("Ticks() = %d, want 2", s.Ticks())
			}
		})
	}
}

func TestScheduleSkippedAccumulates(t *testing.T) {
	s := NewSchedule(t0(), time.Second)
	s.Advance(s.Next().Add(1500 * time.Millisecond)) // skips 1
	s.Advance(s.Next().Add(3500 * time.Millisecond)) // skips 3
	if s.Skipped() != 4 {
		t.Fatalf("Skipped() = %d, want 4", s.Skipped())
	}
	// Far behind (a suspended laptop): constant time, exact count.
	const behind = 1_000_000_000
	next := s.Next()
	got := s.Advance(next.Add(behind * time.Second))
	if got != behind || s.Skipped() != 4+behind {
		t.Fatalf("Advance skipped %d, Skipped() = %d", got, s.Skipped())
	}
	if want := next.Add((behind + 1) * time.Second); !s.Next().Equal(want) {
		t.Fatalf("Next() = %v, want %v", s.Next(), want)
	}
}

func TestScheduleCatchUp(t *testing.T) {
	s := NewSchedule(t0(), time.Second)
	if n := s.CatchUp(t0()); n != 0 {
		t.Fatalf("CatchUp before the first tick skipped %d", n)
	}
	if n := s.CatchUp(t0().Add(1999 * time.Millisecond)); n != 0 {
		t.Fatalf("CatchUp with one tick due skipped %d", n)
	}
	if n := s.CatchUp(t0().Add(4500 * time.Millisecond)); n != 3 {
		t.Fatalf("CatchUp with ticks 1..4 due skipped %d, want 3", n)
	}
	if want := t0().Add(4 * time.Second); !s.Next().Equal(want) || s.Skipped() != 3 {
		t.Fatalf("Next() = %v, Skipped() = %d", s.Next(), s.Skipped())
	}
}

type tickRec struct {
	i       int
	tick    time.Time
	now     time.Time
	skipped int
}

// recorder collects callback calls and detects overlapping ones.
type recorder struct {
	mu       sync.Mutex
	recs     []tickRec
	inflight atomic.Int32
	overlap  atomic.Bool
}

func (r *recorder) record(i int, tick, now time.Time, skipped int) {
	if r.inflight.Add(1) != 1 {
		r.overlap.Store(true)
	}
	defer r.inflight.Add(-1)
	r.mu.Lock()
	r.recs = append(r.recs, tickRec{i, tick, now, skipped})
	r.mu.Unlock()
}

func (r *recorder) get() []tickRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tickRec(nil), r.recs...)
}

// TestRunScheduleFake drives RunSchedule for 60 simulated seconds with
// callbacks that cost 0.3 ms of virtual time: 6000 runs, each called exactly
// at its tick, none skipped, none overlapping.
func TestRunScheduleFake(t *testing.T) {
	const interval = 10 * time.Millisecond
	f := NewFake(t0())
	s := NewSchedule(f.Now(), interval)
	var r recorder
	_, stop := start(t, func(ctx context.Context) {
		RunSchedule(ctx, f, s, func(tick time.Time, skipped int) {
			r.record(0, tick, f.Now(), skipped)
			f.Advance(300 * time.Microsecond)
		})
	})
	for range 6000 {
		blockUntil(t, f, 1)
		f.AdvanceNext()
	}
	blockUntil(t, f, 1) // the 6000th run has returned and re-armed
	if next, _ := f.Next(); !next.Equal(t0().Add(6001 * interval)) {
		t.Fatalf("runner waits for %v, want tick 6001", next)
	}
	stop()

	recs := r.get()
	if len(recs) != 6000 {
		t.Fatalf("%d runs, want 6000", len(recs))
	}
	for k, rec := range recs {
		want := t0().Add(time.Duration(k+1) * interval)
		if !rec.tick.Equal(want) || !rec.now.Equal(want) || rec.skipped != 0 {
			t.Fatalf("run %d: tick %v at %v skipped %d, want tick and call at %v", k+1, rec.tick, rec.now, rec.skipped, want)
		}
	}
	if r.overlap.Load() || s.Skipped() != 0 || s.Ticks() != 6000 {
		t.Fatalf("overlap=%v Skipped()=%d Ticks()=%d", r.overlap.Load(), s.Skipped(), s.Ticks())
	}
	if f.Pending() != 0 {
		t.Fatalf("RunSchedule left %d timers pending after return", f.Pending())
	}
}

// TestRunScheduleOverrun: the run of tick 3 lasts 2.5 intervals, so ticks
// 4 and 5 are skipped, counted, and reported with tick 6.
func TestRunScheduleOverrun(t *testing.T) {
	const iv = time.Second
	f := NewFake(t0())
	s := NewSchedule(f.Now(), iv)
	var r recorder
	_, stop := start(t, func(ctx context.Context) {
		RunSchedule(ctx, f, s, func(tick time.Time, skipped int) {
			r.record(0, tick, f.Now(), skipped)
			if tick.Equal(t0().Add(3 * iv)) {
				f.Advance(iv * 5 / 2)
			}
		})
	})
	for range 5 {
		blockUntil(t, f, 1)
		f.AdvanceNext()
	}
	blockUntil(t, f, 1)
	stop()

	want := []struct{ k, skipped int }{{1, 0}, {2, 0}, {3, 0}, {6, 2}, {7, 0}}
	recs := r.get()
	if len(recs) != len(want) {
		t.Fatalf("%d runs, want %d: %+v", len(recs), len(want), recs)
	}
	for i, w := range want {
		tick := t0().Add(time.Duration(w.k) * iv)
		if !recs[i].tick.Equal(tick) || recs[i].skipped != w.skipped || !recs[i].now.Equal(tick) {
			t.Fatalf("run %d = %+v, want tick %d (%v) skipped %d", i, recs[i], w.k, tick, w.skipped)
		}
	}
	if s.Skipped() != 2 || r.overlap.Load() {
		t.Fatalf("Skipped() = %d overlap=%v", s.Skipped(), r.overlap.Load())
	}
}

// TestRunScheduleLateWake: a wake-up 5 intervals late runs the latest due
// tick once and reports the 4 before it as skipped.
func TestRunScheduleLateWake(t *testing.T) {
	f := NewFake(t0())
	s := NewSchedule(f.Now(), time.Second)
	var r recorder
	_, stop := start(t, func(ctx context.Context) {
		RunSchedule(ctx, f, s, func(tick time.Time, skipped int) { r.record(0, tick, f.Now(), skipped) })
	})
	blockUntil(t, f, 1)
	f.Advance(5 * time.Second)
	blockUntil(t, f, 1)
	stop()
	recs := r.get()
	if len(recs) != 1 || !recs[0].tick.Equal(t0().Add(5*time.Second)) || recs[0].skipped != 4 {
		t.Fatalf("runs = %+v, want one run of tick 5 with 4 skipped", recs)
	}
	if s.Skipped() != 4 || s.Ticks() != 1 {
		t.Fatalf("Skipped() = %d Ticks() = %d", s.Skipped(), s.Ticks())
	}
}

func TestRunScheduleCancel(t *testing.T) {
	t.Run("while waiting", func(t *testing.T) {
		f := NewFake(t0())
		calls := 0
		done, stop := start(t, func(ctx context.Context) {
			RunSchedule(ctx, f, NewSchedule(f.Now(), time.Second), func(time.Time, int) { calls++ })
		})
		blockUntil(t, f, 1)
		select {
		case <-done:
			t.Fatal("RunSchedule returned before cancel")
		default:
		}
		stop()
		if calls != 0 || f.Pending() != 0 {
			t.Fatalf("calls=%d pending=%d", calls, f.Pending())
		}
	})
	t.Run("during a run", func(t *testing.T) {
		// The callback cancels and overruns: RunSchedule returns after it
		// without running the ticks that are now due.
		f := NewFake(t0())
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int32
		done := make(chan struct{})
		go func() {
			defer close(done)
			RunSchedule(ctx, f, NewSchedule(f.Now(), time.Second), func(time.Time, int) {
				calls.Add(1)
				cancel()
				f.Advance(10 * time.Second)
			})
		}()
		blockUntil(t, f, 1)
		f.AdvanceNext()
		recv(t, done)
		if calls.Load() != 1 {
			t.Fatalf("%d calls, want 1", calls.Load())
		}
	})
}

func TestRunSchedules(t *testing.T) {
	f := NewFake(t0())
	a := NewSchedule(t0(), 10*time.Millisecond)
	b := NewSchedule(t0(), 25*time.Millisecond)
	var r recorder
	_, stop := start(t, func(ctx context.Context) {
		RunSchedules(ctx, f, []*Schedule{a, b}, func(i int, tick time.Time, skipped int) {
			r.record(i, tick, f.Now(), skipped)
		})
	})
	for {
		blockUntil(t, f, 1)
		if next, _ := f.Next(); next.After(t0().Add(100 * time.Millisecond)) {
			break
		}
		f.AdvanceNext()
	}
	stop()
	ms := func(n int) time.Time { return t0().Add(time.Duration(n) * time.Millisecond) }
	want := []tickRec{
		{0, ms(10), ms(10), 0}, {0, ms(20), ms(20), 0}, {1, ms(25), ms(25), 0}, {0, ms(30), ms(30), 0},
		{0, ms(40), ms(40), 0}, {0, ms(50), ms(50), 0}, {1, ms(50), ms(50), 0}, {0, ms(60), ms(60), 0},
		{0, ms(70), ms(70), 0}, {1, ms(75), ms(75), 0}, {0, ms(80), ms(80), 0}, {0, ms(90), ms(90), 0},
		{0, ms(100), ms(100), 0}, {1, ms(100), ms(100), 0},
	}
	recs := r.get()
	if len(recs) != len(want) {
		t.Fatalf("got %d runs, want %d: %+v", len(recs), len(want), recs)
	}
	for i := range want {
		if recs[i].i != want[i].i || !recs[i].tick.Equal(want[i].tick) || !recs[i].now.Equal(want[i].now) || recs[i].skipped != 0 {
			t.Fatalf("run %d = %+v, want %+v", i, recs[i], want[i])
		}
	}
}
