package luavm

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// The memory budget (Options.MaxMem) bounds how much one event may grow the
// Go heap. gopher-lua has no allocator hook, so it is enforced twice:
//
//   - statically, in the library functions that can build one huge value in
//     a single Go call (string.rep, string.format, table.concat; guards.go):
//     a result larger than the budget is refused with a Lua error before it
//     is allocated;
//   - dynamically, by a MemWatchdog that samples the heap while events run.
//     When the heap has grown by more than the budget since an event began,
//     it starts a collection (in its own goroutine: sampling goes on), and
//     if the live heap after it still has grown by more than the budget, it
//     stops the event through the VM's context, as the time budget does.
//     A growth past twice the budget that also took the heap past the
//     collector's goal as it was when the event began stops the event
//     without waiting for that collection: garbage alone does not grow the
//     heap past the goal (the collector runs before), and waiting lets a
//     doubling loop double again. (The goal at the event's start, not the
//     current one: the handler's own live data raises the current goal.)
//
// After a stop the VM drops its Lua state (rebuilt from the compiled
// generation, as after a reload) so that everything the handler built
// becomes garbage, and the watchdog returns the memory to the OS
// (debug.FreeOSMemory, at most once per FreeEvery).
//
// The bound is soft: a single opcode or library call runs to its end (s ..
// s copies s in one step), so a doubling loop ends up to about four times
// the budget above its start before it is stopped.
//
// Attribution: growth is measured per event from the first sample that sees
// it running. Short events that began after the growth started do not
// qualify, so the one that has been running through the growth is stopped.
// If several long events were running through it, each that qualifies is
// stopped: the heap cannot say which of them allocated.

// stoppedByMemory marks vm.started when the memory watchdog cancelled the
// event (the time watchdog uses -1).
const stoppedByMemory = -2

// Heap metrics sampled by the memory watchdog.
const (
	metricHeap = "/memory/classes/heap/objects:bytes" // live and not yet swept objects
	metricLive = "/gc/heap/live:bytes"                // live at the end of the last GC
	metricGoal = "/gc/heap/goal:bytes"                // where the next GC should end
)

// memSample is one reading of the heap.
type memSample struct{ heap, live, goal uint64 }

// memEvent is what the watchdog knows of a VM's running event.
type memEvent struct {
	started int64     // the VM's started value for this event; 0: none seen
	base    memSample // heap when the watchdog first saw the event
}

// MemWatchdog stops Lua events that grow the Go heap past their VM's memory
// budget (Options.MaxMem). One goroutine serves every VM; the hot path pays
// what the time budget's does: an event marker (two atomic operations, a
// counter instead of the clock) and gopher-lua's context check per Lua
// instruction.
type MemWatchdog struct {
	// Interval is how often the heap is sampled while an event runs; 0
	// means 5ms.
	Interval time.Duration
	// FreeEvery is the least time between two debug.FreeOSMemory calls after
	// stopped events (one asked for sooner is done then); 0 means 1s.
	FreeEvery time.Duration

	mu      sync.Mutex
	vms     map[*VM]*memEvent
	samples []metrics.Sample
	free    chan struct{} // a VM dropped a state: return memory to the OS
	last    time.Time     // last FreeOSMemory
	owed    bool          // a FreeOSMemory was asked for too soon after the last
	stopped atomic.Int64
}

// NewMemWatchdog returns a memory watchdog; start it with Run.
func NewMemWatchdog() *MemWatchdog {
	return &MemWatchdog{
		vms:     make(map[*VM]*memEvent),
		samples: newSamples(),
		free:    make(chan struct{}, 1),
	}
}

// Stopped returns how many events the watchdog stopped so far.
func (w *MemWatchdog) Stopped() int64 { return w.stopped.Load() }

func (w *MemWatchdog) add(vm *VM) {
	w.mu.Lock()
	w.vms[vm] = &memEvent{}
	w.mu.Unlock()
}

func (w *MemWatchdog) remove(vm *VM) {
	w.mu.Lock()
	delete(w.vms, vm)
	w.mu.Unlock()
}

// Run samples the heap until ctx is done. A confirming collection runs in
// a goroutine of its own, one at a time, while sampling goes on.
func (w *MemWatchdog) Run(ctx context.Context) {
	iv := w.Interval
	if iv <= 0 {
		iv = 5 * time.Millisecond
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	var pending []suspect
	collected := make(chan memSample, 1)
	gcSamples := newSamples()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if w.owed {
				w.freeOSMemory(now)
			}
			if sus := w.check(w.read); len(sus) > 0 && pending == nil {
				pending = sus
				go func() { runtime.GC(); collected <- readSamples(gcSamples) }()
			}
		case after := <-collected:
			w.confirm(pending, after)
			pending = nil
		case <-w.free:
			w.freeOSMemory(time.Now())
		}
	}
}

// Check samples the heap and stops the events that grew it past their
// budget, running a confirming collection itself when needed. It does
// nothing (and reads no metric) while no event runs.
func (w *MemWatchdog) Check() {
	if sus := w.check(w.read); len(sus) > 0 {
		runtime.GC()
		w.confirm(sus, w.read())
	}
}

