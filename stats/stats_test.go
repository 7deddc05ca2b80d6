package stats

import (
	"sync"
	"testing"
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
