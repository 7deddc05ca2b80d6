package timers

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// check verifies the heap property and the slot bookkeeping.
func (d *Deadlines[T]) check(tb testing.TB) {
	tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, it := range d.heap {
		if i > 0 && it.less(d.heap[(i-1)/2]) {
			tb.Fatalf("heap[%d] is less than its parent", i)
		}
		if got := d.pos[it.slot]; int(got) != i {
			tb.Fatalf("pos[%d] = %d, want %d", it.slot, got, i)
		}
	}
	free := 0
	for _, p := range d.pos {
		if p < 0 {
			free++
		}
	}
	if free != len(d.free) || len(d.pos) != len(d.heap)+free {
		tb.Fatalf("%d free slots, %d in free list, %d slots, %d in heap", free, len(d.free), len(d.pos), len(d.heap))
	}
}

func TestDeadlinesOrder(t *testing.T) {
	d := NewDeadlines[int]()
	if _, ok := d.Next(); ok || d.Len() != 0 {
		t.Fatal("new set is not empty")
	}
	if got := d.PopDue(t0().Add(time.Hour), nil); len(got) != 0 {
		t.Fatalf("PopDue on an empty set = %v", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	const n = 1000
	ats := make([]time.Duration, n)
	for i := range n {
		ats[i] = time.Duration(r.IntN(500)) * time.Millisecond // many ties
		d.Add(t0().Add(ats[i]), i)
	}
	d.check(t)
	if d.Len() != n {
		t.Fatalf("Len() = %d", d.Len())
	}
	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	// Deadline order, insertion order among equal deadlines.
	slices.SortStableFunc(want, func(a, b int) int { return cmp.Compare(ats[a], ats[b]) })
	if next, _ := d.Next(); !next.Equal(t0().Add(ats[want[0]])) {
		t.Fatalf("Next() = %v, want %v", next, t0().Add(ats[want[0]]))
	}
	got := d.PopDue(t0().Add(time.Hour), []int{-1})
	if got[0] != -1 || !slices.Equal(got[1:], want) {
		t.Fatalf("PopDue order wrong (or buf not appended to):\n got %v\nwant %v", got[:10], want[:10])
	}
	if d.Len() != 0 {
		t.Fatalf("Len() = %d after popping everything", d.Len())
	}
	d.check(t)
}

func TestDeadlinesFIFOTies(t *testing.T) {
	d := NewDeadlines[string]()
	at := t0().Add(time.Second)
	d.Add(at, "a")
	d.Add(at.Add(time.Nanosecond), "late")
	d.Add(at, "b")
	d.Add(at.Add(-time.Nanosecond), "early")
	d.Add(at, "c")
	got := d.PopDue(at, nil)
	if want := []string{"early", "a", "b", "c"}; !slices.Equal(got, want) {
		t.Fatalf("PopDue = %v, want %v", got, want)
	}
}

func TestDeadlinesPopDueBoundary(t *testing.T) {
	d := NewDeadlines[int]()
	for i := 1; i <= 5; i++ {
		d.Add(t0().Add(time.Duration(i)*time.Second), i)
	}
	if got := d.PopDue(t0().Add(time.Second-1), nil); len(got) != 0 {
		t.Fatalf("PopDue before the first deadline = %v", got)
	}
	if got := d.PopDue(t0().Add(3*time.Second), nil); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("PopDue(3s) = %v, want deadlines at or before 3s", got)
	}
	if next, ok := d.Next(); !ok || !next.Equal(t0().Add(4*time.Second)) || d.Len() != 2 {
		t.Fatalf("Next() = %v %v, Len() = %d", next, ok, d.Len())
	}
}

func TestDeadlinesCancel(t *testing.T) {
	d := NewDeadlines[int]()
	ids := make([]ID, 10)
	for i := range ids {
		ids[i] = d.Add(t0().Add(time.Duration(i)*time.Second), i)
		if ids[i] == 0 {
			t.Fatal("Add returned the zero ID")
		}
	}
	if !d.Cancel(ids[0]) {
		t.Fatal("Cancel(head) = false")
	}
	if next, _ := d.Next(); !next.Equal(t0().Add(time.Second)) {
		t.Fatalf("Next() after cancelling the head = %v", next)
	}
	if !d.Cancel(ids[5]) {
		t.Fatal("Cancel(middle) = false")
	}
	if d.Cancel(ids[5]) {
		t.Fatal("second Cancel = true")
	}
	if !d.Cancel(ids[9]) {
		t.Fatal("Cancel(last) = false")
	}
	d.check(t)
	if got := d.PopDue(t0().Add(2*time.Second), nil); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("PopDue = %v", got)
	}
	if d.Cancel(ids[1]) {
		t.Fatal("Cancel of a fired deadline = true")
	}
	for _, id := range []ID{0, 1 << 40, ID(^uint64(0))} {
		if d.Cancel(id) {
			t.Fatalf("Cancel(%#x) = true", uint64(id))
		}
	}
	// Freed slots are reused: stale IDs must not cancel the new entries.
	d.Add(t0(), 100)
	n2 := d.Add(t0(), 101)
	for _, id := range ids[:3] {
		if d.Cancel(id) {
			t.Fatalf("stale ID %#x cancelled a new entry", uint64(id))
		}
	}
	if !d.Cancel(n2) || d.Len() != 6 {
		t.Fatalf("Cancel(new) failed or Len() = %d", d.Len())
	}
	if got := d.PopDue(t0().Add(time.Hour), nil); !slices.Equal(got, []int{100, 3, 4, 6, 7, 8}) {
		t.Fatalf("PopDue = %v", got)
	}
	d.check(t)
}

