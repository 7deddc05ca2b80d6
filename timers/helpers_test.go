package timers

import (
	"context"
	"testing"
	"time"
)

// guard bounds every wait on another goroutine, so that a bug fails the test
// quickly instead of hanging it until go test's global timeout. It is never
// used to let time pass.
const guard = 30 * time.Second

// t0 is the start of virtual time in tests.
func t0() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// blockUntil waits until n fake timers are pending, or fails tb.
func blockUntil(tb testing.TB, f *Fake, n int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := f.BlockUntilContext(ctx, n); err != nil {
		tb.Fatalf("waiting for %d pending timers (have %d): %v", n, f.Pending(), err)
	}
}

// recv receives from ch, or fails tb.
func recv[T any](tb testing.TB, ch <-chan T) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(guard):
		tb.Fatal("timed out waiting for a value")
		panic("unreachable")
	}
}

// fired reports whether a value is ready on ch, without waiting.
func fired(ch <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
		return time.Time{}, false
	}
}

// start runs f on a new goroutine and returns a channel closed when it
// returns, and a function that cancels ctx and waits for that.
func start(tb testing.TB, f func(ctx context.Context)) (done <-chan struct{}, stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		f(ctx)
	}()
	stop = func() {
		tb.Helper()
		cancel()
		recv(tb, ch)
	}
	tb.Cleanup(cancel)
	return ch, stop
}

// firing is a value a Deadlines runner fired, with the clock's time then.
type firing struct {
	v  string
	at time.Time
}

// runFiring runs d on the fake clock f until stop, sending each value it
// fires, with the time, to fires.
func runFiring(tb testing.TB, d *Deadlines[string], f *Fake) (fires <-chan firing, stop func()) {
	ch := make(chan firing, 10)
	_, stop = start(tb, func(ctx context.Context) {
		d.Run(ctx, f, func(v string) { ch <- firing{v, f.Now()} })
	})
	return ch, stop
}
