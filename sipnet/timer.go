package sipnet

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"kemi/timers"
)

// timer is what sipnet keeps of a one-shot timer: a wheelTimer, or a
// test's stub.
type timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// afterFuncHook is time.AfterFunc as a test of the package replaces it.
type afterFuncHook func(d time.Duration, f func()) timer

// The timers of branches (retransmission, fr_timer, lingering) and of
// answered non-INVITE transactions (tm's wait timer) are deadlines on a few
// shared wheels (timers.Deadlines, a heap each with one goroutine firing
// what is due) rather than one runtime timer each: arming one allocates
// nothing (the wheelTimer lives in its Branch or Tx and its callback is a
// plain function of its owner), and firing one starts no goroutine. The
// callbacks run on the wheel's goroutine, so they must not block: the ones
// that may (fr_timer's expiry hands work to the engine) start their own.
// A test of the package replaces the wheels with Server.timerHook to fire
// timers itself.

// wheelShards is how many wheels share the timers: arming takes one
// wheel's lock, so the lock is not one for the whole process.
const wheelShards = 8

var (
	wheelsOnce sync.Once
	wheels     [wheelShards]*timers.Deadlines[*wheelTimer]
	wheelNext  atomic.Uint32
)

// startWheels starts the wheels' goroutines, once per process (they live
// as long as it, as the runtime's timers do).
func startWheels() {
	for i := range wheels {
		d := timers.NewDeadlines[*wheelTimer]()
		wheels[i] = d
		go d.Run(context.Background(), timers.Real(), (*wheelTimer).run)
	}
}

// wheelTimer is a one-shot timer on a wheel. Its zero value is unarmed.
type wheelTimer struct {
	wheel *timers.Deadlines[*wheelTimer]
	id    atomic.Uint64 // timers.ID of the pending deadline, 0 when none
	fire  func(any)
	arg   any
	async bool // fire may block: it runs on a goroutine of its own
}

func (t *wheelTimer) run() {
	if t.async {
		go t.fire(t.arg)
		return
	}
	t.fire(t.arg)
}

// Stop cancels the timer; it reports whether it was pending.
func (t *wheelTimer) Stop() bool {
	id := timers.ID(t.id.Swap(0))
	return id != 0 && t.wheel.Cancel(id)
}

// Reset arms the timer again to fire after d; it reports whether it was
// pending.
func (t *wheelTimer) Reset(d time.Duration) bool {
	was := t.Stop()
	t.id.Store(uint64(t.wheel.Add(time.Now().Add(d), t)))
	return was
}

// arm arms t (the caller's own, unarmed) to call fire(arg) after d (on a
// goroutine of its own if async), or with Server.timerHook set, the test's
// stub.
func (s *Server) arm(t *wheelTimer, d time.Duration, fire func(any), arg any, async bool) timer {
	if s.timerHook != nil {
		return s.timerHook(d, func() { fire(arg) })
	}
	if t.wheel == nil {
		wheelsOnce.Do(startWheels)
		t.wheel = wheels[wheelNext.Add(1)%wheelShards]
		t.fire, t.arg, t.async = fire, arg, async
	}
	t.Reset(d)
	return t
}
