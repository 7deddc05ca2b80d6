package workers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// idRunner records which worker ran each task; a task "hold" blocks until
// release is closed, a task "signal" closes started.
type idRunner struct {
	id      int
	mu      *sync.Mutex
	ran     map[int][]int // worker -> tasks, in run order
	release chan struct{}
	started chan struct{}
}

func (r *idRunner) Run(t any) {
	switch t {
	case "hold":
		close(r.started)
		<-r.release
		return
	}
	r.mu.Lock()
	r.ran[r.id] = append(r.ran[r.id], t.(int))
	r.mu.Unlock()
}
func (r *idRunner) Close() {}

func TestSubmitToRunsOnThatWorkerOnly(t *testing.T) {
	var mu sync.Mutex
	ran := map[int][]int{}
	g, err := NewGroup(Options{Name: "t", Workers: 4}, func(i int) (Runner[any], error) {
		return &idRunner{id: i, mu: &mu, ran: ran}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := p; i < n; i += 4 {
				if err := g.SubmitTo(context.Background(), i%4, i); err != nil {
					t.Error(err)
				}
				if err := g.Submit(context.Background(), n+i); err != nil { // shared traffic meanwhile
					t.Error(err)
				}
			}
		}(p)
	}
	wg.Wait()
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for w, tasks := range ran {
		for _, task := range tasks {
			total++
			if task < n && task%4 != w {
				t.Fatalf("task %d for worker %d ran on worker %d", task, task%4, w)
			}
		}
	}
	if total != 2*n {
		t.Fatalf("ran %d tasks, want %d", total, 2*n)
	}
}

func TestSubmitToIsServedBeforeTheSharedInbox(t *testing.T) {
	var mu sync.Mutex
	ran := map[int][]int{}
	release, started := make(chan struct{}), make(chan struct{})
	g, _ := NewGroup(Options{Name: "t", Workers: 1}, func(i int) (Runner[any], error) {
		return &idRunner{id: i, mu: &mu, ran: ran, release: release, started: started}, nil
	})
	g.Start(context.Background())
	g.Submit(context.Background(), "hold")
	<-started
	for i := 1; i <= 3; i++ {
		g.Submit(context.Background(), i)
	}
	g.SubmitTo(context.Background(), 0, 100)
	if got := g.Pending(); got != 4 {
		t.Fatalf("Pending %d, want 4 (3 shared + 1 own)", got)
	}
	close(release)
	g.Stop(context.Background())
	if got := ran[0]; len(got) != 4 || got[0] != 100 {
		t.Fatalf("run order %v: the targeted task must come first", got)
	}
}

func TestSubmitToErrors(t *testing.T) {
	var mu sync.Mutex
	release, started := make(chan struct{}), make(chan struct{})
	g, _ := NewGroup(Options{Name: "t", Workers: 2, OwnInbox: 1}, func(i int) (Runner[any], error) {
		return &idRunner{id: i, mu: &mu, ran: map[int][]int{}, release: release, started: started}, nil
	})
	if err := g.SubmitTo(context.Background(), 2, 1); err == nil {
		t.Fatal("worker 2 of 2 accepted")
	}
	if err := g.SubmitTo(context.Background(), -1, 1); err == nil {
		t.Fatal("worker -1 accepted")
	}
	g.Start(context.Background())
	g.SubmitTo(context.Background(), 0, "hold")
	<-started
	if err := g.SubmitTo(context.Background(), 0, 1); err != nil { // fills the own inbox (1)
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.SubmitTo(ctx, 0, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("full own inbox: %v, want the context's error", err)
	}
	close(release)
	g.Stop(context.Background())
	if err := g.SubmitTo(context.Background(), 0, 3); !errors.Is(err, ErrStopped) {
		t.Fatalf("after stop: %v", err)
	}
}

// TestStopDrainsOwnInboxes: tasks accepted by SubmitTo before Stop all run.
func TestStopDrainsOwnInboxes(t *testing.T) {
	var done atomic.Int64
	g, _ := NewGroup(Options{Name: "t", Workers: 3}, func(i int) (Runner[any], error) {
		return runFunc(func(any) { done.Add(1) }), nil
	})
	g.Start(context.Background())
	for i := 0; i < 300; i++ {
		g.SubmitTo(context.Background(), i%3, i)
	}
	g.Stop(context.Background())
	if done.Load() != 300 {
		t.Fatalf("ran %d of 300", done.Load())
	}
}

type runFunc func(any)

func (f runFunc) Run(t any) { f(t) }
func (f runFunc) Close()    {}

// BenchmarkGroupRoundTrip is the cost of a task through a group (submit,
// hand-over, run) with the two-inbox worker loop: one task at a time
// (Submit, SubmitTo), or in bursts of 16 through the shared inbox
// (Burst16: the worker finds the next task waiting, as under load).
func BenchmarkGroupRoundTrip(b *testing.B) {
	ctx := context.Background()
	b.Run("Burst16", func(b *testing.B) {
		g, done := benchGroup(b, 16)
		for i := 0; i < b.N; i += 16 {
			for j := 0; j < 16; j++ {
				g.Submit(ctx, j)
			}
			for j := 0; j < 16; j++ {
				<-done
			}
		}
	})
	for _, mode := range []string{"Submit", "SubmitTo"} {
		b.Run(mode, func(b *testing.B) {
			g, done := benchGroup(b, 0)
			for i := 0; i < b.N; i++ {
				if mode == "Submit" {
					g.Submit(ctx, i)
				} else {
					g.SubmitTo(ctx, 0, i)
				}
				<-done
			}
		})
	}
}

// benchGroup starts a group of one worker (shared inbox of inbox tasks,
// 0 for the default) whose runner signals done for every task, stopped
// when b ends, and starts b's timer.
func benchGroup(b *testing.B, inbox int) (*Group[any], chan struct{}) {
	done := make(chan struct{}, 1024)
	g, _ := NewGroup(Options{Name: "b", Workers: 1, Inbox: inbox}, func(i int) (Runner[any], error) {
		return runFunc(func(any) { done <- struct{}{} }), nil
	})
	g.Start(context.Background())
	b.Cleanup(func() { g.Stop(context.Background()) })
	b.ReportAllocs()
	b.ResetTimer()
	return g, done
}
