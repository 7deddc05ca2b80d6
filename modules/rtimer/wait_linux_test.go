//go:build linux

package rtimer

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"kemi/timers"
)

// TestPreciseWaiter: the timerfd waiter never returns before its deadline,
// returns at once for a past one, and a cancelled context ends a wait (and
// every later one) without waiting for the deadline.
func TestPreciseWaiter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := newPreciseWaiter(ctx)
	if err != nil {
		t.Fatalf("newPreciseWaiter: %v", err)
	}
	defer w.close()
	for range 5 {
		deadline := time.Now().Add(3 * time.Millisecond)
		ok, err := w.wait(ctx, deadline)
		if !ok || err != nil {
			t.Fatalf("wait: %v, %v", ok, err)
		}
		if now := time.Now(); now.Before(deadline) {
			t.Fatalf("woke %s before the deadline", deadline.Sub(now))
		}
	}
	if ok, err := w.wait(ctx, time.Now().Add(-time.Second)); !ok || err != nil {
		t.Fatalf("wait for a past deadline: %v, %v", ok, err)
	}

	done := make(chan bool)
	go func() {
		ok, err := w.wait(ctx, time.Now().Add(time.Hour))
		if err != nil {
			t.Errorf("wait: %v", err)
		}
		done <- ok
	}()
	cancel()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("a cancelled wait reported its deadline reached")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not end the wait")
	}
	if ok, _ := w.wait(ctx, time.Now().Add(time.Hour)); ok {
		t.Fatal("a wait after cancel reported its deadline reached")
	}
}

// BenchmarkWaitLateness measures how late a wait for a deadline 2 ms ahead
// returns: with the runtime's timers (clockWaiter on timers.Real) and with
// fdWaiter (timerfd plus the runtime deadline), on an idle process and with
// four always-runnable goroutines ("busy"). It reports the p50 and p99
// lateness in microseconds. Run it on one CPU to see GOMAXPROCS=1:
//
//	taskset -c 0 go test ./modules/rtimer -run '^$' -bench WaitLateness -benchtime 500x
func BenchmarkWaitLateness(b *testing.B) {
	for _, busy := range []bool{false, true} {
		for _, kind := range []string{"runtime", "timerfd"} {
			name := kind + "/idle"
			if busy {
				name = kind + "/busy"
			}
			b.Run(name, func(b *testing.B) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if busy {
					for range 4 {
						go func() {
							x := 0
							for ctx.Err() == nil {
								for i := range 20000 {
									x += i
								}
								runtime.Gosched()
							}
							_ = x
						}()
					}
				}
				var w waiter = &clockWaiter{c: timers.Real()}
				if kind == "timerfd" {
					fw, err := newPreciseWaiter(ctx)
					if err != nil {
						b.Fatal(err)
					}
					w = fw
				}
				defer w.close()
				late := make([]time.Duration, 0, b.N)
				b.ResetTimer()
				for range b.N {
					deadline := time.Now().Add(2 * time.Millisecond)
					if ok, err := w.wait(ctx, deadline); !ok || err != nil {
						b.Fatalf("wait: %v %v", ok, err)
					}
					late = append(late, time.Since(deadline))
				}
				b.StopTimer()
				slices.Sort(late)
				b.ReportMetric(float64(late[len(late)/2].Microseconds()), "p50-late-µs")
				b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "p99-late-µs")
			})
		}
	}
}
