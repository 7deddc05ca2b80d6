package async_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/async"
)

// vm is a Lua state with KSR bound to env.
func vm(t *testing.T, env *ksr.Env) *lua.LState {
	t.Helper()
	L := lua.NewState()
	t.Cleanup(L.Close)
	ksr.Register(L, env)
	return L
}

func eval(t *testing.T, L *lua.LState, expr string) string {
	t.Helper()
	if err := L.DoString("return " + expr); err != nil {
		t.Fatal(err)
	}
	v := L.Get(-1)
	L.Pop(1)
	return v.String()
}

// TestLimitsAndCodes: KSR.async's argument limits and codes, checked before
// anything is suspended: -1 with a log line, false for too few arguments.
func TestLimitsAndCodes(t *testing.T) {
	var log bytes.Buffer
	m := async.New()
	m.Settings().Workers = 0 // no group to make: ksrtest has no workers
	d := ksrtest.Deps(t, &log, m)
	env := ksr.NewEnv(d, "receiver/0", "receivers", 0)
	L := vm(t, env)
	for _, c := range []struct{ expr, want, log string }{
		{`KSR.async.route("f", 0)`, "-1", "seconds must be 1..99"},
		{`KSR.async.route("f", 100)`, "-1", "seconds must be 1..99"},
		{`KSR.async.route("", 1)`, "-1", "invalid async route name"},
		{`KSR.async.route("` + strings.Repeat("f", 63) + `", 1)`, "-1", "invalid async route name"},
		{`KSR.async.ms_route("f", 30000)`, "-1", "milliseconds must be 1..29999"},
		{`KSR.async.route("f", 1)`, "-1", `0) leaves no worker to resume in`},
		{`KSR.async.task_route("f")`, "-1", "no async_workers group: set async_workers=N"},
		{`KSR.async.task_group_route("f", "g")`, "-1", `async_workers_group \"g\" not found`},
		{`KSR.async.task_group_data("f", "g", "x")`, "-1", `async_workers_group \"g\" not found`},
		{`KSR.async.ms_sleep(0)`, "-1", "milliseconds must be 1..29999"},
		{`KSR.async.sleep(1)`, "-1", "not in a SIP worker"},
		{`KSR.async.route("f")`, "false", "invalid number of parameters"},
		{`KSR.async.sleep()`, "false", "invalid number of parameters"},
	} {
		log.Reset()
		if got := eval(t, L, c.expr); got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
		if !strings.Contains(log.String(), c.log) {
			t.Errorf("%s: log lacks %q:\n%s", c.expr, c.log, log.String())
		}
	}
	if held, ds, busy := m.Idle(time.Now(), nil); held != 0 || ds != nil || busy != "" || m.Suspended() != 0 {
		t.Errorf("Idle = %d, %v, %q; suspended %d", held, ds, busy, m.Suspended())
	}
}

// TestNotLoaded: without loadmodule the functions exist and return -1.
func TestNotLoaded(t *testing.T) {
	var log bytes.Buffer
	d := ksrtest.Deps(t, &log)
	tbl, err := ksr.NewTable(ksr.Core(), async.New())
	if err != nil {
		t.Fatal(err)
	}
	d.Table = tbl
	L := vm(t, ksr.NewEnv(d, "receiver/0", "receivers", 0))
	for _, expr := range []string{`KSR.async.route("f", 1)`, `KSR.async.task_data("f", "x")`, `KSR.async.ms_sleep(10)`} {
		log.Reset()
		if got := eval(t, L, expr); got != "-1" {
			t.Errorf("%s = %s, want -1", expr, got)
		}
		if !strings.Contains(log.String(), `async module not loaded`) {
			t.Errorf("%s: log %s", expr, log.String())
		}
	}
}

// TestGetters: get_gname is the group of an async worker, "" elsewhere;
// get_data the running data task's data.
func TestGetters(t *testing.T) {
	var log bytes.Buffer
	m := async.New()
	m.Settings().Workers = 0
	d := ksrtest.Deps(t, &log, m)
	env := ksr.NewEnv(d, "slow/0", "slow", 0)
	L := vm(t, env)
	if got := eval(t, L, `"[" .. KSR.async.get_gname() .. "]"`); got != "[]" {
		t.Errorf("get_gname outside an async worker = %s", got)
	}
	// $async(...) is null outside (async_sleep.c pv_get_async), where the
	// KEMI getters give "" (SR_KEMI_XVAL_NULL_EMPTY).
	if got := eval(t, L, `tostring(KSR.pv.get("$async(gname)")) .. "/" .. tostring(KSR.pv.get("$async(data)"))`); got != "nil/nil" {
		t.Errorf("$async outside an async worker and a data task = %s", got)
	}
	env.InAsyncData = true // a data task with empty data: "" (not null)
	if got := eval(t, L, `"[" .. KSR.pv.get("$async(data)") .. "]"`); got != "[]" {
		t.Errorf("$async(data) of an empty data task = %s", got)
	}
	env.AsyncWorker, env.AsyncData, env.InAsyncData = true, "payload", true
	if got := eval(t, L, `KSR.async.get_gname() .. "/" .. KSR.async.get_data()`); got != "slow/payload" {
		t.Errorf("get_gname/get_data = %s", got)
	}
	if got := eval(t, L, `KSR.pv.get("$async(gname)") .. "/" .. KSR.pv.get("$async(data)")`); got != "slow/payload" {
		t.Errorf("$async(gname)/$async(data) = %s", got)
	}
}
