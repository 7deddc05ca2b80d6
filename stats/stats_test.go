package stats

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRegistry(t *testing.T) {
	r := New()
	var ext int64 = 10
	r.Func("core", "rcv_requests", false, func() int64 { return ext })
	r.Func("shmem", "used_size", true, func() int64 { return 5 })
	c := r.Counter("sl", "200_replies")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				r.Counter("sl", "200_replies").Inc()
			}
		}()
	}
	wg.Wait()
	if c.Value() != 400 {
		t.Fatalf("counter %d", c.Value())
	}
	var names []string
	for _, s := range r.Select("all") {
		names = append(names, s.String())
	}
	want := []string{"core:rcv_requests = 10", "shmem:used_size = 5", "sl:200_replies = 400"}
	if len(names) != 3 || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
		t.Fatalf("all: %q", names)
	}
	if got := r.Select("sl:"); len(got) != 1 || got[0].Name != "200_replies" {
		t.Errorf("sl: %v", got)
	}
	if got := r.Select("rcv_requests"); len(got) != 1 {
		t.Errorf("by name: %v", got)
	}
	if n := r.Reset("all"); n != 3 {
		t.Errorf("reset %d", n)
	}
	ext = 15
	if v, _ := r.Value("core", "rcv_requests"); v != 5 {
		t.Errorf("function after reset: %d", v)
	}
	if v, _ := r.Value("shmem", "used_size"); v != 5 {
		t.Errorf("gauge after reset: %d", v)
	}
	if c.Value() != 0 {
		t.Errorf("counter after reset: %d", c.Value())
	}
}

func TestHistogramFamilies(t *testing.T) {
	f := NewFamilies()
	h := f.Histogram("kemi_lua_call_seconds", "help", "function", "r")
	h.Observe(50 * time.Microsecond) // first bucket
	h.Observe(time.Millisecond)      // le=0.001 (bounds are inclusive)
	h.Observe(10 * time.Second)      // +Inf only
	f.Counter("kemi_lua_errors_total", "help", "function", "r").Add(2)
	var b strings.Builder
	f.WritePrometheus(&b)
	out := b.String()
	for _, w := range []string{
		`kemi_lua_call_seconds_bucket{function="r",le="0.0001"} 1`,
		`kemi_lua_call_seconds_bucket{function="r",le="0.001"} 2`,
		`kemi_lua_call_seconds_bucket{function="r",le="2.5"} 2`,
		`kemi_lua_call_seconds_bucket{function="r",le="+Inf"} 3`,
		`kemi_lua_call_seconds_count{function="r"} 3`,
		"# TYPE kemi_lua_errors_total counter\nkemi_lua_errors_total{function=\"r\"} 2",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in\n%s", w, out)
		}
	}
	if h.Count() != 3 {
		t.Errorf("count %d", h.Count())
	}
}
