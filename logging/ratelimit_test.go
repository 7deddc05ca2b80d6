package logging_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/slogtest"
	"time"

	"kemi/logging"
)

// clock is a fake clock, safe for concurrent use.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time                 { return time.Unix(0, c.ns.Load()) }
func (c *clock) step(d time.Duration)           { c.ns.Add(int64(d)) }
func newClock() *clock                          { c := &clock{}; c.ns.Store(time.Unix(1e9, 0).UnixNano()); return c }
func (c *clock) opts() logging.RateLimitOptions { return logging.RateLimitOptions{Now: c.now} }

// sink collects the records that pass as JSON lines.
type sink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *sink) lines(t *testing.T) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.buf.String()), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

// summary returns the lines as "msg" or "msg suppressed=N".
func (s *sink) summary(t *testing.T) []string {
	var out []string
	for _, m := range s.lines(t) {
		line := fmt.Sprint(m["msg"])
		if n, ok := m["suppressed"]; ok {
			line += fmt.Sprintf(" suppressed=%v", n)
		}
		out = append(out, line)
	}
	return out
}

func newLogger(opts logging.RateLimitOptions) (*slog.Logger, *sink) {
	s := &sink{}
	h := slog.NewJSONHandler(s, &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(logging.RateLimit(h, opts)), s
}

func want(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOneLinePerSecondWithCount(t *testing.T) {
	c := newClock()
	log, s := newLogger(c.opts())
	for range 500 { // a second at 500 req/s
		log.Error("store failed", "queue", "q")
		c.step(2 * time.Millisecond)
	}
	log.Error("store failed", "queue", "q") // 1 s after the first
	for range 3 {
		log.Warn("store failed", "queue", "q") // the level is not part of the kind
	}
	c.step(5 * time.Second)
	log.Error("store failed", "queue", "q")
	log.Error("store failed", "queue", "q")
	want(t, s.summary(t),
		"store failed",
		"store failed suppressed=499",
		"store failed suppressed=3",
	)
}

func TestKinds(t *testing.T) {
	c := newClock()
	log, s := newLogger(logging.RateLimitOptions{Now: c.now, KeyAttrs: []string{"function"}})
	log.Error("lua error", "function", "a", "worker", "w1")
	log.Error("lua error", "function", "a", "worker", "w2") // worker is not a key attribute
	log.Error("lua error", "function", "b", "worker", "w1")
	log.Error("lua error") // no key attribute: a kind of its own
	log.Error("other error", "function", "a")
	log.With("function", "a").Error("lua error") // With attributes are not the record's
	log.Error("lua error", "function", "b")
	want(t, s.summary(t), "lua error", "lua error", "lua error", "other error")
	c.step(time.Second)
	log.Error("lua error", "function", "b")
	log.Error("lua error", "function", "a")
	log.Error("lua error")
	want(t, s.summary(t), "lua error", "lua error", "lua error", "other error",
		"lua error suppressed=1", "lua error suppressed=1", "lua error suppressed=1")
}

func TestLowLevelsPass(t *testing.T) {
	c := newClock()
	log, s := newLogger(c.opts())
	for range 3 {
		log.Info("info")
		log.Debug("debug")
	}
	if n := len(s.lines(t)); n != 6 {
		t.Fatalf("%d lines, want 6", n)
	}
	log, s = newLogger(logging.RateLimitOptions{Now: c.now, Level: slog.LevelError})
	for range 3 {
		log.Warn("warn")
		log.Error("error")
	}
	want(t, s.summary(t), "warn", "error", "warn", "warn")
}

func TestDerivedHandlersShareWindows(t *testing.T) {
	c := newClock()
	log, s := newLogger(c.opts())
	log.Error("x")
	log.With("module", "sip").Error("x")
	log.WithGroup("g").Error("x")
	c.step(time.Second)
	log.WithGroup("g").With("a", 1).Error("x")
	lines := s.lines(t)
	if len(lines) != 2 {
		t.Fatalf("lines %v", lines)
	}
	if g, _ := lines[1]["g"].(map[string]any); g == nil || g["suppressed"] != float64(2) || g["a"] != float64(1) {
		t.Fatalf("second line %v, want g.suppressed=2 and g.a=1", lines[1])
	}
}

// TestCallersRecordUntouched: adding suppressed=N does not write into the caller's record.
func TestCallersRecordUntouched(t *testing.T) {
	c := newClock()
	s := &sink{}
	h := logging.RateLimit(slog.NewJSONHandler(s, nil), c.opts())
	r := slog.NewRecord(time.Now(), slog.LevelError, "m", 0)
	r.AddAttrs(slog.Int("a", 1))
	for range 2 {
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	c.step(time.Second)
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.NumAttrs() != 1 {
		t.Fatalf("the record has %d attributes now", r.NumAttrs())
	}
	want(t, s.summary(t), "m", "m suppressed=1")
}

func TestClockBackwardsPasses(t *testing.T) {
	c := newClock()
	log, s := newLogger(c.opts())
	log.Error("x")
	c.step(-time.Hour)
	log.Error("x")
	log.Error("x")
	want(t, s.summary(t), "x", "x")
}

// TestMaxKeysBoundsMemoryAndLines: messages that differ every time (an error text in the
// message) are tracked up to MaxKeys kinds; beyond that they share one window.
func TestMaxKeysBoundsMemoryAndLines(t *testing.T) {
	c := newClock()
	log, s := newLogger(logging.RateLimitOptions{Now: c.now, MaxKeys: 10})
	for i := range 1000 {
		log.Error(fmt.Sprintf("failed: %d", i))
	}
	if n := len(s.lines(t)); n != 11 { // 10 kinds, then one for the shared window
		t.Fatalf("%d lines, want 11", n)
	}
	// Once their windows have passed, the old kinds are forgotten and new ones tracked.
	c.step(time.Second)
	for i := range 10 {
		log.Error(fmt.Sprintf("again: %d", i))
	}
	if n := len(s.lines(t)); n != 21 {
		t.Fatalf("%d lines, want 21", n)
	}
	log.Error("again: 0")
	if n := len(s.lines(t)); n != 21 {
		t.Fatalf("%d lines after a repeat, want 21", n)
	}
}

// TestConcurrent: many goroutines logging the same kind; exactly one line passes per window
// and the counts add up (run with -race).
func TestConcurrent(t *testing.T) {
	c := newClock()
	log, s := newLogger(logging.RateLimitOptions{Now: c.now, KeyAttrs: []string{"queue"}})
	const goroutines, each = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				log.Error("add failed", "queue", fmt.Sprint((g+i)%2))
			}
		}()
	}
	wg.Wait()
	c.step(time.Second)
	log.Error("add failed", "queue", "0")
	log.Error("add failed", "queue", "1")
	lines := s.lines(t)
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4: %v", len(lines), lines)
	}
	total := 0.0
	for _, l := range lines[2:] {
		n, _ := l["suppressed"].(float64)
		total += n
	}
	if total != goroutines*each-2 {
		t.Fatalf("suppressed %v in all, want %d", total, goroutines*each-2)
	}
}

// TestSlogConformance: below the limited level the wrapper is a plain slog.Handler.
func TestSlogConformance(t *testing.T) {
	var buf bytes.Buffer
	slogtest.Run(t, func(*testing.T) slog.Handler {
		buf.Reset()
		return logging.RateLimit(slog.NewJSONHandler(&buf, nil), logging.RateLimitOptions{})
	}, func(*testing.T) map[string]any {
		m := map[string]any{}
		if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		return m
	})
}

// BenchmarkSuppressed: the cost of a repeated error on the per-request path.
func BenchmarkSuppressed(b *testing.B) {
	log := slog.New(logging.RateLimit(slog.NewTextHandler(&bytes.Buffer{}, nil), logging.RateLimitOptions{KeyAttrs: []string{"queue"}}))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			log.Error("mqueue add failed", "queue", "q", "error", "disk full")
		}
	})
}
