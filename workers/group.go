package workers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

var (
	// ErrStopped is returned for tasks submitted to a stopped group.
	ErrStopped = errors.New("worker group stopped")
	// ErrFull is returned by TrySubmit when the inbox is full.
	ErrFull = errors.New("worker group inbox full")
)

// Runner is a worker's state: it runs tasks of type T on the worker's
// goroutine.
type Runner[T any] interface {
	Run(task T)
	Close()
}

// Options configures a group.
type Options struct {
	Name    string
	Workers int // must be > 0
	// Inbox is the number of tasks that may wait; 0 means 1024 per worker.
	Inbox int
	// OnPanic is called (on the worker goroutine) when Run panics; the
	// worker goes on with the next task. nil: the panic is swallowed.
	OnPanic func(worker int, v any)
	// OwnInbox is the number of tasks that may wait in each worker's own
	// inbox (SubmitTo); 0 means 1024.
	OwnInbox int
}

// Group is a fixed set of workers sharing one inbox: any idle worker takes
// the next task. Each worker also has its own inbox (SubmitTo), for tasks
// that only that worker can run (a Lua coroutine of its VM); a worker takes
// from its own inbox first.
type Group[T any] struct {
	opts    Options
	newR    func(i int) (Runner[T], error)
	inbox   chan T
	own     []chan T     // by worker
	mu      sync.RWMutex // held for reading while sending, for writing to close the inbox
	stopped bool
	wg      sync.WaitGroup
	runners []Runner[T]
	busy    atomic.Int64
	done    atomic.Uint64
}

// NewGroup validates opts. newRunner builds worker i's state; it is called
// in Start.
func NewGroup[T any](opts Options, newRunner func(i int) (Runner[T], error)) (*Group[T], error) {
	if opts.Workers <= 0 {
		return nil, fmt.Errorf("worker group %q: workers must be > 0, got %d", opts.Name, opts.Workers)
	}
	if opts.Inbox <= 0 {
		opts.Inbox = 1024 * opts.Workers
	}
	if opts.OwnInbox <= 0 {
		opts.OwnInbox = 1024
	}
	g := &Group[T]{opts: opts, newR: newRunner, inbox: make(chan T, opts.Inbox), own: make([]chan T, opts.Workers)}
	for i := range g.own {
		g.own[i] = make(chan T, opts.OwnInbox)
	}
	return g, nil
}

// Name returns the group's name.
func (g *Group[T]) Name() string { return g.opts.Name }

// Size returns the number of workers.
func (g *Group[T]) Size() int { return g.opts.Workers }

// Runners returns the workers' states (after Start), for status output.
func (g *Group[T]) Runners() []Runner[T] { return g.runners }

// Start builds every runner, then starts the workers. If a runner fails to
// build, the ones built are closed and the error returned.
func (g *Group[T]) Start(ctx context.Context) error {
	for i := 0; i < g.opts.Workers; i++ {
		r, err := g.newR(i)
		if err != nil {
			for _, r := range g.runners {
				r.Close()
			}
			g.runners = nil
			return fmt.Errorf("worker group %q: worker %d: %w", g.opts.Name, i, err)
		}
		g.runners = append(g.runners, r)
	}
	for i, r := range g.runners {
		g.wg.Add(1)
		go g.loop(i, r)
	}
	return nil
}

// loop runs tasks until both inboxes are closed and empty, taking from the
// worker's own inbox first.
func (g *Group[T]) loop(i int, r Runner[T]) {
	defer g.wg.Done()
	defer r.Close()
	own, shared := g.own[i], g.inbox
	for own != nil || shared != nil {
		select {
		case t, ok := <-own:
			g.take(i, r, t, ok, &own)
			continue
		default:
		}
		// A task waiting in the shared inbox is taken without the
		// two-channel select below, which locks both channels even when
		// it does not wait (the common case under load).
		select {
		case t, ok := <-shared:
			g.take(i, r, t, ok, &shared)
			continue
		default:
		}
		select {
		case t, ok := <-own:
			g.take(i, r, t, ok, &own)
		case t, ok := <-shared:
			g.take(i, r, t, ok, &shared)
		}
	}
}

// take runs t, received from *inbox, or when the receive found the inbox
// closed (!ok), stops the loop's receiving from it.
func (g *Group[T]) take(i int, r Runner[T], t T, ok bool, inbox *chan T) {
	if !ok {
		*inbox = nil
		return
	}
	g.run(i, r, t)
}

func (g *Group[T]) run(i int, r Runner[T], t T) {
	g.busy.Add(1)
	defer func() {
		g.busy.Add(-1)
		g.done.Add(1)
		if v := recover(); v != nil && g.opts.OnPanic != nil {
			g.opts.OnPanic(i, v)
		}
	}()
	r.Run(t)
}

// Submit queues a task, waiting while the inbox is full.
func (g *Group[T]) Submit(ctx context.Context, task T) error { return g.send(ctx, g.inbox, task) }

// SubmitTo queues a task for worker i only (its own inbox, served before the
// shared one), waiting while that inbox is full. It fails for an index out
// of range.
func (g *Group[T]) SubmitTo(ctx context.Context, i int, task T) error {
	if i < 0 || i >= len(g.own) {
		return fmt.Errorf("worker group %q: no worker %d (size %d)", g.opts.Name, i, len(g.own))
	}
	return g.send(ctx, g.own[i], task)
}

// send queues task on inbox, waiting while it is full; the first attempt
// does not wait (no ctx select on the common path).
func (g *Group[T]) send(ctx context.Context, inbox chan T, task T) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.stopped {
		return ErrStopped
	}
	select {
	case inbox <- task:
		return nil
	default:
	}
	select {
	case inbox <- task:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TrySubmit queues a task or returns ErrFull at once.
func (g *Group[T]) TrySubmit(task T) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.stopped {
		return ErrStopped
	}
	select {
	case g.inbox <- task:
		return nil
	default:
		return ErrFull
	}
}

// Pending returns the number of queued tasks not yet taken by a worker.
func (g *Group[T]) Pending() int {
	n := len(g.inbox)
	for _, c := range g.own {
		n += len(c)
	}
	return n
}

// Busy returns how many workers are running a task now.
func (g *Group[T]) Busy() int { return int(g.busy.Load()) }

// Completed returns how many tasks have been run.
func (g *Group[T]) Completed() uint64 { return g.done.Load() }

// Stop refuses new tasks, lets the workers finish the queued ones and closes
// the runners. It returns ctx.Err() if ctx ends first (the workers still
// finish in the background).
func (g *Group[T]) Stop(ctx context.Context) error {
	g.mu.Lock()
	if !g.stopped {
		g.stopped = true
		close(g.inbox)
		for _, c := range g.own {
			close(c)
		}
	}
	g.mu.Unlock()
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
