package timers

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestFakeNowAndAdvance(t *testing.T) {
	f := NewFake(t0())
	if got := f.Now(); !got.Equal(t0()) {
		t.Fatalf("Now() = %v, want %v", got, t0())
	}
	f.Advance(1500 * time.Millisecond)
	f.Advance(0)
	if got, want := f.Now(), t0().Add(1500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Advance(-1) did not panic")
		}
	}()
	f.Advance(-1)
}

func TestFakeFiresInDeadlineOrder(t *testing.T) {
	f := NewFake(t0())
	durs := []time.Duration{3 * time.Second, time.Second, 2 * time.Second, time.Second, 5 * time.Second}
	timers := make([]Timer, len(durs))
	for i, d := range durs {
		timers[i] = f.NewTimer(d)
	}
	if got := f.Pending(); got != len(durs) {
		t.Fatalf("Pending() = %d, want %d", got, len(durs))
	}
	// Each AdvanceNext must fire exactly the timers due at the earliest
	// deadline, with Now() and the value sent equal to that deadline.
	steps := []struct {
		at    time.Duration
		fires []int
	}{
		{time.Second, []int{1, 3}},
		{2 * time.Second, []int{2}},
		{3 * time.Second, []int{0}},
		{5 * time.Second, []int{4}},
	}
	for _, st := range steps {
		at, ok := f.AdvanceNext()
		want := t0().Add(st.at)
		if !ok || !at.Equal(want) || !f.Now().Equal(want) {
			t.Fatalf("AdvanceNext() = %v, %v, Now() = %v; want %v", at, ok, f.Now(), want)
		}
		for i, tm := range timers {
			v, got := fired(tm.C())
			should := slices.Contains(st.fires, i)
			if got != should {
				t.Fatalf("at %v: timer %d fired=%v, want %v", st.at, i, got, should)
			}
			if got && !v.Equal(want) {
				t.Fatalf("timer %d sent %v, want %v", i, v, want)
			}
		}
	}
	if _, ok := f.AdvanceNext(); ok {
		t.Fatal("AdvanceNext() with no pending timer reported true")
	}
	if !f.Now().Equal(t0().Add(5 * time.Second)) {
		t.Fatalf("AdvanceNext() with no pending timer moved the time to %v", f.Now())
	}
}

func TestFakeAdvanceFiresAllDue(t *testing.T) {
	f := NewFake(t0())
	a := f.NewTimer(time.Second)
	b := f.NewTimer(2 * time.Second)
	c := f.NewTimer(3 * time.Second)
	f.Advance(2 * time.Second) // b is due exactly at the new time: it fires
	if v, ok := fired(a.C()); !ok || !v.Equal(t0().Add(time.Second)) {
		t.Fatalf("a: %v %v", v, ok)
	}
	if v, ok := fired(b.C()); !ok || !v.Equal(t0().Add(2*time.Second)) {
		t.Fatalf("b: %v %v", v, ok)
	}
	if _, ok := fired(c.C()); ok {
		t.Fatal("c fired early")
	}
	if next, ok := f.Next(); !ok || !next.Equal(t0().Add(3*time.Second)) {
		t.Fatalf("Next() = %v %v", next, ok)
	}
}

func TestFakeTimerStop(t *testing.T) {
	f := NewFake(t0())
	tm := f.NewTimer(time.Second)
	if !tm.Stop() {
		t.Fatal("Stop() of a pending timer = false")
	}
	if tm.Stop() {
		t.Fatal("second Stop() = true")
	}
	if f.Pending() != 0 {
		t.Fatalf("Pending() = %d after Stop", f.Pending())
	}
	f.Advance(time.Hour)
	if _, ok := fired(tm.C()); ok {
		t.Fatal("stopped timer fired")
	}

	// Fired but not received: Stop reports false and drops the stale value
	// (Go 1.23 time.Timer contract).
	tm = f.NewTimer(time.Second)
	f.Advance(time.Second)
	if tm.Stop() {
		t.Fatal("Stop() of a fired timer = true")
	}
	if _, ok := fired(tm.C()); ok {
		t.Fatal("stale value received after Stop")
	}
}

func TestFakeTimerReset(t *testing.T) {
	f := NewFake(t0())
	tm := f.NewTimer(time.Second)
	if !tm.Reset(3 * time.Second) {
		t.Fatal("Reset() of a pending timer = false")
	}
	f.Advance(2 * time.Second)
	if _, ok := fired(tm.C()); ok {
		t.Fatal("fired at the old deadline")
	}
	f.Advance(time.Second)
	if v, ok := fired(tm.C()); !ok || !v.Equal(t0().Add(3*time.Second)) {
		t.Fatalf("after Reset: %v %v", v, ok)
	}

	// Reset after firing reports false and re-arms relative to Now.
	if tm.Reset(time.Second) {
		t.Fatal("Reset() of a fired timer = true")
	}
	f.Advance(time.Second)
	if v, ok := fired(tm.C()); !ok || !v.Equal(t0().Add(4*time.Second)) {
		t.Fatalf("after re-arm: %v %v", v, ok)
	}

	// Reset of a fired, unreceived timer drops the stale value.
	tm.Reset(time.Second)
	f.Advance(time.Second)
	tm.Reset(time.Second)
	if _, ok := fired(tm.C()); ok {
		t.Fatal("stale value received after Reset")
	}

	// Reset(0) and NewTimer(0) fire at once and are never pending.
	tm.Reset(0)
	if v, ok := fired(tm.C()); !ok || !v.Equal(f.Now()) {
		t.Fatalf("Reset(0): %v %v", v, ok)
	}
	z := f.NewTimer(-time.Second)
	if v, ok := fired(z.C()); !ok || !v.Equal(f.Now()) {
		t.Fatalf("NewTimer(<0): %v %v", v, ok)
	}
	if f.Pending() != 0 {
		t.Fatalf("Pending() = %d", f.Pending())
	}
}

func TestFakeBlockUntil(t *testing.T) {
	f := NewFake(t0())
	arm := make(chan struct{})
	go func() {
		for range arm {
			f.NewTimer(time.Second)
		}
	}()
	defer close(arm)

	done := make(chan struct{})
	go func() {
		f.BlockUntil(2)
		close(done)
	}()
	arm <- struct{}{}
	blockUntil(t, f, 1)
	select {
	case <-done:
		t.Fatal("BlockUntil(2) returned with 1 pending timer")
	default:
	}
	arm <- struct{}{}
	recv(t, done)

	// BlockUntil counts pending timers only: fired ones no longer count.
	f.Advance(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.BlockUntilContext(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("BlockUntilContext(cancelled) = %v", err)
	}
	if err := f.BlockUntilContext(ctx, 0); err != nil {
		t.Fatalf("BlockUntilContext(0) = %v", err)
	}

	// A cancel arriving while it waits wakes it up.
	ctx, cancel = context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.BlockUntilContext(ctx, 5) }()
	cancel()
	if err := recv(t, errc); !errors.Is(err, context.Canceled) {
		t.Fatalf("BlockUntilContext = %v", err)
	}
}

func TestFakeBlockUntilDue(t *testing.T) {
	f := NewFake(t0())
	tm := f.NewTimer(10 * time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.BlockUntilDue(ctx, t0().Add(time.Second)) }()
	select {
	case err := <-errc:
		t.Fatalf("BlockUntilDue returned early: %v", err)
	default:
	}
	tm.Reset(time.Second)
	if err := recv(t, errc); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := f.BlockUntilDue(ctx, t0()); !errors.Is(err, context.Canceled) {
		t.Fatalf("BlockUntilDue(cancelled) = %v", err)
	}
}
