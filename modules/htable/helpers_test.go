package htable_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/luavm"
	"kemi/modules/htable"
	"kemi/timers"
)

// t0 is the fake clock's start: a whole second, so that expiry boundaries
// are exact.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// syncBuf is the log sink shared by the VMs of one test.
type syncBuf = ksrtest.LogBuffer

// fixture is one provisioned htable module with its deps and fake clock.
type fixture struct {
	tb    testing.TB
	m     *htable.Module
	d     *ksr.Deps
	clock *timers.Fake
	log   *syncBuf
}

// newFixture provisions htable with the given table specs
// ("name=>size=4;...") on a fake clock, as the engine would.
func newFixture(tb testing.TB, specs ...string) *fixture {
	tb.Helper()
	m := htable.New()
	for _, s := range specs {
		sp, err := htable.ParseSpec(s)
		if err != nil {
			tb.Fatal(err)
		}
		m.Settings().Tables = append(m.Settings().Tables, sp)
	}
	return provision(tb, m)
}

func provision(tb testing.TB, m *htable.Module) *fixture {
	tb.Helper()
	buf := &syncBuf{}
	var w io.Writer = buf
	clock := timers.NewFake(t0)
	d := &ksr.Deps{
		Log: slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: clock.Now,
		Shv: ksr.NewSharedVars(),
		PVs: map[string]*ksr.PV{},
	}
	if err := d.Provision(ksrtest.Host{D: d, Clk: clock}, m); err != nil {
		tb.Fatal(err)
	}
	t, err := ksr.NewTable(ksr.Core(), m)
	if err != nil {
		tb.Fatal(err)
	}
	d.Table = t
	return &fixture{tb: tb, m: m, d: d, clock: clock, log: buf}
}

// vm is one VM with KSR registered on its own Env, as an engine worker has.
type vm struct {
	tb  testing.TB
	vm  *luavm.VM
	env *ksr.Env
}

func (f *fixture) vm(name, script string) *vm {
	f.tb.Helper()
	g, err := luavm.Build(1, []string{name + ".lua"}, func(string) ([]byte, error) { return []byte(script), nil })
	if err != nil {
		f.tb.Fatal(err)
	}
	var cur luavm.Current
	cur.Store(g)
	env := ksr.NewEnv(f.d, name, "test", 0)
	v, err := luavm.New(&cur, luavm.Options{Name: name, Init: func(L *lua.LState) error { ksr.Register(L, env); return nil }})
	if err != nil {
		f.tb.Fatal(err)
	}
	f.tb.Cleanup(v.Close)
	return &vm{tb: f.tb, vm: v, env: env}
}

// run runs a Lua chunk and returns its results as Go values: int64 for
// integral numbers, float64, string, bool, or nil.
func (v *vm) run(chunk string) []any {
	v.tb.Helper()
	L := v.vm.L
	fn, err := L.LoadString(chunk)
	if err != nil {
		v.tb.Fatalf("compile %q: %v", chunk, err)
	}
	L.Push(fn)
	if err := L.PCall(0, lua.MultRet, nil); err != nil {
		v.tb.Fatalf("run %q: %v", chunk, err)
	}
	n := L.GetTop()
	out := make([]any, n)
	for i := 1; i <= n; i++ {
		out[i-1] = goValue(L.Get(i))
	}
	L.SetTop(0)
	return out
}

func goValue(v lua.LValue) any {
	switch x := v.(type) {
	case lua.LNumber:
		if float64(x) == float64(int64(x)) {
			return int64(x)
		}
		return float64(x)
	case lua.LString:
		return string(x)
	case lua.LBool:
		return bool(x)
	case *lua.LNilType:
		return nil
	}
	return fmt.Sprintf("<%s %v>", v.Type(), v)
}

// vals builds an expected result list; ints become int64 as goValue returns.
func vals(v ...any) []any {
	for i, x := range v {
		if n, ok := x.(int); ok {
			v[i] = int64(n)
		}
	}
	return v
}

func same(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
