package workers

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type counter struct {
	id     int
	mu     *sync.Mutex
	seen   map[int]int // task -> worker
	closed *atomic.Int32
	block  chan struct{}
}

func (c *counter) Run(t any) {
	if c.block != nil {
		<-c.block
	}
	if t == "panic" {
		panic("task panicked")
	}
	c.mu.Lock()
	c.seen[t.(int)] = c.id
	c.mu.Unlock()
}
func (c *counter) Close() { c.closed.Add(1) }

func TestEveryTaskRunsOnceAndStopDrains(t *testing.T) {
	var mu sync.Mutex
	seen := map[int]int{}
	var closed atomic.Int32
	g, err := NewGroup(Options{Name: "t", Workers: 4, Inbox: 16}, func(i int) (Runner[any], error) {
		return &counter{id: i, mu: &mu, seen: seen, closed: &closed}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	const n = 5000
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for i := p; i < n; i += 4 {
				if err := g.Submit(context.Background(), i); err != nil {
					t.Error(err)
				}
			}
		}(p)
	}
	wg.Wait()
	if err := g.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n {
		t.Fatalf("ran %d tasks, want %d", len(seen), n)
	}
	if closed.Load() != 4 {
		t.Fatalf("closed %d runners", closed.Load())
	}
	if err := g.Submit(context.Background(), 1); !errors.Is(err, ErrStopped) {
		t.Fatalf("submit after stop: %v", err)
	}
	if got := g.Completed(); got != n {
		t.Fatalf("completed %d", got)
	}
}

func TestTrySubmitFullAndPanicRecovery(t *testing.T) {
	block := make(chan struct{})
	var mu sync.Mutex
	seen := map[int]int{}
	var closed atomic.Int32
	var panics atomic.Int32
	g, _ := NewGroup(Options{Name: "t", Workers: 1, Inbox: 1, OnPanic: func(int, any) { panics.Add(1) }}, func(i int) (Runner[any], error) {
		return &counter{mu: &mu, seen: seen, closed: &closed, block: block}, nil
	})
	g.Start(context.Background())
	if err := g.TrySubmit("panic"); err != nil {
		t.Fatal(err)
	}
	// The worker holds "panic" (blocked); one slot in the inbox.
	deadline := time.Now().Add(30 * time.Second) // a guard against a hang, not a measurement
	for g.Busy() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the worker never took the first task")
		}
		time.Sleep(time.Millisecond)
	}
	if err := g.TrySubmit(1); err != nil {
		t.Fatal(err)
	}
	if err := g.TrySubmit(2); !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
	close(block)
	g.Stop(context.Background())
	if panics.Load() != 1 {
		t.Fatalf("panics %d", panics.Load())
	}
	if _, ok := seen[1]; !ok {
		t.Fatal("task after the panic did not run")
	}
}

func TestStartFailureClosesBuiltRunners(t *testing.T) {
	var closed atomic.Int32
	var mu sync.Mutex
	g, _ := NewGroup(Options{Name: "t", Workers: 3}, func(i int) (Runner[any], error) {
		if i == 2 {
			return nil, errors.New("no vm")
		}
		return &counter{mu: &mu, seen: map[int]int{}, closed: &closed}, nil
	})
	if err := g.Start(context.Background()); err == nil {
		t.Fatal("start succeeded")
	}
	if closed.Load() != 2 {
		t.Fatalf("closed %d, want 2", closed.Load())
	}
}

func TestNewGroupRejectsZeroWorkers(t *testing.T) {
	if _, err := NewGroup[any](Options{Name: "x"}, nil); err == nil {
		t.Fatal("accepted zero workers")
	}
}
