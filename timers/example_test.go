package timers_test

import (
	"context"
	"fmt"
	"time"

	"kemi/timers"
)

// A schedule driven by hand: the run of the 2nd tick lasts 2.5 intervals,
// so ticks 3 and 4 are skipped and the grid is kept.
func ExampleSchedule() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := timers.NewSchedule(start, 10*time.Millisecond)
	for range 3 {
		tick := s.Next()
		cost := 300 * time.Microsecond
		if tick.Sub(start) == 20*time.Millisecond {
			cost = 25 * time.Millisecond
		}
		skipped := s.Advance(tick.Add(cost))
		fmt.Println(tick.Sub(start), "skipped after:", skipped)
	}
	fmt.Println("next:", s.Next().Sub(start), "skipped:", s.Skipped())
	// Output:
	// 10ms skipped after: 0
	// 20ms skipped after: 2
	// 50ms skipped after: 0
	// next: 60ms skipped: 2
}

func ExampleDeadlines() {
	clock := timers.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d := timers.NewDeadlines[string]()
	now := clock.Now()
	d.Add(now.Add(3*time.Second), "c")
	b := d.Add(now.Add(2*time.Second), "b")
	d.Add(now.Add(time.Second), "a1")
	d.Add(now.Add(time.Second), "a2")
	fmt.Println(d.Cancel(b), d.Cancel(b))

	clock.Advance(2 * time.Second)
	fmt.Println(d.PopDue(clock.Now(), nil), d.Len())
	// Output:
	// true false
	// [a1 a2] 1
}

// Driving a goroutine that waits on a Fake clock: BlockUntil tells when it
// has armed its timer, so the test never sleeps.
func ExampleFake() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := timers.NewFake(start)
	ticks := make(chan string)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		timers.RunSchedule(ctx, clock, timers.NewSchedule(start, time.Second), func(tick time.Time, skipped int) {
			ticks <- fmt.Sprint(tick.Sub(start), " skipped ", skipped)
		})
	}()
	for range 2 {
		clock.BlockUntil(1) // the runner waits for its next tick
		clock.AdvanceNext()
		fmt.Println(<-ticks)
	}
	clock.BlockUntil(1)
	clock.Advance(3 * time.Second) // a late wake-up: ticks 3 and 4 are skipped
	fmt.Println(<-ticks)
	cancel()
	<-done
	// Output:
	// 1s skipped 0
	// 2s skipped 0
	// 5s skipped 2
}
