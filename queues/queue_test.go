package queues

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func mustQueue(t testing.TB, o Options) *Queue {
	t.Helper()
	if o.Name == "" {
		o.Name = "q"
	}
	r, err := NewRegistry(o)
	if err != nil {
		t.Fatal(err)
	}
	return r.Get(o.Name)
}

// items parses "k=v k2=v2" (or "k" for k=k) into items.
func items(s string) []Item {
	var out []Item
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			v = k
		}
		out = append(out, Item{k, v})
	}
	return out
}

// checkInvariants verifies the ring and the key index agree with the queue's content.
func checkInvariants(t *testing.T, q *Queue) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.opts.Size > 0 && q.n > q.opts.Size {
		t.Fatalf("n=%d > size %d", q.n, q.opts.Size)
	}
	if q.n > len(q.ring) || q.head >= len(q.ring) {
		t.Fatalf("n=%d head=%d len(ring)=%d", q.n, q.head, len(q.ring))
	}
	for i := q.n; i < len(q.ring); i++ {
		if *q.at(i) != (entry{}) {
			t.Fatalf("free slot %d not cleared: %+v", i, *q.at(i))
		}
	}
	if q.opts.AddMode == AddModeAppend {
		if q.index != nil {
			t.Fatal("append mode keeps an index")
		}
		return
	}
	counts := map[string]int{}
	for i := range q.n {
		counts[q.at(i).key]++
	}
	if !maps.Equal(counts, q.index) {
		t.Fatalf("index %v, content counts %v", q.index, counts)
	}
}

func TestAdd(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		add     string // items added in order
		want    string // content after the adds, head first
		wantLen int
	}{
		{"append unbounded", Options{}, "a=1 b=2 a=3 c=4", "a=1 b=2 a=3 c=4", 4},
		{"size 1 keeps the newest", Options{Size: 1}, "a b c", "c", 1},
		{"size 3 drops from the head", Options{Size: 3}, "a b c d e", "c d e", 3},
		{"size 3 not reached", Options{Size: 3}, "a b", "a b", 2},
		{"negative size is unbounded", Options{Size: -5}, "a b c d", "a b c d", 4},
		{"keep oldest ignores a queued key", Options{AddMode: AddModeKeepOldest}, "a=1 b=1 a=2 b=2 c=1", "a=1 b=1 c=1", 3},
		{"keep oldest: key free again after eviction", Options{AddMode: AddModeKeepOldest, Size: 2}, "a=1 b=1 c=1 a=2", "c=1 a=2", 2},
		{"keep newest replaces the head", Options{AddMode: AddModeKeepNewest}, "a=1 b=1 c=1 a=2", "b=1 c=1 a=2", 3},
		{"keep newest replaces the middle", Options{AddMode: AddModeKeepNewest}, "a=1 b=1 c=1 b=2", "a=1 c=1 b=2", 3},
		{"keep newest replaces the tail", Options{AddMode: AddModeKeepNewest}, "a=1 b=1 c=1 c=2", "a=1 b=1 c=2", 3},
		{"keep newest on a full queue evicts nothing", Options{AddMode: AddModeKeepNewest, Size: 3}, "a=1 b=1 c=1 b=2", "a=1 c=1 b=2", 3},
		{"keep newest on a full queue, new key evicts", Options{AddMode: AddModeKeepNewest, Size: 3}, "a=1 b=1 c=1 d=1", "b=1 c=1 d=1", 3},
		{"empty key and value", Options{AddMode: AddModeKeepNewest}, "= =x", "=x", 1},
		{"append keeps duplicates with size", Options{Size: 2}, "a=1 a=2 a=3", "a=2 a=3", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustQueue(t, tt.opts)
			for _, it := range items(tt.add) {
				if err := q.Add(it.Key, it.Val); err != nil {
					t.Fatal(err)
				}
				checkInvariants(t, q)
			}
			if got, want := q.Snapshot(), items(tt.want); !slices.Equal(got, want) {
				t.Errorf("content %v, want %v", got, want)
			}
			if q.Len() != tt.wantLen {
				t.Errorf("Len %d, want %d", q.Len(), tt.wantLen)
			}
			for _, want := range items(tt.want) {
				got, err := q.Fetch()
				if err != nil || got != want {
					t.Fatalf("Fetch = %v, %v; want %v", got, err, want)
				}
				checkInvariants(t, q)
			}
			if _, err := q.Fetch(); !errors.Is(err, ErrEmpty) {
				t.Fatalf("Fetch on empty queue: %v, want ErrEmpty", err)
			}
		})
	}
}

