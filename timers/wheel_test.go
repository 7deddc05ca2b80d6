package timers

import (
	"cmp"
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestWheelModel runs random Adds (some in the past, some many turns of
// the ring ahead), Cancels and pops beside a model: every pop returns
// exactly the pending deadlines whose grid point has come, in grid point
// then insertion order, and Len and Cancel agree with the model.
func TestWheelModel(t *testing.T) {
	const tick = 10 * time.Millisecond
	type pend struct {
		due int64 // grid point
		seq int
		id  ID
	}
	for _, span := range []int{1, 16, 4096} {
		w := NewWheel[int](tick, span)
		r := rand.New(rand.NewPCG(7, uint64(span)))
		now := t0()
		var base time.Time   // the first deadline's: deadlines before it are as valid
		cur := int64(notYet) // the model's first grid point not yet popped
		pending := map[int]pend{}
		gone := []ID{}
		seq := 0
		for step := 0; step < 100_000; step++ {
			switch op := r.IntN(10); {
			case op < 5: // add, from 1 s in the past to 60 s ahead
				at := now.Add(time.Duration(r.IntN(61_000)-1_000) * time.Microsecond * 1001) // off the grid
				if seq == 0 {
					base = at
				}
				due := max(ceilDiv(int64(at.Sub(base)), int64(tick)), cur)
				pending[seq] = pend{due, seq, w.Add(at, seq)}
				seq++
			case op < 7: // cancel a pending one, or a gone one
				if len(gone) > 0 && r.IntN(4) == 0 {
					if w.Cancel(gone[r.IntN(len(gone))]) {
						t.Fatalf("span %d step %d: a fired or cancelled ID cancelled again", span, step)
					}
					continue
				}
				for k, p := range pending {
					if !w.Cancel(p.id) {
						t.Fatalf("span %d step %d: Cancel of pending %d failed", span, step, k)
					}
					delete(pending, k)
					gone = append(gone, p.id)
					break
				}
			default: // time passes (up to 3 s: many buckets at once), pop
				now = now.Add(time.Duration(r.IntN(3_000_000)) * time.Microsecond)
				last := floorDiv(int64(now.Sub(base)), int64(tick))
				var want []pend
				for k, p := range pending {
					if p.due <= last {
						want = append(want, p)
						delete(pending, k)
						gone = append(gone, p.id)
					}
				}
				slices.SortFunc(want, func(a, b pend) int { return cmp.Or(cmp.Compare(a.due, b.due), cmp.Compare(a.seq, b.seq)) })
				got := w.PopDue(now, nil)
				if len(got) != len(want) {
					t.Fatalf("span %d step %d: popped %d, want %d", span, step, len(got), len(want))
				}
				for i := range got {
					if got[i] != want[i].seq {
						t.Fatalf("span %d step %d: pop %d is %d, want %d", span, step, i, got[i], want[i].seq)
					}
				}
				if seq > 0 { // the grid exists once a deadline was added
					cur = max(cur, last+1)
				}
			}
			if w.Len() != len(pending) {
				t.Fatalf("span %d step %d: Len %d, want %d", span, step, w.Len(), len(pending))
			}
			if step%97 == 0 {
				next, ok := w.Next()
				least := int64(-1)
				for _, p := range pending {
					if least < 0 || p.due < least {
						least = p.due
					}
				}
				if ok != (least >= 0) || ok && !next.Equal(base.Add(time.Duration(least)*tick)) {
					t.Fatalf("span %d step %d: Next %v %v, want grid point %d", span, step, next.Sub(base), ok, least)
				}
			}
		}
	}
}

// TestWheelBeforeOrigin: a deadline before the first one added (the
// grid's origin) fires at its own time, not at the origin's.
func TestWheelBeforeOrigin(t *testing.T) {
	w := NewWheel[string](10*time.Millisecond, 64)
	w.Add(t0().Add(30*time.Second), "fr_timer")
	w.Add(t0().Add(500*time.Millisecond), "retransmission")
	if next, _ := w.Next(); !next.Equal(t0().Add(500 * time.Millisecond)) {
		t.Fatalf("Next %v, want 500ms", next.Sub(t0()))
	}
	if got := w.PopDue(t0().Add(499*time.Millisecond), nil); len(got) != 0 {
		t.Fatalf("popped %v early", got)
	}
	if got := w.PopDue(t0().Add(500*time.Millisecond), nil); len(got) != 1 || got[0] != "retransmission" {
		t.Fatalf("popped %v at 500ms", got)
	}
}

// TestWheelReleasesValues: a fired or cancelled value is no longer held.
func TestWheelReleasesValues(t *testing.T) {
	w := NewWheel[*int](time.Millisecond, 8)
	a, b := new(int), new(int)
	w.Add(t0(), a)
	id := w.Add(t0().Add(time.Hour), b)
	w.Cancel(id)
	if got := w.PopDue(t0(), nil); len(got) != 1 || got[0] != a {
		t.Fatalf("popped %v", got)
	}
	for i, v := range w.vals {
		if v != nil {
			t.Fatalf("slot %d still holds a value", i)
		}
	}
}

// TestWheelRun: Run sleeps until the grid point of the earliest deadline,
// an Add of an earlier one wakes it, and a deadline several turns of the
// ring ahead fires at its own grid point.
func TestWheelRun(t *testing.T) {
	f := NewFake(t0())
	w := NewWheel[string](100*time.Millisecond, 4) // a turn is 400 ms
	w.Add(t0(), "base")
	w.Add(t0().Add(10*time.Second+30*time.Millisecond), "late") // 25 turns ahead
	ch := make(chan firing, 10)
	_, stop := start(t, func(ctx context.Context) {
		w.Run(ctx, f, func(v string) { ch <- firing{v, f.Now()} })
	})
	defer stop()
	if got := recv(t, ch); got.v != "base" || !got.at.Equal(t0()) {
		t.Fatalf("fired %+v, want base at 0", got)
	}
	blockUntil(t, f, 1)
	if next, _ := f.Next(); !next.Equal(t0().Add(10100 * time.Millisecond)) {
		t.Fatalf("runner sleeps until %v", next.Sub(t0()))
	}
	w.Add(t0().Add(250*time.Millisecond), "early")
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := f.BlockUntilDue(ctx, t0().Add(300*time.Millisecond)); err != nil {
		t.Fatalf("runner did not re-arm for the earlier deadline: %v", err)
	}
	f.AdvanceNext()
	if got := recv(t, ch); got.v != "early" || !got.at.Equal(t0().Add(300*time.Millisecond)) {
		t.Fatalf("fired %+v, want early at 300ms", got)
	}
	blockUntil(t, f, 1)
	f.AdvanceNext()
	if got := recv(t, ch); got.v != "late" || !got.at.Equal(t0().Add(10100*time.Millisecond)) {
		t.Fatalf("fired %+v, want late at 10.1s", got)
	}
}

// BenchmarkTimerSets: the timers of one relayed request at 2,000/s with
// 20,000 pending besides (a retransmission timer and fr_timer armed and
// cancelled, a 5 s wait armed and popped), on the heap and on a wheel
// with a 10 ms grid.
func BenchmarkTimerSets(b *testing.B) {
	type set interface {
		Add(time.Time, int) ID
		Cancel(ID) bool
		PopDue(time.Time, []int) []int
	}
	run := func(b *testing.B, s set) {
		now := t0()
		for i := range 20_000 {
			s.Add(now.Add(time.Duration(i)*250*time.Microsecond), i) // 5 s of waits
		}
		var buf []int
		for b.Loop() {
			now = now.Add(500 * time.Microsecond) // 2,000/s
			r := s.Add(now.Add(500*time.Millisecond), 1)
			fr := s.Add(now.Add(30*time.Second), 2)
			s.Cancel(r)
			s.Cancel(fr)
			s.Add(now.Add(5*time.Second), 3)
			s.Add(now.Add(5*time.Second), 4)
			buf = s.PopDue(now, buf[:0])
		}
	}
	b.Run("heap", func(b *testing.B) { run(b, NewDeadlines[int]()) })
	b.Run("wheel", func(b *testing.B) { run(b, NewWheel[int](10*time.Millisecond, 4096)) })
}
