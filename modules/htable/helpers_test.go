package htable_test

import (
	"io"
	"log/slog"
	"slices"
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

// run runs a Lua chunk in the VM and returns its results as Go values
// (ksrtest.Results).
func (v *vm) run(chunk string) []any {
	v.tb.Helper()
	return ksrtest.Results(v.tb, v.vm.L, chunk)
}

// vals builds an expected result list (ksrtest.Vals).
func vals(v ...any) []any { return ksrtest.Vals(v...) }

func same(a, b []any) bool { return slices.Equal(a, b) }