func TestSnapshotIsACopy(t *testing.T) {
	q := mustQueue(t, Options{})
	_ = q.Add("a", "1")
	s := q.Snapshot()
	s[0].Val = "changed"
	if got, _ := q.Fetch(); got.Val != "1" {
		t.Fatalf("Snapshot shares memory with the queue: %v", got)
	}
}

// TestRingWrapAround grows an unbounded ring while its content wraps past the end of the slice.
func TestRingWrapAround(t *testing.T) {
	q := mustQueue(t, Options{})
	var want []Item
	add := func(n int) {
		for range n {
			it := Item{strconv.Itoa(len(want)), "v"}
			if err := q.Add(it.Key, it.Val); err != nil {
				t.Fatal(err)
			}
			want = append(want, it)
		}
	}
	fetch := func(n int) {
		for range n {
			got, err := q.Fetch()
			if err != nil || got != want[0] {
				t.Fatalf("Fetch = %v, %v; want %v", got, err, want[0])
			}
			want = want[1:]
		}
	}
	add(minRing - 2)
	fetch(minRing - 4) // head near the end of the ring
	add(6)             // wraps
	if q.head+q.n <= len(q.ring) {
		t.Fatalf("content does not wrap: head=%d n=%d len=%d", q.head, q.n, len(q.ring))
	}
	add(3 * minRing) // grows twice while wrapped
	if len(q.ring) <= minRing {
		t.Fatalf("ring did not grow: %d", len(q.ring))
	}
	checkInvariants(t, q)
	if got := q.Snapshot(); !slices.Equal(got, want) {
		t.Fatalf("content %v, want %v", got, want)
	}
	fetch(len(want))
}

// TestBoundedBeyondPrealloc checks a queue larger than maxPrealloc grows up to Size, not past it.
func TestBoundedBeyondPrealloc(t *testing.T) {
	size := 2*maxPrealloc + 3
	q := mustQueue(t, Options{Size: size})
	if len(q.ring) != maxPrealloc {
		t.Fatalf("preallocated %d slots, want %d", len(q.ring), maxPrealloc)
	}
	for i := range size + 10 {
		_ = q.Add(strconv.Itoa(i), "")
	}
	if len(q.ring) != size || q.Len() != size {
		t.Fatalf("ring %d, Len %d, want %d", len(q.ring), q.Len(), size)
	}
	if got, _ := q.Fetch(); got.Key != "10" {
		t.Fatalf("head %q, want 10", got.Key)
	}
}

func TestBoundedPreallocated(t *testing.T) {
	q := mustQueue(t, Options{Size: 100})
	if len(q.ring) != 100 {
		t.Fatalf("ring %d, want 100", len(q.ring))
	}
}

// model is Kamailio's mq_item_add and mq_head_fetch on a plain slice.
type model struct {
	size, mode int
	items      []Item
}

func (m *model) add(it Item) {
	i := slices.IndexFunc(m.items, func(x Item) bool { return x.Key == it.Key })
	switch {
	case m.mode == AddModeKeepOldest && i >= 0:
		return
	case m.mode == AddModeKeepNewest && i >= 0:
		m.items = slices.Delete(m.items, i, i+1)
	}
	m.items = append(m.items, it)
	if m.size > 0 && len(m.items) > m.size {
		m.items = m.items[1:]
	}
}

// TestAgainstModel runs random adds and fetches against the model for every add mode.
func TestAgainstModel(t *testing.T) {
	for _, size := range []int{0, 1, 2, 5, 17, 40} {
		for mode := range maxAddMode + 1 {
			t.Run(fmt.Sprintf("size=%d/addmode=%d", size, mode), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(uint64(size), uint64(mode)))
				q := mustQueue(t, Options{Size: size, AddMode: mode})
				m := &model{size: size, mode: mode}
				for step := range 3000 {
					if rng.IntN(3) < 2 {
						it := Item{strconv.Itoa(rng.IntN(12)), strconv.Itoa(step)}
						if err := q.Add(it.Key, it.Val); err != nil {
							t.Fatal(err)
						}
						m.add(it)
					} else {
						got, err := q.Fetch()
						if len(m.items) == 0 {
							if !errors.Is(err, ErrEmpty) {
								t.Fatalf("step %d: Fetch = %v, %v; want ErrEmpty", step, got, err)
							}
							continue
						}
						if err != nil || got != m.items[0] {
							t.Fatalf("step %d: Fetch = %v, %v; want %v", step, got, err, m.items[0])
						}
						m.items = m.items[1:]
					}
					if got := q.Snapshot(); !slices.Equal(got, m.items) {
						t.Fatalf("step %d: content %v, want %v", step, got, m.items)
					}
					checkInvariants(t, q)
				}
			})
		}
	}
}

