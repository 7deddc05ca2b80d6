package luavm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

const mb = 1 << 20

// The library functions that build one value in a single Go call refuse a
// result over the budget before allocating it; smaller ones work as before.
func TestMemGuardsRefuseHugeResults(t *testing.T) {
	vm, _ := newVM(t, `
big = string.rep("x", 1000)
many = {}
for i = 1, 2000 do many[i] = big end
function rep() return string.rep("x", 2^30) end
function method() return ("x"):rep(2^30) end
function fmtwidth() return string.format("%1000000d%1000000d", 1, 2) end
function fmtargs() return string.format(string.rep("%s", 1100), unpack(many, 1, 1100)) end
function concat() return table.concat(many) end
function small()
	assert(string.rep("ab", 3) == "ababab")
	assert(("ab"):rep(0) == "")
	assert(string.format("%5d|%s|%.2f", 3, "y", 1.5) == "    3|y|1.50")
	assert(table.concat({"a", 1, "b"}, ",") == "a,1,b")
	assert(table.concat(many, "", 1, 10) == string.rep(big, 10))
end`, Options{MaxMem: 1 * mb})
	for fn, want := range map[string]string{
		"rep": "string.rep: a result of 1073741824 bytes exceeds the memory budget of 1 MB", "method": "string.rep",
		"fmtwidth": "string.format", "fmtargs": "string.format", "concat": "table.concat",
	} {
		err := vm.CallGlobal(fn)
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(e.Msg, want) || !strings.Contains(e.Msg, "memory budget of 1 MB (max_mem_mb)") {
			t.Errorf("%s: got %v, want an error containing %q", fn, err, want)
		}
	}
	if err := vm.CallGlobal("small"); err != nil {
		t.Fatalf("results under the budget: %v", err)
	}
}

// hogScript grows the heap without bound in three ways, each keeping what
// it built in a global.
const hogScript = `
count = 0
function double() hog = "x" while true do hog = hog .. hog end end
function tbl() hog = {} local i = 0 while true do i = i + 1 hog[i] = i end end
function pieces() hog = {} local i = 0 while true do i = i + 1 hog[i] = string.rep("y", 4096) .. i end end
function inc() count = count + 1 return count end
`

// The memory watchdog stops a handler that grows the heap past the budget;
// the VM drops its state (the handler's globals are gone) and runs the next
// event normally.
func TestMemBudgetStopsHeapGrowth(t *testing.T) {
	w := NewMemWatchdog()
	w.Interval = time.Millisecond
	vm, _ := newVM(t, hogScript, Options{MaxMem: 16 * mb, MemWatchdog: w})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i, fn := range []string{"double", "tbl", "pieces"} {
		line := map[string]string{"double": "test.lua:3:", "tbl": "test.lua:4:", "pieces": "test.lua:5:"}[fn]
		if err := vm.CallGlobal("inc"); err != nil {
			t.Fatal(err)
		}
		err := vm.CallGlobal(fn)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindMemory {
			t.Fatalf("%s: got %v, want a memory budget error", fn, err)
		}
		if !strings.Contains(e.Error(), "memory budget of 16 MB (max_mem_mb)") || !strings.Contains(e.Traceback, line) {
			t.Fatalf("%s: error %q, traceback %q", fn, e.Error(), e.Traceback)
		}
		if w.Stopped() != int64(i+1) {
			t.Fatalf("%s: stopped count %d", fn, w.Stopped())
		}
		if v := vm.L.GetGlobal("hog"); v != lua.LNil {
			t.Fatalf("%s: the handler's global survived: the state was not dropped", fn)
		}
		// A fresh state: count starts over.
		if err := vm.CallGlobal("inc"); err != nil {
			t.Fatalf("%s: next event: %v", fn, err)
		}
		if n := vm.L.GetGlobal("count"); n != lua.LNumber(1) {
			t.Fatalf("%s: count %v", fn, n)
		}
	}
}

