package timers

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"time"
)

// Wheel is a set of one-shot deadlines carrying values of type T, like
// [Deadlines], kept on a hashed timing wheel: a ring of buckets, one per
// tick, each holding the deadlines that fall on its tick (or on the same
// slot of a later turn of the ring). Add and Cancel take O(1), and popping
// what is due costs the entries of the buckets passed, where a heap costs a
// sift through O(log n) entries scattered over memory for each Add, Cancel
// and pop. It suits many deadlines on a coarse grid that are mostly
// cancelled or fire late in their bucket's turn, such as the
// retransmission, fr_timer and wait timers of a SIP proxy.
//
// A deadline fires on the tick grid (multiples of tick before and after the
// first deadline added): at the first grid point at or after it, never
// early and up to one tick late. Deadlines fire in the order of their grid
// points, in insertion order within one. Cancel leaves the entry in its
// bucket, to be dropped when the bucket's turn comes, so a cancelled
// deadline costs its 16-byte entry until then. The buckets keep their
// high-water size.
//
// Every method is safe for concurrent use. Create a Wheel with [NewWheel];
// the zero value is not usable.
type Wheel[T any] struct {
	mu      sync.Mutex
	tick    int64 // ns
	mask    int64
	base    time.Time
	based   bool
	cur     int64 // the first grid point not yet popped, in ticks since base (notYet)
	buckets [][]wheelEntry
	vals    []T      // by slot
	gens    []uint32 // by slot: generation, odd while the slot is in use
	free    []uint32
	n       int
	sleep   int64 // the grid point Run sleeps until (Next), MaxInt64: none
	wake    chan struct{}
	popped  []duePop[T] // PopDue's scratch
}

// duePop is a value PopDue takes, with its grid point.
type duePop[T any] struct {
	due int64
	v   T
}

// notYet is cur before the first pop: grid points before the first
// deadline added (the grid's origin) are as valid as those after it.
const notYet = math.MinInt64 / 4

func ceilDiv(a, b int64) int64 {
	if a > 0 {
		return (a + b - 1) / b
	}
	return a / b // truncation is the ceiling here
}

func floorDiv(a, b int64) int64 {
	if a < 0 {
		return -ceilDiv(-a, b)
	}
	return a / b
}

// wheelEntry is a bucket entry: valid while gens[slot] == gen.
type wheelEntry struct {
	due  int64 // grid point, ticks since base
	slot uint32
	gen  uint32
}

// NewWheel returns an empty set on a grid of tick with a ring of at least
// span ticks (rounded up to a power of two): deadlines further ahead wait
// in their bucket for as many turns as they need.
func NewWheel[T any](tick time.Duration, span int) *Wheel[T] {
	if tick <= 0 {
		panic("timers: NewWheel with a tick <= 0")
	}
	size := 1
	for size < span {
		size *= 2
	}
	return &Wheel[T]{tick: int64(tick), mask: int64(size - 1), buckets: make([][]wheelEntry, size),
		cur: notYet, sleep: math.MaxInt64, wake: make(chan struct{}, 1)}
}