// TestDeadlinesModel checks random Add/Cancel/PopDue sequences against a
// naive sorted-slice model.
func TestDeadlinesModel(t *testing.T) {
	type ent struct {
		at  time.Duration
		seq int
		id  ID
	}
	r := rand.New(rand.NewPCG(3, 4))
	d := NewDeadlines[int]()
	var model []ent
	var stale []ID
	now := time.Duration(0)
	seq := 0
	for step := range 20000 {
		switch op := r.IntN(10); {
		case op < 5:
			at := now + time.Duration(r.IntN(1000))*time.Millisecond
			seq++
			model = append(model, ent{at, seq, d.Add(t0().Add(at), seq)})
		case op < 7 && len(model) > 0:
			i := r.IntN(len(model))
			if !d.Cancel(model[i].id) {
				t.Fatalf("step %d: Cancel of a pending entry = false", step)
			}
			stale = append(stale, model[i].id)
			model = slices.Delete(model, i, i+1)
		case op < 8 && len(stale) > 0:
			if d.Cancel(stale[r.IntN(len(stale))]) {
				t.Fatalf("step %d: Cancel of a stale ID = true", step)
			}
		default:
			now += time.Duration(r.IntN(300)) * time.Millisecond
			slices.SortStableFunc(model, func(a, b ent) int {
				return cmp.Or(cmp.Compare(a.at, b.at), cmp.Compare(a.seq, b.seq))
			})
			var want []int
			for len(model) > 0 && model[0].at <= now {
				want = append(want, model[0].seq)
				stale = append(stale, model[0].id)
				model = model[1:]
			}
			if got := d.PopDue(t0().Add(now), nil); !slices.Equal(got, want) {
				t.Fatalf("step %d: PopDue = %v, want %v", step, got, want)
			}
		}
		if d.Len() != len(model) {
			t.Fatalf("step %d: Len() = %d, want %d", step, d.Len(), len(model))
		}
	}
	d.check(t)
}

func TestDeadlinesReleasesValues(t *testing.T) {
	d := NewDeadlines[*int]()
	id := d.Add(t0(), new(int))
	d.Add(t0(), new(int))
	d.Cancel(id)
	d.PopDue(t0(), nil)
	for i, v := range d.vals {
		if v != nil {
			t.Fatalf("slot %d still references its value", i)
		}
	}
}

