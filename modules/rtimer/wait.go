package rtimer

import (
	"context"
	"time"

	"kemi/timers"
)

// waiter blocks the calling goroutine until a deadline of the engine's
// clock. wait returns false when ctx is done first; an error means the
// waiter is broken and the caller should fall back to another one.
type waiter interface {
	wait(ctx context.Context, deadline time.Time) (bool, error)
	close()
}

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