// Add inserts v due at at and returns an ID to cancel it. A deadline in the
// past is due at once (at the next pop). If it falls before the grid point
// a [Wheel.Run] sleeps until, Run wakes up.
func (w *Wheel[T]) Add(at time.Time, v T) ID {
	w.mu.Lock()
	if !w.based {
		w.base, w.based = at, true
	}
	due := max(ceilDiv(int64(at.Sub(w.base)), w.tick), w.cur)
	var slot uint32
	if n := len(w.free); n > 0 {
		slot = w.free[n-1]
		w.free = w.free[:n-1]
	} else {
		slot = uint32(len(w.vals))
		w.vals = append(w.vals, v)
		w.gens = append(w.gens, 0)
	}
	w.vals[slot] = v
	w.gens[slot]++ // odd: in use
	gen := w.gens[slot]
	b := &w.buckets[due&w.mask]
	*b = append(*b, wheelEntry{due: due, slot: slot, gen: gen})
	w.n++
	wake := due < w.sleep
	if wake {
		w.sleep = due
	}
	w.mu.Unlock()
	if wake {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
	return ID(uint64(gen)<<32 | uint64(slot+1))
}

// Cancel removes the deadline id if it is still pending and reports whether
// it was.
func (w *Wheel[T]) Cancel(id ID) bool {
	if uint32(id) == 0 {
		return false
	}
	slot, gen := uint32(id)-1, uint32(id>>32)
	w.mu.Lock()
	defer w.mu.Unlock()
	if int(slot) >= len(w.gens) || w.gens[slot] != gen || gen&1 == 0 {
		return false
	}
	w.release(slot)
	return true
}

// release frees a slot in use; its bucket entry goes stale.
func (w *Wheel[T]) release(slot uint32) {
	var zero T
	w.vals[slot] = zero
	w.gens[slot]++ // even: free
	w.free = append(w.free, slot)
	w.n--
}

// PopDue removes every value due at or before now (on the grid: whose grid
// point is at or before now) and appends them to buf, in the order of
// their grid points, in insertion order within one.
func (w *Wheel[T]) PopDue(now time.Time, buf []T) []T {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.based {
		return buf
	}
	last := floorDiv(int64(now.Sub(w.base)), w.tick)
	if last < w.cur {
		return buf
	}
	// Past a whole turn of the ring every bucket is visited once: each
	// entry due by last is popped there. What one bucket holds is in
	// insertion order, and all the entries of one grid point share a
	// bucket; they come out in grid point order unless a bucket held
	// entries of several turns, or a whole turn was passed: then a stable
	// sort by grid point restores the order.
	from := max(w.cur, last-w.mask)
	popped, sorted := w.popped[:0], true
	for t := from; t <= last; t++ {
		b := w.buckets[t&w.mask]
		k := 0
		for _, e := range b {
			switch {
			case w.gens[e.slot] != e.gen: // cancelled or fired
			case e.due <= last:
				if n := len(popped); n > 0 && popped[n-1].due > e.due {
					sorted = false
				}
				popped = append(popped, duePop[T]{e.due, w.vals[e.slot]})
				w.release(e.slot)
			default: // a later turn
				b[k] = e
				k++
			}
		}
		clear(b[k:])
		w.buckets[t&w.mask] = b[:k]
	}
	if !sorted {
		slices.SortStableFunc(popped, func(a, b duePop[T]) int { return cmp.Compare(a.due, b.due) })
	}
	for _, p := range popped {
		buf = append(buf, p.v)
	}
	clear(popped) // do not keep the values reachable
	w.popped = popped[:0]
	w.cur = last + 1
	if w.sleep <= last {
		w.sleep = math.MaxInt64
	}
	return buf
}

// Next returns the grid point of the earliest pending deadline, or false
// when the set is empty.
func (w *Wheel[T]) Next() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	due, ok := w.next()
	if !ok {
		w.sleep = math.MaxInt64
		return time.Time{}, false
	}
	w.sleep = due
	return w.base.Add(time.Duration(due * w.tick)), true
}

// next finds the earliest pending grid point: the first bucket from cur
// with an entry due on this turn, else (every pending deadline is a turn
// or more away, or nothing was popped yet) the least due of all.
func (w *Wheel[T]) next() (int64, bool) {
	if w.n == 0 {
		return 0, false
	}
	for t := w.cur; w.cur != notYet && t <= w.cur+w.mask; t++ {
		for _, e := range w.buckets[t&w.mask] {
			if e.due == t && w.gens[e.slot] == e.gen {
				return t, true
			}
		}
	}
	least := int64(math.MaxInt64)
	for _, b := range w.buckets {
		for _, e := range b {
			if w.gens[e.slot] == e.gen && e.due < least {
				least = e.due
			}
		}
	}
	return least, true
}

// Len returns the number of pending deadlines.
func (w *Wheel[T]) Len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// Run fires deadlines until ctx is done, as [Deadlines.Run] does: it sleeps
// on one timer of c until the earliest grid point (an Add of an earlier one
// wakes it), pops what is due and calls fire for each, in order, on the
// calling goroutine.
func (w *Wheel[T]) Run(ctx context.Context, c Clock, fire func(T)) {
	runDue(ctx, c, w.Next, w.PopDue, w.wake, fire)
}

// runDue is the loop of Deadlines.Run and Wheel.Run: sleep until next,
// pop what is due, fire it.
func runDue[T any](ctx context.Context, c Clock, next func() (time.Time, bool),
	pop func(time.Time, []T) []T, wake <-chan struct{}, fire func(T)) {
	var t Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	var buf []T
	for ctx.Err() == nil {
		at, ok := next()
		if !ok {
			if t != nil {
				t.Stop() // nothing to wait for: do not leave a stale timer pending
			}
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			continue
		}
		now := c.Now()
		if wait := at.Sub(now); wait > 0 {
			if t == nil {
				t = c.NewTimer(wait)
			} else {
				t.Reset(wait)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			case <-wake:
			}
			continue
		}
		buf = pop(now, buf[:0])
		for _, v := range buf {
			fire(v)
		}
		clear(buf) // do not keep fired values reachable
	}
}
