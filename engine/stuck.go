package engine

import (
	"context"
	"kemi/stats"
	"sync/atomic"
	"time"
)

// DefaultStuckAfter is how long one callback may run before the engine warns
// that its worker is stuck (Options.StuckAfter).
const DefaultStuckAfter = 5 * time.Second

// busyMark is what the stuck-event monitor sees of a worker: the callback it
// runs and since when. Only the worker's goroutine writes it.
type busyMark struct {
	since atomic.Int64                // Engine.monoNow() when the running callback started, 0 when idle
	cb    atomic.Pointer[string]      // its name
	names map[string]*string          // interned callback names (owner goroutine only)
	hists map[string]*stats.Histogram // call latency per callback (owner goroutine only; metrics.go)
	seen  int64                       // the since already warned about (monitor goroutine only)
}

// monoNow is the monotonic time in ns since the engine's epoch, plus one
// so that it is never 0 (a busyMark's idle value). time.Since of a time
// with a monotonic reading reads only that clock: one vDSO call, where
// time.Now reads the wall clock too (the mark is set and read for every
// routed message).
func (e *Engine) monoNow() int64 { return int64(time.Since(e.epoch)) + 1 }

// enter marks the worker busy in callback fn.
func (w *worker) enter(fn string) {
	b := &w.busy
	p, ok := b.names[fn]
	if !ok {
		if b.names == nil {
			b.names = map[string]*string{}
		}
		p = new(string)
		*p = fn
		b.names[fn] = p
	}
	b.cb.Store(p)
	b.since.Store(w.e.monoNow())
}

// leave marks the worker idle again, and adds the call's duration to its
// callback's latency histogram (kemi_lua_call_seconds).
func (w *worker) leave() {
	since := w.busy.since.Swap(0)
	p := w.busy.cb.Load()
	if since == 0 || p == nil || w.e.fams == nil {
		return
	}
	h := w.busy.hists[*p]
	if h == nil {
		if w.busy.hists == nil {
			w.busy.hists = map[string]*stats.Histogram{}
		}
		h = w.e.fams.Histogram("kemi_lua_call_seconds", "Duration of a Lua callback (route) call, by function.", "function", *p)
		w.busy.hists[*p] = h
	}
	h.Observe(time.Duration(w.e.monoNow() - since))
}

// stuckMonitor warns, once per event, about a callback that runs longer than
// after: with max_exec_ms off nothing stops it, and even with it a Go call
// that blocks cannot be stopped. The warning names the worker and the
// callback.
type stuckMonitor struct {
	e     *Engine
	after time.Duration
}

func (m stuckMonitor) Name() string { return "stuck monitor" }

func (m stuckMonitor) Start(ctx context.Context) error {
	iv := m.after / 4
	if iv < time.Millisecond {
		iv = time.Millisecond
	}
	go func() {
		t := time.NewTicker(iv)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.check(m.e.monoNow())
			}
		}
	}()
	return nil
}

func (m stuckMonitor) Stop(context.Context) error { return nil } // the run context ends it

// check warns about every worker whose callback started more than after
// before now (an Engine.monoNow reading) and was not warned about yet.
func (m stuckMonitor) check(now int64) {
	e := m.e
	e.vmsMu.Lock()
	defer e.vmsMu.Unlock()
	for _, w := range e.vms {
		b := &w.busy
		s := b.since.Load()
		if s == 0 || s == b.seen {
			continue
		}
		d := time.Duration(now - s)
		if d < m.after {
			continue
		}
		b.seen = s
		cb := ""
		if p := b.cb.Load(); p != nil {
			cb = *p
		}
		e.log.Warn("worker stuck: one event runs for longer than expected (max_exec_ms can stop it)",
			"worker", w.vm.Name(), "callback", cb, "running", d.Round(time.Millisecond).String(), "max_exec_ms", e.set.AppLua().MaxExec.Milliseconds())
	}
}