func TestDeadlinesConcurrent(t *testing.T) {
	d := NewDeadlines[int]()
	const producers, per = 8, 2000
	var mu sync.Mutex
	seen := make(map[int]int)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(p), 0))
			for i := range per {
				v := p*per + i
				id := d.Add(t0().Add(time.Duration(r.IntN(100))), v)
				if r.IntN(3) == 0 && d.Cancel(id) {
					mu.Lock()
					seen[v]++
					mu.Unlock()
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			var buf []int
			for range 500 {
				buf = d.PopDue(t0().Add(50), buf[:0])
				mu.Lock()
				for _, v := range buf {
					seen[v]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, v := range d.PopDue(t0().Add(time.Hour), nil) {
		seen[v]++
	}
	if len(seen) != producers*per {
		t.Fatalf("%d values delivered or cancelled, want %d", len(seen), producers*per)
	}
	for v, n := range seen {
		if n != 1 {
			t.Fatalf("value %d delivered or cancelled %d times", v, n)
		}
	}
	d.check(t)
}

// TestDeadlinesRunWakesEarlier: the runner sleeps on a 10 s deadline; adding
// a 1 s one must make it re-arm for 1 s and fire it then.
func TestDeadlinesRunWakesEarlier(t *testing.T) {
	f := NewFake(t0())
	d := NewDeadlines[string]()
	d.Add(t0().Add(10*time.Second), "late")
	fires, stop := runFiring(t, d, f)
	blockUntil(t, f, 1)
	if next, _ := f.Next(); !next.Equal(t0().Add(10 * time.Second)) {
		t.Fatalf("runner sleeps until %v", next)
	}
	d.Add(t0().Add(time.Second), "early")
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := f.BlockUntilDue(ctx, t0().Add(time.Second)); err != nil {
		t.Fatalf("runner did not re-arm for the earlier deadline: %v", err)
	}
	f.AdvanceNext()
	if got := recv(t, fires); got.v != "early" || !got.at.Equal(t0().Add(time.Second)) {
		t.Fatalf("fired %+v, want early at 1s", got)
	}
	blockUntil(t, f, 1)
	f.AdvanceNext()
	if got := recv(t, fires); got.v != "late" || !got.at.Equal(t0().Add(10*time.Second)) {
		t.Fatalf("fired %+v, want late at 10s", got)
	}

	// Empty set: the runner leaves no timer pending and an Add wakes it.
	ctx2, cancel2 := context.WithTimeout(context.Background(), guard)
	defer cancel2()
	if err := f.wait(ctx2, func() bool { return len(f.timers) == 0 }); err != nil {
		t.Fatal(err)
	}
	d.Add(f.Now(), "now")
	if got := recv(t, fires); got.v != "now" {
		t.Fatalf("fired %+v", got)
	}
	stop()
	if f.Pending() != 0 {
		t.Fatalf("Run left %d timers pending", f.Pending())
	}
	select {
	case got := <-fires:
		t.Fatalf("unexpected firing %+v", got)
	default:
	}
}

// TestDeadlinesRun50k: 50,000 random deadlines driven by the fake clock all
// fire exactly once, in order, each exactly at its deadline.
func TestDeadlinesRun50k(t *testing.T) {
	const n = 50_000
	f := NewFake(t0())
	d := NewDeadlines[int]()
	r := rand.New(rand.NewPCG(5, 6))
	ats := make([]time.Time, n)
	for i := range n {
		ats[i] = t0().Add(time.Duration(1+r.IntN(30_000)) * time.Millisecond) // ms grid: ties
		d.Add(ats[i], i)
	}
	type firing struct {
		v  int
		at time.Time
	}
	var mu sync.Mutex
	var got []firing
	all := make(chan struct{})
	_, stop := start(t, func(ctx context.Context) {
		d.Run(ctx, f, func(v int) {
			mu.Lock()
			got = append(got, firing{v, f.Now()})
			if len(got) == n {
				close(all)
			}
			mu.Unlock()
		})
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-all; cancel() }()
	for {
		if f.BlockUntilContext(ctx, 1) != nil {
			break
		}
		f.AdvanceNext()
	}
	recv(t, all)
	stop()

	want := make([]int, n)
	for i := range want {
		want[i] = i
	}
	slices.SortStableFunc(want, func(a, b int) int { return ats[a].Compare(ats[b]) })
	mu.Lock()
	defer mu.Unlock()
	if len(got) != n {
		t.Fatalf("%d firings, want %d", len(got), n)
	}
	for i, g := range got {
		if g.v != want[i] {
			t.Fatalf("firing %d is value %d, want %d", i, g.v, want[i])
		}
		if !g.at.Equal(ats[g.v]) {
			t.Fatalf("value %d fired at %v, due %v", g.v, g.at, ats[g.v])
		}
	}
	if d.Len() != 0 {
		t.Fatalf("Len() = %d", d.Len())
	}
}

func TestDeadlinesRunCancel(t *testing.T) {
	f := NewFake(t0())
	d := NewDeadlines[int]()
	d.Add(t0().Add(time.Second), 1)
	fired := 0
	done, stop := start(t, func(ctx context.Context) { d.Run(ctx, f, func(int) { fired++ }) })
	blockUntil(t, f, 1)
	select {
	case <-done:
		t.Fatal("Run returned before cancel")
	default:
	}
	stop()
	f.Advance(time.Hour)
	if fired != 0 || d.Len() != 1 || f.Pending() != 0 {
		t.Fatalf("fired=%d Len()=%d pending=%d after cancel", fired, d.Len(), f.Pending())
	}
}

// TestRealClockSanity is the one test on the real clock: deadlines and a
// schedule fire in order, never early, and within generous bounds (a guard against a timer
// that does not fire on time at all, not a latency measurement: two busy cores under -race
// can delay a wake-up by hundreds of milliseconds).
func TestRealClockSanity(t *testing.T) {
	const slack = 5 * time.Second
	c := Real()

	t.Run("deadlines", func(t *testing.T) {
		d := NewDeadlines[time.Time]()
		type firing struct{ due, at time.Time }
		fires := make(chan firing, 3)
		_, stop := start(t, func(ctx context.Context) {
			d.Run(ctx, c, func(due time.Time) { fires <- firing{due, c.Now()} })
		})
		defer stop()
		now := c.Now()
		for _, ms := range []int{60, 20, 40} {
			due := now.Add(time.Duration(ms) * time.Millisecond)
			d.Add(due, due)
		}
		var prev time.Time
		for range 3 {
			f := recv(t, fires)
			if late := f.at.Sub(f.due); late < 0 || late > slack {
				t.Errorf("deadline fired %v late", late)
			}
			if f.due.Before(prev) {
				t.Errorf("fired out of order")
			}
			prev = f.due
		}
	})

	t.Run("schedule", func(t *testing.T) {
		const iv = 5 * time.Millisecond
		s := NewSchedule(c.Now(), iv)
		type run struct {
			tick, at time.Time
			skipped  int
		}
		runs := make(chan run, 5)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		RunSchedule(ctx, c, s, func(tick time.Time, skipped int) {
			runs <- run{tick, c.Now(), skipped}
			if n++; n == 5 {
				cancel()
			}
		})
		close(runs)
		k := 0
		for r := range runs {
			k += 1 + r.skipped
			if want := s.Start().Add(time.Duration(k) * iv); !r.tick.Equal(want) {
				t.Errorf("tick %v, want %v on the grid", r.tick, want)
			}
			if late := r.at.Sub(r.tick); late < 0 || late > slack {
				t.Errorf("tick ran %v late", late)
			}
		}
	})
}
