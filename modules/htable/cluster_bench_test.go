package htable_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/queues/queuestest"
)

const clusterBenchScript = `
function sets(n)
	for i = 1, n do KSR.htable.sht_sets("rt", "k" .. (i % 1024), "value") end
end
`

// BenchmarkClusterSets: KSR.htable.sht_sets from one Lua loop (1024 keys),
// on a table with dmqreplicate=1 replicated to a second node through an
// embedded nats-server (on), and on the same table without replication
// (off). ns/op and sets/s include waiting, after the loop, until every
// change was acknowledged by JetStream (the sustained rate); loop-ns/op is
// the Lua loop alone (what a script pays per call while JetStream keeps
// up). The nats-server runs in the test process, on the same CPUs.
func BenchmarkClusterSets(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := map[bool]string{false: "off", true: "on"}[on]
		b.Run(name, func(b *testing.B) {
			var f *fixture
			if on {
				srv := queuestest.NATSServer(b)
				f = node(b, srv.ClientURL())
				node(b, srv.ClientURL()) // the other node, applying every change
			} else {
				f = newFixture(b, "rt=>size=4;autoexpire=60")
			}
			w := f.vm("bench", clusterBenchScript)
			w.vm.CallGlobal("sets", lua.LNumber(100))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if err := w.vm.CallGlobal("sets", lua.LNumber(b.N)); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(b.N), "loop-ns/op")
			if on {
				if err := f.m.Table("rt").Replica().Flush(b.Context()); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sets/s")
		})
	}
}

// BenchmarkClusterLatency: the time from a set on node A until node B reads
// the new value, one set at a time (B's table polled); median and p99.
func BenchmarkClusterLatency(b *testing.B) {
	srv := queuestest.NATSServer(b)
	a, bn := node(b, srv.ClientURL()), node(b, srv.ClientURL())
	ta, tb := a.m.Table("rt"), bn.m.Table("rt")
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		v := strconv.Itoa(i)
		start := time.Now()
		ta.Set("lat", true, v, 0, 0, a.clock.Now().Unix(), nil)
		for {
			if it, ok := tb.Get("lat", bn.clock.Now().Unix(), nil); ok && it.Str == v {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("set %d not seen on B within 30 s", i)
			}
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
