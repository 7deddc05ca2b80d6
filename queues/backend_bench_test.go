package queues_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"kemi/queues"
	"kemi/queues/queuestest"
)

// BenchmarkDurable: one node's Add, Fetch and Take+Ack on a durable queue (dbmode=4), one
// goroutine, for each backend in the same run: the SQLite journal, JetStream R1 (one
// embedded server) and JetStream R3 (three embedded servers in one cluster, all on this
// machine). ns/op is the mean latency; ops/s, p50-us and p99-us are reported too.
// docs/benchmarks.md has the figures and the command:
//
//	go test -run '^$' -bench BenchmarkDurable -benchtime 2000x ./queues
func BenchmarkDurable(b *testing.B) {
	o := queues.Options{Name: "bench", DBMode: queues.DBModeDurable}
	backends := []struct {
		name string
		open func(b *testing.B) *queues.Queue
	}{
		{"sqlite", func(b *testing.B) *queues.Queue {
			s, err := queues.OpenSQLite(filepath.Join(b.TempDir(), "q.db"))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			reg, _ := queues.NewRegistry(o)
			if err := reg.Load(context.Background(), s); err != nil {
				b.Fatal(err)
			}
			return reg.Get("bench")
		}},
		{"jetstream-R1", func(b *testing.B) *queues.Queue {
			return benchJSQueue(b, queuestest.NATSServer(b).ClientURL(), 1, o)
		}},
		{"jetstream-R3", func(b *testing.B) *queues.Queue {
			_, urls := queuestest.NATSCluster(b, 3)
			return benchJSQueue(b, urls, 3, o)
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			q := be.open(b)
			b.Run("add", func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					if err := q.Add("k", "value of a queued item"); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				report(b, lat)
				drain(b, q)
			})
			b.Run("fetch", func(b *testing.B) {
				fill(b, q, b.N)
				b.ResetTimer()
				lat := make([]time.Duration, 0, b.N)
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					if _, err := q.Fetch(); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				report(b, lat)
			})
			b.Run("take_ack", func(b *testing.B) {
				fill(b, q, b.N)
				b.ResetTimer()
				lat := make([]time.Duration, 0, b.N)
				for i := 0; i < b.N; i++ {
					t0 := time.Now()
					tk, err := q.Take(context.Background(), 0)
					if err != nil {
						b.Fatal(err)
					}
					if err := tk.Ack(); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				b.StopTimer()
				report(b, lat)
			})
		})
	}
}

func benchJSQueue(b *testing.B, urls string, replicas int, o queues.Options) *queues.Queue {
	reg, _ := queues.NewRegistry(o)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	j, err := queues.OpenJetStream(ctx, urls, queues.JetStreamOptions{Replicas: replicas})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
	if err := reg.Connect(ctx, j); err != nil {
		b.Fatal(err)
	}
	return reg.Get("bench")
}

func fill(b *testing.B, q *queues.Queue, n int) {
	b.Helper()
	for i := range n {
		if err := q.Add(fmt.Sprint("k", i), "value of a queued item"); err != nil {
			b.Fatal(err)
		}
	}
}

func drain(b *testing.B, q *queues.Queue) {
	b.Helper()
	for {
		if _, err := q.Fetch(); err == queues.ErrEmpty {
			return
		} else if err != nil {
			b.Fatal(err)
		}
	}
}

// report adds ops/s and the 50th and 99th percentile latencies.
func report(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	slices.Sort(lat)
	b.ReportMetric(float64(len(lat))/sum.Seconds(), "ops/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-us")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-us")
}
