package timers

import (
	"context"
	"sync"
	"time"
)

// ID names a pending deadline so that it can be cancelled. The zero ID is
// never returned by Add.
//
// An ID holds a slot number and the low 32 bits of the entry's sequence
// number, so once its entry has fired or been cancelled the ID stays invalid
// when the slot is reused; it could only match an entry that reuses the
// same slot a multiple of 2^32 Adds later.
type ID uint64

// Deadlines is a set of one-shot deadlines carrying values of type T: an
// indexed binary min-heap keyed by time, first in first out among equal
// times. Add and Cancel take O(log n), PopDue O(log n) per value, and no
// goroutine or allocation is spent per deadline once the backing arrays
// have grown. A pending deadline costs 28 bytes plus the size of T (a
// 24-byte heap entry, the value, a 4-byte heap position), 4 more once its
// slot is on the free list; with append slack, 50,000 pending pointer
// values measure 44 bytes each. The arrays keep their high-water size. At
// most 2^31 deadlines can be pending at once.
//
// Every method is safe for concurrent use. Create Deadlines with
// [NewDeadlines]; the zero value is not usable.
type Deadlines[T any] struct {
	mu    sync.Mutex
	heap  []dlItem
	vals  []T      // by slot
	pos   []int32  // by slot: position in heap, -1 when the slot is free
	free  []uint32 // free slots, reused last in first out
	seq   uint64   // Add counter
	base  time.Time
	based bool
	wake  chan struct{} // Add of a new earliest deadline wakes Run
}

// dlItem is a heap entry: 24 bytes.
type dlItem struct {
	at   int64  // nanoseconds since base
	seq  uint64 // FIFO among equal at; low 32 bits are the ID's generation
	slot uint32
}

func (a dlItem) less(b dlItem) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.seq < b.seq
}

// NewDeadlines returns an empty set.
func NewDeadlines[T any]() *Deadlines[T] {
	return &Deadlines[T]{wake: make(chan struct{}, 1)}
}

// Add inserts v due at at and returns an ID to cancel it. A deadline in the
// past is due at once. If it becomes the earliest deadline, a [Deadlines.Run]
// sleeping on a later one wakes up.
func (d *Deadlines[T]) Add(at time.Time, v T) ID {
	d.mu.Lock()
	if !d.based {
		d.base, d.based = at, true
	}
	d.seq++
	var slot uint32
	if n := len(d.free); n > 0 {
		slot = d.free[n-1]
		d.free = d.free[:n-1]
		d.vals[slot] = v
	} else {
		slot = uint32(len(d.vals))
		d.vals = append(d.vals, v)
		d.pos = append(d.pos, 0)
	}
	i := len(d.heap)
	d.heap = append(d.heap, dlItem{at: int64(at.Sub(d.base)), seq: d.seq, slot: slot})
	d.pos[slot] = int32(i)
	d.up(i)
	first := d.pos[slot] == 0
	id := ID(uint64(uint32(d.seq))<<32 | uint64(slot+1))
	d.mu.Unlock()
	if first {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return id
}

// Cancel removes the deadline named by id. It reports whether it did: false
// when the deadline has already been popped (fired) or cancelled, or when id
// is not one of this set's.
func (d *Deadlines[T]) Cancel(id ID) bool {
	if uint32(id) == 0 {
		return false
	}
	slot, gen := uint32(id)-1, uint32(id>>32)
	d.mu.Lock()
	defer d.mu.Unlock()
	if int(slot) >= len(d.pos) {
		return false
	}
	p := d.pos[slot]
	if p < 0 || uint32(d.heap[p].seq) != gen {
		return false
	}
	d.removeAt(int(p))
	d.release(slot)
	return true
}

// PopDue removes every value due at or before now and appends them to buf
// in deadline order (insertion order among equal deadlines).
func (d *Deadlines[T]) PopDue(now time.Time, buf []T) []T {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.heap) == 0 {
		return buf
	}
	off := int64(now.Sub(d.base))
	for len(d.heap) > 0 && d.heap[0].at <= off {
		slot := d.heap[0].slot
		d.removeAt(0)
		buf = append(buf, d.vals[slot])
		d.release(slot)
	}
	return buf
}

// Next returns the earliest deadline, or false when the set is empty.
func (d *Deadlines[T]) Next() (time.Time, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.heap) == 0 {
		return time.Time{}, false
	}
	return d.base.Add(time.Duration(d.heap[0].at)), true
}

// Len returns the number of pending deadlines.
func (d *Deadlines[T]) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.heap)
}

// Run fires deadlines until ctx is done. It sleeps on one timer of c until
// the earliest deadline (an Add of an earlier one wakes it), pops every due
// value and calls fire for each, in order, on the calling goroutine. Values
// popped together are all fired even if ctx ends meanwhile; values still
// pending when Run returns stay in the set. One Run per set is the intended
// use; several are safe but gain nothing.
func (d *Deadlines[T]) Run(ctx context.Context, c Clock, fire func(T)) {
	runDue(ctx, c, d.Next, d.PopDue, d.wake, fire)
}

// removeAt deletes heap[i], keeping the heap and pos consistent. The slot
// of the removed entry is left for the caller to release.
func (d *Deadlines[T]) removeAt(i int) {
	last := len(d.heap) - 1
	if i != last {
		d.heap[i] = d.heap[last]
		d.pos[d.heap[i].slot] = int32(i)
	}
	d.heap = d.heap[:last]
	if i != last {
		if !d.down(i) {
			d.up(i)
		}
	}
}

// release frees a slot whose entry has left the heap.
func (d *Deadlines[T]) release(slot uint32) {
	var zero T
	d.vals[slot] = zero
	d.pos[slot] = -1
	d.free = append(d.free, slot)
}

func (d *Deadlines[T]) up(i int) {
	it := d.heap[i]
	for i > 0 {
		p := (i - 1) / 2
		if !it.less(d.heap[p]) {
			break
		}
		d.heap[i] = d.heap[p]
		d.pos[d.heap[i].slot] = int32(i)
		i = p
	}
	d.heap[i] = it
	d.pos[it.slot] = int32(i)
}

// down sifts heap[i] down and reports whether it moved.
func (d *Deadlines[T]) down(i int) bool {
	n := len(d.heap)
	it := d.heap[i]
	start := i
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && d.heap[r].less(d.heap[c]) {
			c = r
		}
		if !d.heap[c].less(it) {
			break
		}
		d.heap[i] = d.heap[c]
		d.pos[d.heap[i].slot] = int32(i)
		i = c
	}
	d.heap[i] = it
	d.pos[it.slot] = int32(i)
	return i != start
}
