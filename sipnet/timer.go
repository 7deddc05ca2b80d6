package sipnet

import (
	"context"
	"runtime"
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
// answered non-INVITE transactions (tm's wait timer) are deadlines on the
// server's few wheels (timers.Wheel, a hashed timing wheel each with one
// goroutine firing what is due) rather than one runtime timer each.
// Arming or cancelling one is an append or a store (not a heap's sift
// through entries gone cold in a 5 s wait) and allocates nothing (the
// wheelTimer lives in its Branch or Tx and its callback is a plain
// function of its owner), and firing one starts no goroutine. The
// callbacks run on the wheel's goroutine, so they must not block: the ones
// that may (fr_timer's expiry hands work to the engine) start their own.
// A test of the package replaces the wheels with Server.timerHook to fire
// timers itself.

// wheelShards is the most wheels a server has: arming takes one wheel's
// lock, so there is one per processor (up to this), not one lock for all.
const wheelShards = 8

// wheelTick is the wheels' grid: a timer fires up to this late, never
// early, and the timers due within one tick fire on one wake-up instead of
// one each (at 2,000 relayed MESSAGEs/s that is up to 4,000 wake-ups a
// second otherwise). Kamailio's timers tick at 16 Hz (62.5 ms).
const wheelTick = 10 * time.Millisecond

// wheelSpan is a wheel's ring, in ticks: 40.96 s, past fr_timer's default
// (a deadline further ahead waits in its bucket for another turn).
const wheelSpan = 4096

// wheelSet is a server's wheels, started by the first timer armed and
// stopped with the server (Server.Stop): timers pending then never fire.
type wheelSet struct {
	once   sync.Once
	cancel context.CancelFunc
	n      uint32
	next   atomic.Uint32
	w      [wheelShards]*timers.Wheel[*wheelTimer]
}

func (ws *wheelSet) start() {
	ctx, cancel := context.WithCancel(context.Background())
	ws.cancel = cancel
	ws.n = uint32(min(max(runtime.GOMAXPROCS(0), 1), wheelShards))
	for i := range ws.n {
		d := timers.NewWheel[*wheelTimer](wheelTick, wheelSpan)
		ws.w[i] = d
		go d.Run(ctx, timers.Real(), (*wheelTimer).run)
	}
}

// pick returns the wheel for the next timer.
func (ws *wheelSet) pick() *timers.Wheel[*wheelTimer] {
	ws.once.Do(ws.start)
	return ws.w[ws.next.Add(1)%ws.n]
}

// stop ends the wheels' goroutines.
func (ws *wheelSet) stop() {
	ws.once.Do(ws.start) // so that a timer armed after Stop finds a wheel (that never fires)
	ws.cancel()
}

// wheelTimer is a one-shot timer on a wheel. Its zero value is unarmed.
type wheelTimer struct {
	wheel *timers.Wheel[*wheelTimer]
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
		t.wheel = s.wheels.pick()
		t.fire, t.arg, t.async = fire, arg, async
	}
	t.Reset(d)
	return t
}
