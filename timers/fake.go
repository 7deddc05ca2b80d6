package timers

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// Fake is a virtual [Clock] for tests and `kemi test`: time stands still
// until [Fake.Advance] or [Fake.AdvanceNext] moves it, and timers fire only
// then. A Fake is safe for concurrent use; create it with [NewFake].
type Fake struct {
	mu     sync.Mutex
	cond   sync.Cond // L is &mu; broadcast whenever the set of pending timers changes
	now    time.Time
	seq    uint64 // arm order, breaks ties between equal deadlines
	timers fakeHeap
}

// NewFake returns a virtual clock that reads start until it is advanced.
func NewFake(start time.Time) *Fake {
	f := &Fake{now: start}
	f.cond.L = &f.mu
	return f
}

// Now returns the virtual time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a timer that fires when the virtual time reaches
// Now()+d. A d <= 0 fires at once and is never pending.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, ch: make(chan time.Time, 1), idx: -1}
	f.mu.Lock()
	f.arm(t, d)
	f.mu.Unlock()
	return t
}

// Advance moves the virtual time forward by d and fires, in deadline order
// (arm order among equal deadlines), every timer due by the new time. While a
// timer fires, Now reads its deadline; the value sent is that deadline. The
// sends never block and Advance does not wait for receivers; it holds the
// clock until it returns, so goroutines woken by it observe the final time.
// Advance panics if d is negative.
func (f *Fake) Advance(d time.Duration) {
	if d < 0 {
		panic("timers: Fake.Advance with a negative duration")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.advanceTo(f.now.Add(d))
}

// AdvanceNext moves the virtual time to the deadline of the earliest pending
// timer and fires every timer due then. It returns that deadline, or false
// (and leaves the time alone) when no timer is pending.
func (f *Fake) AdvanceNext() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return time.Time{}, false
	}
	at := f.timers[0].at
	f.advanceTo(at)
	return at, true
}

// Next returns the deadline of the earliest pending timer.
func (f *Fake) Next() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.timers) == 0 {
		return time.Time{}, false
	}
	return f.timers[0].at, true
}

// Pending returns the number of timers armed and not yet fired or stopped.
func (f *Fake) Pending() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.timers)
}

// BlockUntil waits until at least n timers are pending. Tests use it to
// know that the goroutine under test has armed its timer and is waiting.
func (f *Fake) BlockUntil(n int) {
	_ = f.wait(context.Background(), func() bool { return len(f.timers) >= n })
}

// BlockUntilContext is [Fake.BlockUntil] that gives up with ctx.Err() when
// ctx is done.
func (f *Fake) BlockUntilContext(ctx context.Context, n int) error {
	return f.wait(ctx, func() bool { return len(f.timers) >= n })
}

// BlockUntilDue waits until a pending timer is due at or before at, for
// example until a goroutine has re-armed its timer to an earlier deadline.
// It gives up with ctx.Err() when ctx is done.
func (f *Fake) BlockUntilDue(ctx context.Context, at time.Time) error {
	return f.wait(ctx, func() bool { return len(f.timers) > 0 && !f.timers[0].at.After(at) })
}

// wait blocks until cond (called with f.mu held) is true or ctx is done.
func (f *Fake) wait(ctx context.Context, cond func() bool) error {
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.cond.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		f.cond.Wait()
	}
	return nil
}

// advanceTo fires every timer due by target, then sets the time to target.
// f.mu must be held.
func (f *Fake) advanceTo(target time.Time) {
	fired := false
	for len(f.timers) > 0 && !f.timers[0].at.After(target) {
		t := heap.Pop(&f.timers).(*fakeTimer)
		if t.at.After(f.now) {
			f.now = t.at
		}
		t.send(t.at)
		fired = true
	}
	if target.After(f.now) {
		f.now = target
	}
	if fired {
		f.cond.Broadcast()
	}
}

// arm schedules t to fire after d. f.mu must be held and t not pending.
func (f *Fake) arm(t *fakeTimer, d time.Duration) {
	if d <= 0 {
		t.send(f.now)
		return
	}
	f.seq++
	t.at = f.now.Add(d)
	t.seq = f.seq
	heap.Push(&f.timers, t)
	f.cond.Broadcast()
}

// disarm removes t from the pending set and drops an undelivered value.
// It reports whether t was pending. f.mu must be held.
func (f *Fake) disarm(t *fakeTimer) bool {
	pending := t.idx >= 0
	if pending {
		heap.Remove(&f.timers, t.idx)
		f.cond.Broadcast()
	}
	select {
	case <-t.ch:
	default:
	}
	return pending
}

type fakeTimer struct {
	f   *Fake
	ch  chan time.Time
	at  time.Time
	seq uint64
	idx int // position in f.timers, -1 when not pending
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	return t.f.disarm(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	pending := t.f.disarm(t)
	t.f.arm(t, d)
	return pending
}

// send delivers v without blocking, like the runtime does for time.Timer.
func (t *fakeTimer) send(v time.Time) {
	select {
	case t.ch <- v:
	default:
	}
}

// fakeHeap orders pending fake timers by (deadline, arm order).
type fakeHeap []*fakeTimer

func (h fakeHeap) Len() int { return len(h) }

func (h fakeHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}

func (h fakeHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h *fakeHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.idx = len(*h)
	*h = append(*h, t)
}

func (h *fakeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}
