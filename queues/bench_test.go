package queues_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"kemi/queues"
)

// standing is how many items stay queued during the Add+Fetch benchmarks, so the ring wraps and
// keep-newest scans a realistic queue.
const standing = 100

type benchQueue struct {
	name string
	opts queues.Options
}

func benchQueues() []benchQueue {
	return []benchQueue{
		{"bounded", queues.Options{Name: "q", Size: 1024}},
		{"unbounded", queues.Options{Name: "q"}},
		{"bounded/keepoldest", queues.Options{Name: "q", Size: 1024, AddMode: queues.AddModeKeepOldest}},
		{"bounded/keepnewest", queues.Options{Name: "q", Size: 1024, AddMode: queues.AddModeKeepNewest}},
	}
}

func benchRegistry(b *testing.B, o queues.Options) *queues.Registry {
	b.Helper()
	r, err := queues.NewRegistry(queues.Options{Name: "other"}, o)
	if err != nil {
		b.Fatal(err)
	}
	for i := range standing {
		if err := r.Get(o.Name).Add(fmt.Sprint("standing", i), "v"); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

// keyPool returns distinct keys for worker w. A key comes back only after len(pool) adds and
// fetches by the same worker, long after its previous item left a queue of ~standing items, so
// the keep modes never find it queued and the queue length stays at standing.
func keyPool(w int) []string {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprint("w", w, "-", i)
	}
	return keys
}

// addFetch is one hot-path step as the Lua bindings do it: look the queue up, add, fetch.
func addFetch(r *queues.Registry, key string) error {
	q := r.Get("q")
	if err := q.Add(key, "value"); err != nil {
		return err
	}
	_, err := q.Fetch()
	return err
}

// BenchmarkAddFetch: one Get+Add+Fetch per op, one goroutine.
func BenchmarkAddFetch(b *testing.B) {
	for _, bq := range benchQueues() {
		b.Run(bq.name, func(b *testing.B) {
			r := benchRegistry(b, bq.opts)
			keys := keyPool(0)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := addFetch(r, keys[i%len(keys)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkAddFetchContended: the same from 4 goroutines on one queue; ns/op is wall time per
// Get+Add+Fetch.
func BenchmarkAddFetchContended(b *testing.B) {
	const workers = 4
	for _, bq := range benchQueues() {
		b.Run(bq.name, func(b *testing.B) {
			r := benchRegistry(b, bq.opts)
			b.ReportAllocs()
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range workers {
				n := b.N / workers
				if w < b.N%workers {
					n++
				}
				keys := keyPool(w)
				wg.Go(func() {
					for i := range n {
						if err := addFetch(r, keys[i%len(keys)]); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// BenchmarkDurableAdd: the cost of a DBModeDurable Add (one committed INSERT), and of an
// Add+Fetch pair (INSERT and DELETE), on SQLite in WAL mode and on MemStore.
func BenchmarkDurableAdd(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) queues.Store
	}{
		{"sqlite", func(b *testing.B) queues.Store { return openSQLite(b, filepath.Join(b.TempDir(), "q.db")) }},
		{"mem", func(*testing.B) queues.Store { return queues.NewMemStore() }},
	}
	for _, st := range stores {
		for _, fetch := range []bool{false, true} {
			name := st.name + "/add"
			if fetch {
				name += "+fetch"
			}
			b.Run(name, func(b *testing.B) {
				s := st.open(b)
				r, err := queues.NewRegistry(queues.Options{Name: "q", DBMode: queues.DBModeDurable})
				if err != nil {
					b.Fatal(err)
				}
				if err := r.Load(b.Context(), s); err != nil {
					b.Fatal(err)
				}
				q := r.Get("q")
				b.ReportAllocs()
				for b.Loop() {
					if err := q.Add("key", "value"); err != nil {
						b.Fatal(err)
					}
					if fetch {
						if _, err := q.Fetch(); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
		}
	}
}
