package ksr_test

import (
	"bytes"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/ksr/ksrtest"
)

// demo is a module for these tests: one function of each shape the
// checks care about.
type demo struct{ calls []string }

func (d *demo) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{Name: "demo", Exports: []ksr.Submodule{{Name: "demo", Funcs: []ksr.Export{
		{Name: "add", Func: d.add, Ret: ksr.Int, Args: []string{"a", "b"}, Doc: "Sum of a and b."},
		{Name: "is_big", Func: d.isBig, Ret: ksr.Bool, Args: []string{"n"}},
		{Name: "echo", Func: d.echo, Ret: ksr.Xval, Args: []string{"s"}},
		{Name: "touch", Func: d.touch, Ret: ksr.None},
	}}}}
}

func (d *demo) add(e *ksr.Env, a, b int) int { return a + b }
func (d *demo) isBig(e *ksr.Env, n int) int  { return n - 100 }
func (d *demo) touch(e *ksr.Env) int         { d.calls = append(d.calls, "touch"); return 7 }
func (d *demo) echo(e *ksr.Env, s string) lua.LValue {
	if s == "" {
		return lua.LNil
	}
	return lua.LString(s)
}

func demoState(t *testing.T) (*lua.LState, *bytes.Buffer, *demo) {
	t.Helper()
	var log bytes.Buffer
	d := &demo{}
	deps := ksrtest.Deps(t, &log, d)
	L := lua.NewState()
	t.Cleanup(L.Close)
	ksr.Register(L, ksr.NewEnv(deps, "t/0", "t", 0))
	return L, &log, d
}

// TestBindRules: the generated bindings apply app_lua's rules (5.6.3
// sr_kemi_lua_exec_func_ex and sr_kemi_lua_return_int).
func TestBindRules(t *testing.T) {
	L, log, _ := demoState(t)
	cases := []struct{ expr, want, log string }{
		{`KSR.demo.add(2, 3)`, "5", ""},
		{`KSR.demo.add("2", "3")`, "5", ""},                     // numeric strings for INT
		{`KSR.demo.add("x", 3)`, "3", ""},                       // a non-numeric INT is 0
		{`KSR.demo.add(2)`, "false", "got=1 expected=2"},        // too few: false, logged
		{`KSR.demo.add(1, 2, 3)`, "3", ""},                      // extra ignored
		{`KSR.demo.add(1, 2, 3, 4, 5, 6, 7)`, "false", "got=7"}, // more than six: false
		{`KSR.demo.is_big(101)`, "true", ""},
		{`KSR.demo.is_big(0)`, "true", ""}, // BOOL: -100 is true, as any C value but 0
		{`KSR.demo.is_big(100)`, "false", ""},
		{`KSR.demo.echo("hi")`, "hi", ""},
		{`KSR.demo.echo(nil)`, "nil", ""},                  // nil STR is ""
		{`KSR.demo.touch()`, "false", ""},                  // no result: false (app_lua 5.6)
		{`KSR.demo.touch(1)`, "false", "got=1 expected=0"}, // no parameters, called with one: false (the default case of app_lua's switch)
	}
	for _, c := range cases {
		log.Reset()
		if err := L.DoString("return " + c.expr); err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		got := L.Get(-1).String()
		L.Pop(1)
		if got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
		if c.log != "" && !strings.Contains(log.String(), c.log) {
			t.Errorf("%s: log %q lacks %q", c.expr, log.String(), c.log)
		}
	}
}

// TestMissingNamesRaise: a missing function or module is a Lua error
// naming it, where a plain table would give "attempt to call a
// non-function object"; a Kamailio module that is not loaded is nil, as
// in Kamailio, for feature tests.
func TestMissingNamesRaise(t *testing.T) {
	L, _, _ := demoState(t)
	for expr, want := range map[string]string{
		`KSR.demo.addd(1, 2)`:          "KSR.demo.addd: no such function",
		`KSR.nothing()`:                "KSR.nothing: no such function or module",
		`KSR.maxfwd.process_maxfwd(1)`: "attempt to index",
	} {
		err := L.DoString(expr)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", expr, err, want)
		}
	}
	if err := L.DoString(`assert(KSR.rtpengine == nil and not KSR.dispatcher, "a module that is not loaded is not nil")
		assert(KSR.kx == nil and KSR.pvx == nil, "KSR.kx (kemix) and KSR.pvx (pv) are nil when their module is not loaded")`); err != nil {
		t.Error(err)
	}
}

func TestValidateRefusesMismatches(t *testing.T) {
	d := &demo{}
	bad := []ksr.Export{
		{Name: "", Func: d.add, Ret: ksr.Int},
		{Name: "x", Func: func(int) int { return 0 }, Ret: ksr.Int},
		{Name: "x", Func: d.add, Ret: ksr.Xval},
		{Name: "x", Func: d.echo, Ret: ksr.Int},
		{Name: "x", Func: d.add, Ret: ksr.Int, Params: []ksr.Type{ksr.Str, ksr.Int}},
		{Name: "x", Func: d.add, Ret: ksr.Int, Args: []string{"only one"}},
	}
	for i, x := range bad {
		if err := x.Validate(); err == nil {
			t.Errorf("case %d (%s): no error", i, x.Name)
		}
	}
}

type twice struct{}