// check attributes growth to the event that ran through it: an event that
// began after the growth started is not stopped, and growth that a
// collection shows to be garbage stops nothing.
func TestMemWatchdogAttribution(t *testing.T) {
	w := NewMemWatchdog()
	long, _ := newVM(t, "", Options{MaxMem: 10 * mb, MemWatchdog: w})
	short, _ := newVM(t, "", Options{MaxMem: 10 * mb, MemWatchdog: w})
	goal := uint64(1000)
	at := func(heap, live uint64) func() memSample {
		return func() memSample { return memSample{heap: heap * mb, live: live * mb, goal: goal * mb} }
	}
	gcs := 0
	// step samples the heap at heap/live MB; when there are suspects, a
	// collection finds afterHeap/afterLive MB.
	step := func(heap, live, afterHeap, afterLive uint64) {
		t.Helper()
		if sus := w.check(at(heap, live)); len(sus) > 0 {
			if afterHeap == 0 {
				t.Fatalf("unexpected suspects at %d/%d MB", heap, live)
			}
			gcs++
			w.confirm(sus, at(afterHeap, afterLive)())
		}
	}

	long.started.Store(5)
	step(100, 50, 0, 0) // long's event seen: base 100/50
	short.started.Store(7)
	step(108, 50, 0, 0) // short's event seen at 108
	// The heap grew by 15 MB since long's event was seen, by 7 since
	// short's: long is a suspect; after the collection the live heap grew
	// by 12 MB, over its 10 MB budget.
	step(115, 50, 62, 62)
	if gcs != 1 {
		t.Fatalf("%d collections, want 1", gcs)
	}
	if long.started.Load() != stoppedByMemory {
		t.Fatalf("long event not stopped: %d", long.started.Load())
	}
	if short.started.Load() != 7 {
		t.Fatalf("short event stopped too: %d", short.started.Load())
	}
	if w.Stopped() != 1 {
		t.Fatalf("stopped %d", w.Stopped())
	}

	// Garbage: the heap grew by 15 MB but live only by 2 MB after the
	// collection; nothing is stopped, and that garbage is not counted again.
	short.started.Store(8)
	long.started.Store(0)
	step(100, 50, 0, 0)
	step(115, 50, 52, 52)
	if short.started.Load() != 8 {
		t.Fatalf("garbage stopped an event: %d", short.started.Load())
	}
	step(60, 52, 0, 0)
	// The live heap reached after a natural collection counts: +11 MB.
	step(70, 61, 61, 61)
	if short.started.Load() != stoppedByMemory {
		t.Fatalf("live growth of 11 MB not stopped: %d", short.started.Load())
	}
	if w.Stopped() != 2 {
		t.Fatalf("stopped %d", w.Stopped())
	}

	// Past twice the budget but under the collector's goal when the event
	// began: garbage may explain it, so a collection decides (and finds
	// garbage).
	long.started.Store(9)
	step(100, 60, 0, 0)
	step(121, 60, 61, 61)
	if long.started.Load() != 9 || gcs != 4 {
		t.Fatalf("growth under the goal stopped without a collection: %d", long.started.Load())
	}
	// Past twice the budget and past the goal the event began with: stopped
	// without a collection, even if the goal rose meanwhile.
	goal = 110
	long.started.Store(10)
	step(100, 60, 0, 0)
	goal = 1000
	step(121, 61, 0, 0)
	if long.started.Load() != stoppedByMemory || w.Stopped() != 3 {
		t.Fatalf("growth of 21 MB past the goal not stopped at once: %d", long.started.Load())
	}

	// Nothing runs: no metric is read.
	long.started.Store(0)
	short.started.Store(0)
	if sus := w.check(func() memSample { t.Fatal("sampled while idle"); return memSample{} }); sus != nil {
		t.Fatal(sus)
	}
}

// BenchmarkCallEmptyMem is BenchmarkCallEmpty with the memory budget on
// (and its watchdog registered, not running): the cost of the event marker
// and of the per-instruction context check.
func BenchmarkCallEmptyMem(b *testing.B) {
	cur := &Current{}
	g, _ := Build(1, []string{"b.lua"}, func(string) ([]byte, error) {
		return []byte("function f() end\nfunction loop() local s = 0 for i = 1, 1000 do s = s + i end end"), nil
	})
	cur.Store(g)
	vm, err := New(cur, Options{MaxMem: 256 * mb, MemWatchdog: NewMemWatchdog()})
	if err != nil {
		b.Fatal(err)
	}
	defer vm.Close()
	b.Run("empty", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_ = vm.CallGlobal("f")
		}
	})
	b.Run("loop1000", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			_ = vm.CallGlobal("loop")
		}
	})
}

// A handler running as a coroutine (CallCo, for KSR.async.sleep) is stopped
// the same way, and the VM goes on with a fresh state.
func TestMemBudgetStopsCoroutineHandler(t *testing.T) {
	w := NewMemWatchdog()
	w.Interval = time.Millisecond
	vm, _ := newVM(t, hogScript, Options{MaxMem: 16 * mb, MemWatchdog: w})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	co, err := vm.CallGlobalCo("tbl")
	var e *Error
	if co != nil || !errors.As(err, &e) || e.Kind != KindMemory {
		t.Fatalf("got %v %v, want a memory budget error", co, err)
	}
	if v := vm.L.GetGlobal("hog"); v != lua.LNil {
		t.Fatal("the handler's global survived: the state was not dropped")
	}
	if co, err := vm.CallGlobalCo("inc"); co != nil || err != nil {
		t.Fatalf("next handler: %v %v", co, err)
	}
	if n := vm.L.GetGlobal("count"); n != lua.LNumber(1) {
		t.Fatalf("count %v", n)
	}
}
