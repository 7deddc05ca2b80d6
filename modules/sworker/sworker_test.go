package sworker_test

import (
	"bytes"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/sworker"
)

// eval runs a Lua expression on a fresh VM of d, with msg bound.
func eval(t *testing.T, d *ksr.Deps, msg *ksr.Msg, expr string) lua.LValue {
	t.Helper()
	L := lua.NewState()
	defer L.Close()
	env := ksr.NewEnv(d, "receiver/0", "receivers", 0)
	ksr.Register(L, env)
	env.Msg = msg
	if err := L.DoString("return " + expr); err != nil {
		t.Fatal(err)
	}
	return L.Get(-1)
}

// TestTaskOutsideItsPlace: KSR.sworker.task refuses a faked message, a
// message outside pre-routing and, when the module is not loaded, any
// message, with -1 and a log line; KSR.sworker.active is -1 outside a
// delegated message. Too few arguments give false (KEMI's rule).
func TestTaskOutsideItsPlace(t *testing.T) {
	var log bytes.Buffer
	d := ksrtest.Deps(t, &log)
	// Not loaded: its exports are in the table (as the engine builds it),
	// the module is not provisioned.
	tbl, err := ksr.NewTable(ksr.Core(), sworker.New())
	if err != nil {
		t.Fatal(err)
	}
	d.Table = tbl
	env := ksr.NewEnv(d, "x", "x", 0)
	req := env.Faked(ksr.RouteRequest)
	real := *req
	real.Faked = false
	cases := []struct {
		name string
		msg  *ksr.Msg
		log  string
	}{
		{"faked", req, "invalid usage for null or faked message"},
		{"not pre-routing", &real, "not used in pre-routing phase"},
		{"not loaded", &ksr.Msg{Req: real.Req, PreRouting: true}, `module not loaded (loadmodule \"sworker.so\")`},
	}
	for _, c := range cases {
		log.Reset()
		if got := eval(t, d, c.msg, `KSR.sworker.task("g")`); got.String() != "-1" {
			t.Errorf("%s: task = %s, want -1", c.name, got)
		}
		if !strings.Contains(log.String(), c.log) {
			t.Errorf("%s: log lacks %q:\n%s", c.name, c.log, log.String())
		}
	}
	if got := eval(t, d, nil, `KSR.sworker.active()`); got.String() != "-1" {
		t.Errorf("active = %s, want -1", got)
	}
	if got := eval(t, d, nil, `KSR.sworker.task()`); got != lua.LFalse {
		t.Errorf("task() = %s, want false", got)
	}
}

// TestTaskUnknownGroup: with the module loaded, an unknown group is -1 and
// the message stays with the caller.
func TestTaskUnknownGroup(t *testing.T) {
	var log bytes.Buffer
	m := sworker.New()
	d := ksrtest.Deps(t, &log, m)
	env := ksr.NewEnv(d, "x", "x", 0)
	msg := env.Faked(ksr.RouteRequest)
	msg.Faked, msg.PreRouting = false, true
	if got := eval(t, d, msg, `KSR.sworker.task("nosuch")`); got.String() != "-1" {
		t.Errorf("task = %s, want -1", got)
	}
	if msg.Delegated || !strings.Contains(log.String(), "async workers group not found") {
		t.Errorf("delegated %v, log:\n%s", msg.Delegated, log.String())
	}
}

// TestXDataParam: xdata must name a $var.
func TestXDataParam(t *testing.T) {
	m := sworker.New()
	set := m.Info().Params[0].Set
	var notices []string
	setup := ksr.NewSetup("kemi.cfg", &notices)
	st := func(v string) config.Stmt {
		c, err := config.Parse("kemi.cfg", []byte(`modparam("sworker", "xdata", "`+v+`")`), config.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c.Stmts[0]
	}
	if err := set(setup, st("$avp(x)")); err == nil || !strings.Contains(err.Error(), `modparam sworker xdata "$avp(x)": expected a writable $var(name) variable, at kemi.cfg:1`) {
		t.Errorf("error %v", err)
	}
	if err := set(setup, st("$var(x)")); err != nil || m.Settings().XData != "$var(x)" {
		t.Errorf("error %v, xdata %q", err, m.Settings().XData)
	}
}
