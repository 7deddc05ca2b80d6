package timers

import (
	"container/heap"
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"
)

const benchPending = 50_000

type benchReq struct{ _ [64]byte } // stands for a suspended transaction

// deadlineSet is what the benchmarks compare: Deadlines and a naive
// alternative (pointer heap from container/heap plus a map for Cancel).
type deadlineSet interface {
	Add(at time.Time, v *benchReq) ID
	Cancel(id ID) bool
	PopDue(now time.Time, buf []*benchReq) []*benchReq
}

type benchImpl struct {
	name string
	new  func() deadlineSet
}

func benchImpls() []benchImpl {
	return []benchImpl{
		{"indexed", func() deadlineSet { return NewDeadlines[*benchReq]() }},
		{"containerheap+map", func() deadlineSet { return newNaive() }},
	}
}

// BenchmarkDeadlinesAddPopDue: 50,000 pending deadlines within 0..60 s;
// each op adds one 0..60 s ahead, moves time 1.2 ms and pops what is due
// (one value per op on average): the async steady state.
func BenchmarkDeadlinesAddPopDue(b *testing.B) {
	for _, impl := range benchImpls() {
		b.Run(impl.name, func(b *testing.B) {
			d := impl.new()
			r := rand.New(rand.NewPCG(1, 1))
			v := new(benchReq)
			const span = 60 * time.Second
			step := span / benchPending
			for range benchPending {
				d.Add(t0().Add(time.Duration(r.Int64N(int64(span)))), v)
			}
			now := t0()
			buf := make([]*benchReq, 0, 64)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				d.Add(now.Add(time.Duration(r.Int64N(int64(span)))), v)
				now = now.Add(step)
				buf = d.PopDue(now, buf[:0])
			}
		})
	}
}

// BenchmarkDeadlinesAddCancel: 50,000 pending; each op adds one and cancels
// a random pending one (a CANCEL or a reply arriving before the resume).
func BenchmarkDeadlinesAddCancel(b *testing.B) {
	for _, impl := range benchImpls() {
		b.Run(impl.name, func(b *testing.B) {
			d := impl.new()
			r := rand.New(rand.NewPCG(2, 2))
			v := new(benchReq)
			ids := make([]ID, benchPending)
			for i := range ids {
				ids[i] = d.Add(t0().Add(time.Duration(r.Int64N(int64(time.Minute)))), v)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				i := r.IntN(benchPending)
				if !d.Cancel(ids[i]) {
					b.Fatal("Cancel failed")
				}
				ids[i] = d.Add(t0().Add(time.Duration(r.Int64N(int64(time.Minute)))), v)
			}
		})
	}
}

// BenchmarkDeadlinesMemory reports the heap bytes held per pending deadline
// with 50,000 pending, the values themselves excluded (all share one
// pointer). B/entry includes the append growth slack.
func BenchmarkDeadlinesMemory(b *testing.B) {
	for _, impl := range benchImpls() {
		b.Run(impl.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 3))
			v := new(benchReq)
			var perEntry float64
			b.ReportAllocs()
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				d := impl.new()
				for range benchPending {
					d.Add(t0().Add(time.Duration(r.Int64N(int64(time.Minute)))), v)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				perEntry = float64(after.HeapAlloc-before.HeapAlloc) / benchPending
				runtime.KeepAlive(d)
			}
			b.ReportMetric(perEntry, "B/entry")
		})
	}
}

// BenchmarkDeadlinesRealPrecision measures, on the real clock, how late
// Deadlines.Run fires: "idle" fires 200 lone deadlines 2 ms apart; "50k"
// fires 50,000 deadlines spread over 2 s. It reports the p50, p99 and
// maximum lateness in ms. Run it with -benchtime=1x.
func BenchmarkDeadlinesRealPrecision(b *testing.B) {
	for _, tc := range []struct {
		name   string
		n      int
		spread time.Duration
	}{
		{"idle", 200, 400 * time.Millisecond},
		{"50k", benchPending, 2 * time.Second},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := Real()
			var late []time.Duration
			for b.Loop() {
				late = realLateness(c, tc.n, tc.spread)
			}
			slices.Sort(late)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(late[len(late)/2]), "ms-p50")
			b.ReportMetric(ms(late[len(late)*99/100]), "ms-p99")
			b.ReportMetric(ms(late[len(late)-1]), "ms-max")
		})
	}
}

func realLateness(c Clock, n int, spread time.Duration) []time.Duration {
	d := NewDeadlines[time.Time]()
	late := make([]time.Duration, 0, n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx, c, func(due time.Time) {
			late = append(late, c.Now().Sub(due))
			if len(late) == n {
				cancel()
			}
		})
	}()
	base := c.Now().Add(50 * time.Millisecond)
	for i := range n {
		due := base.Add(spread * time.Duration(i) / time.Duration(n))
		d.Add(due, due)
	}
	<-done
	return late
}

// naive is the textbook alternative: one allocated entry per deadline in a
// container/heap, and a map from ID to entry for Cancel.
type naive struct {
	h   naiveHeap
	m   map[ID]*naiveEntry
	seq uint64
}

type naiveEntry struct {
	at  time.Time
	seq uint64
	v   *benchReq
	idx int
}

func newNaive() *naive { return &naive{m: make(map[ID]*naiveEntry)} }

func (n *naive) Add(at time.Time, v *benchReq) ID {
	n.seq++
	e := &naiveEntry{at: at, seq: n.seq, v: v}
	heap.Push(&n.h, e)
	n.m[ID(n.seq)] = e
	return ID(n.seq)
}

func (n *naive) Cancel(id ID) bool {
	e, ok := n.m[id]
	if !ok {
		return false
	}
	delete(n.m, id)
	heap.Remove(&n.h, e.idx)
	return true
}

func (n *naive) PopDue(now time.Time, buf []*benchReq) []*benchReq {
	for len(n.h) > 0 && !n.h[0].at.After(now) {
		e := heap.Pop(&n.h).(*naiveEntry)
		delete(n.m, ID(e.seq))
		buf = append(buf, e.v)
	}
	return buf
}

type naiveHeap []*naiveEntry

func (h naiveHeap) Len() int { return len(h) }
func (h naiveHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h naiveHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *naiveHeap) Push(x any)   { e := x.(*naiveEntry); e.idx = len(*h); *h = append(*h, e) }
func (h *naiveHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
