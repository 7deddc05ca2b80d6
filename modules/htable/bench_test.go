package htable_test

import (
	"sync"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr/ksrtest"
)

// Lua loops, one Lua call running n iterations, so that ns/op and
// allocs/op are per KSR call (as in bench/htable-loop.sh against Kamailio).
// inc_keys spreads the increments over 64 keys (so over most of the 256
// slots of a size=8 table): different workers then rarely share a slot.
const benchScript = `
function empty(n)
	for _ = 1, n do end
end
function inc(n)
	for _ = 1, n do KSR.htable.sht_inc("bench", "k") end
end
function inc_keys(n)
	local keys = {}
	for i = 1, 64 do keys[i] = "k" .. i end
	for i = 1, n do KSR.htable.sht_inc("bench", keys[i % 64 + 1]) end
end
function get(n)
	for _ = 1, n do KSR.htable.sht_get("bench", "g") end
end
function pv_get(n)
	for _ = 1, n do KSR.pv.get("$sht(bench=>g)") end
end
`

const benchTable = "bench=>size=8;initval=0"

// benchVMs runs fn on vms VMs on as many goroutines, b.N calls in all, and
// reports cpu-ns/op (process CPU time per call) besides ns/op.
func benchVMs(b *testing.B, vms int, fn string) *fixture {
	f := newFixture(b, benchTable)
	ws := make([]*vm, vms)
	for i := range ws {
		ws[i] = f.vm("bench", benchScript)
		ws[i].run(`KSR.htable.sht_seti("bench", "g", 1)`)
		ws[i].vm.CallGlobal(fn, lua.LNumber(100))
	}
	errs := make([]error, vms)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, w := range ws {
		n := b.N / vms
		if i == 0 {
			n += b.N % vms
		}
		wg.Go(func() {
			<-start
			errs[i] = w.vm.CallGlobal(fn, lua.LNumber(n))
		})
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := ksrtest.CPUTime(b)
	close(start)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(ksrtest.CPUTime(b)-cpu)/float64(b.N), "cpu-ns/op")
	for _, err := range errs {
		if err != nil {
			b.Fatalf("%v\n%s", err, f.log)
		}
	}
	return f
}

// BenchmarkHtableLua: ns and allocations per KSR call from a Lua loop, on
// 1 VM and on 4 VMs sharing the table.
//
//	empty        the bare Lua for loop
//	inc          KSR.htable.sht_inc on one key (one slot: the 4 VMs contend)
//	inc_keys     KSR.htable.sht_inc over 64 keys
//	get          KSR.htable.sht_get of an integer item
//	pv_get       KSR.pv.get("$sht(bench=>g)")
func BenchmarkHtableLua(b *testing.B) {
	for _, fn := range []string{"empty", "inc", "inc_keys", "get", "pv_get"} {
		b.Run(fn, func(b *testing.B) { benchVMs(b, 1, fn) })
		b.Run(fn+"_4vm", func(b *testing.B) { benchVMs(b, 4, fn) })
	}
}

// TestIncConcurrent: 4 workers incrementing the same keys lose no update.
func TestIncConcurrent(t *testing.T) {
	f := newFixture(t, benchTable)
	var wg sync.WaitGroup
	for range 4 {
		w := f.vm("w", benchScript)
		wg.Go(func() {
			if err := w.vm.CallGlobal("inc", lua.LNumber(2000)); err != nil {
				t.Error(err)
			}
			if err := w.vm.CallGlobal("inc_keys", lua.LNumber(6400)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got := f.vm("check", "").run(`local s = 0
		for i = 1, 64 do s = s + KSR.htable.sht_get("bench", "k" .. i) end
		return KSR.htable.sht_get("bench", "k"), s`)
	if !same(got, vals(8000, 4*6400)) {
		t.Fatalf("got %v, want 8000 and %d", got, 4*6400)
	}
}

// TestGetDoesNotAllocate pins the hot path: sht_get of an integer
// allocates nothing once the VM is warm (the loop itself is the baseline).
// sht_inc allocates one word per call: boxing its result, a Lua number
// above ksr.BoxInt's cache.
func TestGetDoesNotAllocate(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	f := newFixture(t, benchTable)
	w := f.vm("w", benchScript)
	w.run(`KSR.htable.sht_seti("bench", "g", 1)`)
	n := lua.LNumber(1000)
	allocs := func(fn string) float64 {
		g := w.vm.L.GetGlobal(fn)
		w.vm.Call(g, n)
		return testing.AllocsPerRun(20, func() {
			if err := w.vm.Call(g, n); err != nil {
				t.Fatal(err)
			}
		})
	}
	empty := allocs("empty")
	for _, fn := range []string{"get"} {
		if a := allocs(fn); a > empty+2 {
			t.Errorf("1000 %s calls: %v allocations, the empty loop %v", fn, a, empty)
		}
	}
}
