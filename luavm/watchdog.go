package luavm

import (
	"context"
	"sync"
	"time"
)

// Watchdog stops Lua events that run past their VM's budget. One watchdog
// goroutine serves every VM; the hot path pays two atomic operations per
// event.
type Watchdog struct {
	mu  sync.Mutex
	vms map[*VM]struct{}
	// Interval is how often budgets are checked; 0 means 10ms.
	Interval time.Duration
}

// NewWatchdog returns a watchdog; start it with Run.
func NewWatchdog() *Watchdog { return &Watchdog{vms: make(map[*VM]struct{})} }

func (w *Watchdog) add(vm *VM) {
	w.mu.Lock()
	w.vms[vm] = struct{}{}
	w.mu.Unlock()
}

func (w *Watchdog) remove(vm *VM) {
	w.mu.Lock()
	delete(w.vms, vm)
	w.mu.Unlock()
}

// Run checks budgets until ctx is done.
func (w *Watchdog) Run(ctx context.Context) {
	iv := w.Interval
	if iv <= 0 {
		iv = 10 * time.Millisecond
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.Check(now)
		}
	}
}

// Check cancels every event that started more than its VM's budget before now.
func (w *Watchdog) Check(now time.Time) {
	n := now.UnixNano()
	w.mu.Lock()
	defer w.mu.Unlock()
	for vm := range w.vms {
		s := vm.started.Load()
		if s <= 0 || n-s < int64(vm.opts.Budget) {
			continue
		}
		vm.mu.Lock()
		if vm.started.CompareAndSwap(s, -1) && vm.cancel != nil {
			vm.cancel()
		}
		vm.mu.Unlock()
	}
}
