package mqueue_test

import (
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr/ksrtest"
	"kemi/queues"
)

// The loops of bench/lua/mqueue.lua, one Lua call running n iterations, so
// that ns/op and allocs/op are per iteration (per mq_add+mq_fetch pair) and
// the cost of entering Lua is amortised, as in the bench/mqueue-loop.sh
// comparison with Kamailio.
const mqBenchScript = `
function empty(n)
	for _ = 1, n do end
end
function probe(n)
	for _ = 1, n do KSR.x.probe() end
end
function is_invite(n)
	for _ = 1, n do KSR.is_INVITE() end
end
function pair(n)
	for _ = 1, n do
		KSR.mqueue.mq_add("bench", "k", "v")
		KSR.mqueue.mq_fetch("bench")
	end
end
function pair_checked(n)
	for _ = 1, n do
		if KSR.mqueue.mq_add("bench", "k", "v") ~= 1 or KSR.mqueue.mq_fetch("bench") ~= 1 then
			error("mq_add/mq_fetch failed")
		end
	end
end
`

// reportCPU adds cpu-ns/op: the process CPU time per iteration since start,
// which is what Lua's os.clock measures in Kamailio's worker processes. On a
// busy machine it is steadier than ns/op (wall time), which counts the time
// the benchmark waited for a CPU.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(ksrtest.CPUTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// benchQueue is the queue of bench/kamailio/mqueue.cfg.
var benchQueue = queues.Options{Name: "bench", Size: 1000}

func benchLoop(b *testing.B, fn string) {
	d, logs := mqDeps(b, benchQueue)
	m := newMQVM(b, d, "bench", mqBenchScript)
	m.vm.CallGlobal(fn, lua.LNumber(100)) // warm up: first map insert, ring slots
	b.ReportAllocs()
	b.ResetTimer()
	cpu := ksrtest.CPUTime(b)
	if err := m.vm.CallGlobal(fn, lua.LNumber(b.N)); err != nil {
		b.Fatalf("%s: %v\n%s", fn, err, logs)
	}
	b.StopTimer()
	reportCPU(b, cpu)
	if n := d.Queues().Get("bench").Len(); n != 0 {
		b.Fatalf("%d items left in the queue", n)
	}
}

// BenchmarkMqueueLua: ns and allocations per iteration of a Lua loop.
//
//	empty    the bare Lua for loop
//	probe    KSR.x.probe(): the cost of an empty KSR call (baseline)
//	is_INVITE KSR.is_INVITE() without a message
//	pair     KSR.mqueue.mq_add + KSR.mqueue.mq_fetch on one VM
//	pair_4vm the same on 4 VMs on 4 goroutines sharing the queue (b.N pairs in all)
func BenchmarkMqueueLua(b *testing.B) {
	b.Run("empty", func(b *testing.B) { benchLoop(b, "empty") })
	b.Run("probe", func(b *testing.B) { benchLoop(b, "probe") })
	b.Run("is_INVITE", func(b *testing.B) { benchLoop(b, "is_invite") })
	b.Run("pair", func(b *testing.B) { benchLoop(b, "pair") })
	b.Run("pair_4vm", func(b *testing.B) {
		const vms = 4
		d, logs := mqDeps(b, benchQueue)
		ms := make([]*mqVM, vms)
		for i := range ms {
			ms[i] = newMQVM(b, d, "bench", mqBenchScript)
			ms[i].vm.CallGlobal("pair", lua.LNumber(100))
		}
		// Every pair adds before it fetches, so the queue is never empty and
		// pair_checked never fails, whatever the interleaving.
		errs := make([]error, vms)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, m := range ms {
			n := b.N / vms
			if i == 0 {
				n += b.N % vms
			}
			wg.Go(func() {
				<-start
				errs[i] = m.vm.CallGlobal("pair_checked", lua.LNumber(n))
			})
		}
		b.ReportAllocs()
		b.ResetTimer()
		cpu := ksrtest.CPUTime(b)
		close(start)
		wg.Wait()
		b.StopTimer()
		reportCPU(b, cpu)
		for _, err := range errs {
			if err != nil {
				b.Fatalf("%v\n%s", err, logs)
			}
		}
		if n := d.Queues().Get("bench").Len(); n != 0 {
			b.Fatalf("%d items left in the queue", n)
		}
	})
}

// TestMqueuePairDoesNotAllocate pins the hot path: an mq_add+mq_fetch pair
// from Lua allocates nothing once the VM is warm. The Lua for loop itself
// allocates (gopher-lua boxes loop counters above 127 in blocks of 32
// floats), so the pair loop is compared with the empty loop.
func TestMqueuePairDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	d, _ := mqDeps(t, benchQueue)
	m := newMQVM(t, d, "bench", mqBenchScript)
	n := lua.LNumber(1000)
	allocs := func(fn string) float64 {
		f := m.vm.L.GetGlobal(fn)
		m.vm.Call(f, n)
		return testing.AllocsPerRun(20, func() {
			if err := m.vm.Call(f, n); err != nil {
				t.Fatal(err)
			}
		})
	}
	empty, pair := allocs("empty"), allocs("pair")
	// Anything allocated per pair would add >= 1000.
	if pair > empty+2 {
		t.Fatalf("1000 mq_add+mq_fetch pairs: %v allocations, the empty loop %v", pair, empty)
	}
}
