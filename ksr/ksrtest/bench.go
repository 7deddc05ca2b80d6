package ksrtest

import (
	"syscall"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// CPUTime is the process's CPU time so far (user and system, all threads,
// GC included), as os.clock reads it in the bench/*-loop.sh scripts: on a
// busy machine the modules' Lua benchmarks report it per iteration
// (cpu-ns/op), steadier than ns/op.
func CPUTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchLoop defines the Lua function bench(n) from src on v and times
// bench(b.N), reporting cpu-ns/op besides ns/op.
func (v *VM) BenchLoop(b *testing.B, src string) {
	b.Helper()
	if err := v.L.DoString(src); err != nil {
		b.Fatal(err)
	}
	fn := v.L.GetGlobal("bench")
	b.ReportAllocs()
	b.ResetTimer()
	cpu := CPUTime(b)
	if err := v.L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true}, lua.LNumber(b.N)); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(CPUTime(b)-cpu)/float64(b.N), "cpu-ns/op")
}
