// Package logging holds kemi's log/slog helpers. It knows nothing of Lua or SIP.
//
// RateLimit wraps a slog.Handler so that a warning or an error that can repeat on every request
// (a durable queue whose writes fail, a script error, a full disk) cannot flood the log: the
// first record of a kind passes, the identical ones within the next second are counted, and the
// next one that passes carries the count as suppressed=N.
package logging

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimitOptions configure RateLimit. The zero value limits warnings and errors to one
// record per message text and second.
type RateLimitOptions struct {
	// Level is the lowest level limited; records below it always pass. Nil is slog.LevelWarn.
	Level slog.Leveler
	// Every is the length of the window; 0 is one second.
	Every time.Duration
	// KeyAttrs names the record attributes whose values, with the message text, tell one kind
	// of record from another: with "function", "lua error" from two functions are limited
	// apart. Only the record's own attributes count, not those added with Logger.With.
	KeyAttrs []string
	// MaxKeys bounds the kinds tracked at once; 0 is 4096. When it is reached, kinds whose
	// window has passed are forgotten; if that is not enough, every new kind shares one
	// window, so even messages that differ each time (an error text in the message) yield at
	// most one line per window.
	MaxKeys int
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// RateLimit returns a handler that passes records to next, at most one per kind and window
// for records at or above opts.Level. A kind is the message text plus the values of
// opts.KeyAttrs. The record that passes after some were suppressed gets the attribute
// suppressed=N. Handlers derived with WithAttrs and WithGroup share the windows. Safe for
// concurrent use; a record of a known kind costs a lock-free map lookup and an atomic add or
// compare-and-swap.
func RateLimit(next slog.Handler, opts RateLimitOptions) slog.Handler {
	l := &limiter{level: opts.Level, every: opts.Every, keyAttrs: opts.KeyAttrs, max: opts.MaxKeys, now: opts.Now}
	if l.level == nil {
		l.level = slog.LevelWarn
	}
	if l.every <= 0 {
		l.every = time.Second
	}
	if l.max <= 0 {
		l.max = 4096
	}
	if l.now == nil {
		l.now = time.Now
	}
	l.base = l.now()
	l.overflow.start.Store(-int64(l.every)) // its first record passes
	return &handler{next: next, l: l}
}

type handler struct {
	next slog.Handler
	l    *limiter
}

// limiter holds the windows, shared by a handler and those derived from it.
type limiter struct {
	level    slog.Leveler
	every    time.Duration
	keyAttrs []string
	max      int
	now      func() time.Time
	base     time.Time

	keys     sync.Map // kind (string) -> *window
	n        atomic.Int64
	sweepMu  sync.Mutex
	overflow window
}

// window is one kind's current window: when it began and how many records it suppressed.
type window struct {
	start      atomic.Int64 // since limiter.base
	suppressed atomic.Int64
}

func (h *handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.l.level.Level() {
		return h.next.Handle(ctx, r)
	}
	ok, n := h.l.allow(h.l.kind(r))
	if !ok {
		return nil
	}
	if n > 0 {
		r = r.Clone() // the caller's attribute storage is not ours to extend
		r.AddAttrs(slog.Int64("suppressed", n))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), l: h.l}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), l: h.l}
}

// kind returns the record's message text, followed by the values of the key attributes it has.
func (l *limiter) kind(r slog.Record) string {
	if len(l.keyAttrs) == 0 || r.NumAttrs() == 0 {
		return r.Message
	}
	var b *strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		for _, k := range l.keyAttrs {
			if a.Key == k {
				if b == nil {
					b = &strings.Builder{}
					b.WriteString(r.Message)
				}
				b.WriteByte(0)
				b.WriteString(a.Key)
				b.WriteByte('=')
				b.WriteString(a.Value.String())
			}
		}
		return true
	})
	if b == nil {
		return r.Message
	}
	return b.String()
}

// allow reports whether a record of this kind may pass now, and how many were suppressed
// since the last one that passed.
func (l *limiter) allow(kind string) (bool, int64) {
	now := int64(l.now().Sub(l.base))
	v, ok := l.keys.Load(kind)
	if !ok {
		w := l.track(kind, now)
		if w == nil {
			return true, 0 // a new kind, its window started now
		}
		v = w
	}
	return v.(*window).pass(now, int64(l.every))
}

// track starts a window for a new kind and returns nil, or returns the window the record
// must go through: the kind's, if another goroutine started it first, or the shared overflow
// window when MaxKeys kinds are tracked.
func (l *limiter) track(kind string, now int64) *window {
	if l.n.Load() >= int64(l.max) && !l.sweep(now) {
		return &l.overflow
	}
	w := &window{}
	w.start.Store(now)
	if v, loaded := l.keys.LoadOrStore(kind, w); loaded {
		return v.(*window)
	}
	l.n.Add(1)
	return nil
}

// sweep forgets the kinds whose window has passed (their suppressed count goes unreported:
// nothing of that kind came since) and reports whether there is room now. One goroutine
// sweeps at a time; the others use the overflow window meanwhile.
func (l *limiter) sweep(now int64) bool {
	if !l.sweepMu.TryLock() {
		return false
	}
	defer l.sweepMu.Unlock()
	l.keys.Range(func(k, v any) bool {
		if d := now - v.(*window).start.Load(); d < 0 || d >= int64(l.every) {
			if l.keys.CompareAndDelete(k, v) {
				l.n.Add(-1)
			}
		}
		return true
	})
	return l.n.Load() < int64(l.max)
}

// pass reports whether a record may pass at now, starting a new window if so, and how many
// records the window it ends suppressed. A clock that went backwards starts a new window.
func (w *window) pass(now, every int64) (bool, int64) {
	for {
		start := w.start.Load()
		if d := now - start; d >= 0 && d < every {
			w.suppressed.Add(1)
			return false, 0
		}
		if w.start.CompareAndSwap(start, now) {
			return true, w.suppressed.Swap(0)
		}
	}
}
