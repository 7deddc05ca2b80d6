package timers

import "time"

// Clock tells the time and makes one-shot timers. [Real] is backed by the
// runtime; [Fake] is a virtual clock moved by hand.
type Clock interface {
	// Now returns the current time. Real clocks include a monotonic reading.
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once d
	// has elapsed. A d <= 0 fires at once.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer with the semantics of *time.Timer (Go 1.23+):
// after Stop or Reset returns, no stale value is received from C.
type Timer interface {
	// C returns the channel on which the time is delivered.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether the timer
	// was pending, that is whether this call stopped it.
	Stop() bool
	// Reset re-arms the timer to fire after d. It reports whether the
	// timer was pending before the call.
	Reset(d time.Duration) bool
}

// Real returns the runtime clock: time.Now and time.NewTimer.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Interface guards.
var (
	_ Clock = realClock{}
	_ Timer = realTimer{}
	_ Clock = (*Fake)(nil)
	_ Timer = (*fakeTimer)(nil)
)