func (twice) Info() ksr.ModuleInfo {
	x := ksr.Export{Name: "f", Func: func(*ksr.Env) int { return 1 }, Ret: ksr.Int}
	return ksr.ModuleInfo{Name: "twice", Exports: []ksr.Submodule{{Name: "t", Funcs: []ksr.Export{x, x}}}}
}

func TestTableRefusesDuplicates(t *testing.T) {
	if _, err := ksr.NewTable(twice{}); err == nil || !strings.Contains(err.Error(), "KSR.t.f exported twice") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckScript(t *testing.T) {
	tbl, err := ksr.NewTable(ksr.Core(), &demo{})
	if err != nil {
		t.Fatal(err)
	}
	src := `
function ksr_request_route()
	KSR.demo.add(1, 2)
	KSR.demo.addd(1, 2)
	KSR.maxfwd.process_maxfwd(10)
	local n = KSR.demo.add(1)
	if KSR.demo.is_big(1, 2) then KSR.nothing() end
	KSR.demo.add(f())
	local m = KSR["demo"]["dyn" .. n]
	KSR.info("ok")
	KSR.info.x()
end
`
	got, err := tbl.CheckScript("s.lua", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"s.lua:4: unknown KSR function KSR.demo.addd (did you mean KSR.demo.add?)",
		"s.lua:5: warning: KSR.maxfwd.process_maxfwd: module maxfwd is not loaded, so KSR.maxfwd is nil and this fails if it runs",
		"s.lua:6: warning: KSR.demo.add takes 2 arguments (a int, b int), got 1: the call returns false",
		"s.lua:7: warning: KSR.demo.is_big takes 1 argument (n int), got 2: the extra ones are ignored",
		"s.lua:7: unknown KSR function or module KSR.nothing",
		"s.lua:11: KSR.info is a function, not a module: KSR.info.x does not exist",
	}
	var lines []string
	for _, f := range got {
		lines = append(lines, f.String())
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if _, err := tbl.CheckScript("bad.lua", []byte("function (")); err == nil {
		t.Fatal("syntax error not returned")
	}
}

// TestStubsDeclareEveryFunction: the stubs are valid Lua, and running them
// defines every function of the table with its parameters named.
func TestStubsDeclareEveryFunction(t *testing.T) {
	tbl, err := ksr.NewTable(ksr.Core(), &demo{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tbl.WriteStubs(&b, "test"); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"---@meta", "---@class KSR.demo", "--- Sum of a and b.\n---@param a integer\n---@param b integer\n---@return integer\nfunction KSR.demo.add(a, b) end",
		"---@return boolean\nfunction KSR.demo.is_big(n) end", "---@return string|integer|nil\nfunction KSR.demo.echo(s) end"} {
		if !strings.Contains(out, want) {
			t.Errorf("stubs lack %q", want)
		}
	}
	L := lua.NewState()
	defer L.Close()
	if err := L.DoString(out); err != nil {
		t.Fatalf("stubs do not run: %v", err)
	}
	ksrT := L.GetGlobal("KSR").(*lua.LTable)
	n := 0
	for _, s := range tbl.Submodules() {
		tt := ksrT
		if s.Name != "" {
			tt = ksrT.RawGetString(s.Name).(*lua.LTable)
		}
		for _, x := range s.Funcs {
			if _, ok := tt.RawGetString(x.Name).(*lua.LFunction); !ok {
				t.Errorf("stubs lack %s", s.Fn(&x))
			}
			n++
		}
	}
	if n != tbl.Len() || n == 0 {
		t.Fatalf("checked %d of %d functions", n, tbl.Len())
	}
}

// TestIntResultsBeyondSmall: INT results outside the pre-boxed -256..255
// come from the VM's number blocks; every value stays what it was when
// returned, across blocks, and boxing them does not allocate per call.
func TestIntResultsBeyondSmall(t *testing.T) {
	L, _, _ := demoState(t)
	err := L.DoString(`
		local got = {}
		for i = 1, 1000 do got[i] = KSR.demo.add(1000, i) end
		for i = 1, 1000 do got[1000 + i] = KSR.demo.add(-1000, -i) end
		got[2001] = KSR.demo.add(1099511627776, 1)
		for i = 1, 1000 do
			if got[i] ~= 1000 + i or got[1000 + i] ~= -1000 - i then
				error("value " .. i .. ": " .. tostring(got[i]) .. " " .. tostring(got[1000 + i]))
			end
		end
		if got[2001] ~= 1099511627777 then error("big: " .. tostring(got[2001])) end
		function loop(n) for i = 1, n do KSR.demo.add(1000, 1) end end
		function empty(n) for i = 1, n do end end`)
	if err != nil {
		t.Fatal(err)
	}
	allocs := func(fn string) float64 {
		f := L.GetGlobal(fn)
		return testing.AllocsPerRun(20, func() {
			if err := L.CallByParam(lua.P{Fn: f, Protect: true}, lua.LNumber(1280)); err != nil {
				t.Fatal(err)
			}
		})
	}
	empty, loop := allocs("empty"), allocs("loop")
	// One allocation per call would add 1280; a block of 128 numbers, 10.
	if loop > empty+12 {
		t.Errorf("1280 calls returning 1001: %v allocations, the empty loop %v", loop, empty)
	}
}