// read samples the heap (the watchdog's goroutine only).
func (w *MemWatchdog) read() memSample { return readSamples(w.samples) }

func newSamples() []metrics.Sample {
	return []metrics.Sample{{Name: metricHeap}, {Name: metricLive}, {Name: metricGoal}}
}

func readSamples(samples []metrics.Sample) memSample {
	metrics.Read(samples)
	var s memSample
	if v := samples[0].Value; v.Kind() == metrics.KindUint64 {
		s.heap = v.Uint64()
	}
	if v := samples[1].Value; v.Kind() == metrics.KindUint64 {
		s.live = v.Uint64()
	}
	if v := samples[2].Value; v.Kind() == metrics.KindUint64 {
		s.goal = v.Uint64()
	}
	return s
}

// suspect is an event whose heap grew past its budget before a collection.
type suspect struct {
	vm      *VM
	started int64
	base    memSample
}

// check samples the heap (with sample, only if an event runs), stops the
// events that grew it past twice their budget and past the collector's goal
// at their start, and returns those that grew it past their budget, to be
// confirmed after a collection.
func (w *MemWatchdog) check(sample func() memSample) []suspect {
	var suspects []suspect
	w.mu.Lock()
	defer w.mu.Unlock()
	var s memSample
	sampled := false
	for vm, ev := range w.vms {
		st := vm.started.Load()
		if st <= 0 {
			ev.started = 0
			continue
		}
		if !sampled {
			s, sampled = sample(), true
		}
		if ev.started != st {
			*ev = memEvent{started: st, base: s}
			continue
		}
		max := uint64(vm.opts.MaxMem)
		g := grown(s.heap, ev.base.heap)
		if g > 2*max && s.heap > ev.base.goal {
			if vm.stopForMemory(st, g) {
				w.stopped.Add(1)
			}
			continue
		}
		if g > max || grown(s.live, ev.base.live) > max {
			suspects = append(suspects, suspect{vm: vm, started: st, base: ev.base})
		}
	}
	return suspects
}

// confirm judges suspects by the heap after a collection: the heap counts
// garbage too, the live heap does not.
func (w *MemWatchdog) confirm(suspects []suspect, after memSample) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, x := range suspects {
		ev := w.vms[x.vm]
		if ev == nil || ev.started != x.started {
			continue // closed, or a new event meanwhile
		}
		g := grown(after.live, x.base.live)
		if g <= uint64(x.vm.opts.MaxMem) {
			// Garbage, not this event's growth: count from here on.
			ev.base.heap = after.heap
			continue
		}
		if x.vm.stopForMemory(x.started, g) {
			w.stopped.Add(1)
		}
	}
}

func grown(now, base uint64) uint64 {
	if now > base {
		return now - base
	}
	return 0
}

// stopForMemory cancels the event marked started, if it still runs.
func (vm *VM) stopForMemory(started int64, grew uint64) bool {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	vm.memGrew.Store(int64(grew))
	if vm.started.CompareAndSwap(started, stoppedByMemory) && vm.cancel != nil {
		vm.cancel()
		return true
	}
	return false
}

// freed asks the watchdog's goroutine to return memory to the OS.
func (w *MemWatchdog) freed() {
	select {
	case w.free <- struct{}{}:
	default:
	}
}

func (w *MemWatchdog) freeOSMemory(now time.Time) {
	every := w.FreeEvery
	if every <= 0 {
		every = time.Second
	}
	if !w.last.IsZero() && now.Sub(w.last) < every {
		w.owed = true // done by a later tick
		return
	}
	w.last, w.owed = now, false
	debug.FreeOSMemory()
}

// memoryStopped completes the error of an event the memory watchdog
// stopped and drops the VM's Lua state, whose garbage the handler may still
// reference from globals. Owner goroutine only, after the call returned.
func (vm *VM) memoryStopped(e *Error) {
	e.Kind = KindMemory
	e.Msg = fmt.Sprintf("the heap grew by %d MB, over its memory budget of %d MB (max_mem_mb); the Lua state was dropped and rebuilt (%s)",
		vm.memGrew.Load()>>20, vm.opts.MaxMem>>20, e.Msg)
	vm.dropState()
	if w := vm.opts.MemWatchdog; w != nil {
		w.freed()
	}
}

// dropState replaces the VM's Lua state with a fresh one of the same
// generation (its globals start over, as after a reload). If the generation
// no longer loads, the old state stays.
func (vm *VM) dropState() {
	if vm.depth > 0 {
		vm.dirty = true // a call is still running on the state: at the next Sync
		return
	}
	errfn := vm.errfn
	L, err := vm.instantiate(context.Background(), vm.gen, vm.opts.LoadTimeout)
	if err != nil {
		vm.errfn = errfn
		vm.setContext(vm.L) // instantiate replaced the context
		return
	}
	old := vm.L
	vm.L, vm.dirty = L, false
	old.Close()
}