// TestConcurrentAddFetch has producers and consumers race on one queue: every item is fetched
// exactly once and each consumer sees each producer's items in order.
func TestConcurrentAddFetch(t *testing.T) {
	const producers, consumers, perProducer = 8, 8, 2000
	for _, o := range []Options{
		{Name: "unbounded"},
		{Name: "bounded", Size: producers * perProducer},
		{Name: "keepnewest", AddMode: AddModeKeepNewest}, // every key is unique
	} {
		t.Run(o.Name, func(t *testing.T) {
			q := mustQueue(t, o)
			var seen [producers][perProducer]int32
			var wg sync.WaitGroup
			for p := range producers {
				wg.Go(func() {
					for i := range perProducer {
						if err := q.Add(fmt.Sprintf("%d/%d", p, i), strconv.Itoa(p)); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			var mu sync.Mutex
			fetched := 0
			for range consumers {
				wg.Go(func() {
					last := [producers]int{}
					for i := range last {
						last[i] = -1
					}
					for {
						mu.Lock()
						done := fetched == producers*perProducer
						mu.Unlock()
						if done {
							return
						}
						it, err := q.Fetch()
						if errors.Is(err, ErrEmpty) {
							runtime.Gosched()
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						var p, i int
						if _, err := fmt.Sscanf(it.Key, "%d/%d", &p, &i); err != nil {
							t.Error(err)
							return
						}
						if i <= last[p] {
							t.Errorf("producer %d: item %d after %d", p, i, last[p])
						}
						last[p] = i
						mu.Lock()
						seen[p][i]++
						fetched++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			for p := range seen {
				for i, n := range seen[p] {
					if n != 1 {
						t.Fatalf("item %d/%d fetched %d times", p, i, n)
					}
				}
			}
			if q.Len() != 0 {
				t.Fatalf("Len %d after draining", q.Len())
			}
		})
	}
}

func TestRegistry(t *testing.T) {
	r, err := NewRegistry(Options{Name: "b"}, Options{Name: "a", Size: 3}, Options{Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range r.Queues() {
		names = append(names, q.Name())
	}
	if !slices.Equal(names, []string{"b", "a", "A"}) {
		t.Errorf("Queues order %v", names)
	}
	if q := r.Get("a"); q == nil || q.Options() != (Options{Name: "a", Size: 3}) {
		t.Errorf("Get(a) = %+v", q)
	}
	for _, name := range []string{"c", "a ", ""} {
		if q := r.Get(name); q != nil {
			t.Errorf("Get(%q) = %v, want nil", name, q.Name())
		}
	}
	r.Queues()[0] = nil // the caller's copy
	if r.Queues()[0] == nil {
		t.Error("Queues returns the registry's own slice")
	}
}

func TestNewRegistryErrors(t *testing.T) {
	tests := []struct {
		name string
		opts []Options
		is   error
		msg  string
	}{
		{"duplicate", []Options{{Name: "q"}, {Name: "x"}, {Name: "q", Size: 2}}, ErrDuplicate, `queue "q": duplicate queue name`},
		{"empty name", []Options{{Size: 1}}, nil, `queue "": name is missing`},
		{"dbmode", []Options{{Name: "q", DBMode: 5}}, nil, `queue "q": dbmode 5: must be 0..4`},
		{"negative addmode", []Options{{Name: "q", AddMode: -1}}, nil, `queue "q": addmode -1: must be 0..2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := NewRegistry(tt.opts...)
			if err == nil || r != nil {
				t.Fatalf("NewRegistry = %v, %v; want an error", r, err)
			}
			if err.Error() != tt.msg {
				t.Errorf("error %q, want %q", err, tt.msg)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}
