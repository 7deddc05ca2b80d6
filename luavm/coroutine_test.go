package luavm

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// coHarness is a VM whose scripts can call nap(), a binding that suspends
// the running handler (as KSR.async.sleep does) or returns the refusal
// message when it cannot.
type coHarness struct {
	vm     *VM
	cur    *Current
	napped []*Co
}

func newCoVM(t testing.TB, src string, opts Options) *coHarness {
	t.Helper()
	h := &coHarness{cur: &Current{}}
	g, err := Build(1, []string{"co.lua"}, func(string) ([]byte, error) { return []byte(src), nil })
	if err != nil {
		t.Fatal(err)
	}
	h.cur.Store(g)
	opts.Init = func(L *lua.LState) error {
		L.SetGlobal("exit", L.NewFunction(Exit))
		L.SetGlobal("nap", L.NewFunction(func(L *lua.LState) int {
			co, err := h.vm.Suspendable(L)
			if err != nil {
				L.Push(lua.LString(err.Error()))
				return 1
			}
			h.napped = append(h.napped, co)
			return co.Yield(L)
		}))
		return nil
	}
	vm, err := New(h.cur, opts)
	if err != nil {
		t.Fatal(err)
	}
	h.vm = vm
	t.Cleanup(vm.Close)
	return h
}

func (h *coHarness) global(name string) string { return h.vm.L.GetGlobal(name).String() }

func TestCoroutineContinuesWithLocals(t *testing.T) {
	h := newCoVM(t, `
log = ""
function handler(arg)
  local x = arg .. "-local"
  local r1 = nap()
  x = x .. "+" .. r1
  local r2 = nap()
  log = x .. "+" .. r2
end`, Options{})
	co, err := h.vm.CallGlobalCo("handler", lua.LString("a"))
	if err != nil || co == nil {
		t.Fatalf("first run: co=%v err=%v, want suspended", co, err)
	}
	if h.global("log") != "" {
		t.Fatal("the handler went past nap()")
	}
	if susp, err := co.Resume(lua.LNumber(1)); !susp || err != nil {
		t.Fatalf("resume 1: %v %v", susp, err)
	}
	if susp, err := co.Resume(lua.LNumber(2)); susp || err != nil {
		t.Fatalf("resume 2: %v %v", susp, err)
	}
	if got := h.global("log"); got != "a-local+1+2" {
		t.Fatalf("log %q", got)
	}
	if _, err := co.Resume(); err == nil {
		t.Fatal("resume of a finished coroutine accepted")
	}
}

// TestCoroutinesInterleave: the VM serves other handlers, plain calls and
// coroutines, while one is suspended; each keeps its own locals.
func TestCoroutinesInterleave(t *testing.T) {
	h := newCoVM(t, `
out = {}
function handler(id)
  local mine = id * 10
  nap()
  out[#out + 1] = id .. ":" .. mine
end
function plain() out[#out + 1] = "plain" end
function dump() return table.concat(out, ",") end`, Options{})
	var cos []*Co
	for i := 1; i <= 3; i++ {
		co, err := h.vm.CallGlobalCo("handler", lua.LNumber(i))
		if err != nil || co == nil {
			t.Fatalf("handler %d: %v %v", i, co, err)
		}
		cos = append(cos, co)
	}
	if err := h.vm.CallGlobal("plain"); err != nil {
		t.Fatal(err)
	}
	for i := len(cos) - 1; i >= 0; i-- {
		if susp, err := cos[i].Resume(); susp || err != nil {
			t.Fatalf("resume %d: %v %v", i, susp, err)
		}
	}
	h.vm.CallGlobal("plain")
	got := callString(t, h.vm, "dump")
	if got != "plain,3:30,2:20,1:10,plain" {
		t.Fatalf("out %q", got)
	}
}

func callString(t *testing.T, vm *VM, fn string) string {
	t.Helper()
	vm.L.Push(vm.L.GetGlobal(fn))
	if err := vm.L.PCall(0, 1, nil); err != nil {
		t.Fatal(err)
	}
	s := vm.L.Get(-1).String()
	vm.L.SetTop(0)
	return s
}

func TestSuspendRefusedAcrossGoBoundaries(t *testing.T) {
	h := newCoVM(t, `
result = ""
local mt = {__index = function(t, k) return nap() end}
local function iter(s, i) if i == nil then return nap() end end
cases = {
  pcall = function() local ok, v = pcall(nap) return v end,
  pcall_nested = function() local ok, v = pcall(function() return nap() end) return v end,
  xpcall = function() local ok, v = xpcall(function() return nap() end, function(e) return e end) return v end,
  metamethod = function() return setmetatable({}, mt).x end,
  iterator = function() for v in iter do return v end end,
  sort = function() local r; table.sort({3, 1, 2}, function(a, b) r = r or nap() return a < b end) return r end,
  gsub = function() local r; string.gsub("ab", "%w", function(c) r = r or nap() end) return r end,
  own_coroutine = function() local co = coroutine.wrap(function() return nap() end) return co() end,
}
function handler(name) result = cases[name]() end`, Options{})
	for _, name := range []string{"pcall", "pcall_nested", "xpcall", "metamethod", "iterator", "sort", "gsub", "own_coroutine"} {
		t.Run(name, func(t *testing.T) {
			co, err := h.vm.CallGlobalCo("handler", lua.LString(name))
			if err != nil || co != nil {
				t.Fatalf("co=%v err=%v: want a normal end with nap() refused", co, err)
			}
			if got := h.global("result"); !strings.HasPrefix(got, ErrNotSuspendable.Error()) {
				t.Fatalf("nap() returned %q, want the refusal", got)
			}
			if len(h.napped) != 0 {
				t.Fatal("a refused nap was recorded")
			}
		})
	}
	// Outside a coroutine (a plain Call) it is refused too.
	if err := h.vm.CallGlobal("handler", lua.LString("pcall")); err != nil {
		t.Fatal(err)
	}
	h.vm.L.SetGlobal("result", lua.LNil)
	if err := h.vm.L.DoString(`result = nap()`); err != nil {
		t.Fatal(err)
	}
	if got := h.global("result"); !strings.Contains(got, "does not run as a coroutine") {
		t.Fatalf("plain call: %q", got)
	}
}

// TestSuspendInTailCall: `return nap()` ends the function at the yield, for
// gopher-lua a finished coroutine; it must wait all the same.
func TestSuspendInTailCall(t *testing.T) {
	h := newCoVM(t, `
done = 0
function direct() return nap() end
local function inner() return nap() end
function nested() inner(); done = done + 1 end`, Options{})
	co, err := h.vm.CallGlobalCo("direct")
	if err != nil || co == nil {
		t.Fatalf("direct: co=%v err=%v", co, err)
	}
	if susp, err := co.Resume(lua.LNumber(1)); susp || err != nil {
		t.Fatalf("direct resume: %v %v", susp, err)
	}
	co, err = h.vm.CallGlobalCo("nested")
	if err != nil || co == nil {
		t.Fatalf("nested: co=%v err=%v", co, err)
	}
	if h.global("done") != "0" {
		t.Fatal("went on before the resume")
	}
	if susp, err := co.Resume(lua.LNumber(1)); susp || err != nil {
		t.Fatalf("nested resume: %v %v", susp, err)
	}
	if h.global("done") != "1" {
		t.Fatalf("done = %s after the resume", h.global("done"))
	}
}

func TestCoroutineErrorsAndExit(t *testing.T) {
	h := newCoVM(t, `
n = 0
function fails_after()
  nap()
  local t = nil
  return t.field
end
local function deep() error("deep boom") end
function fails_deep() nap(); deep() end
function exits() nap(); n = n + 1; exit(); n = 100 end
function fine() n = n + 1 end`, Options{})
	co, _ := h.vm.CallGlobalCo("fails_after")
	_, err := co.Resume()
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Msg, "co.lua:6:") {
		t.Fatalf("error %v, want co.lua:6", err)
	}
	co, _ = h.vm.CallGlobalCo("fails_deep")
	_, err = co.Resume()
	if !errors.As(err, &e) || !strings.Contains(e.Msg, "deep boom") || !strings.Contains(e.Traceback, "co.lua:8:") {
		t.Fatalf("error %v / traceback %q: want the caller's line 8", err, e.Traceback)
	}
	co, _ = h.vm.CallGlobalCo("exits")
	if susp, err := co.Resume(); susp || err != nil {
		t.Fatalf("exit after resume: %v %v", susp, err)
	}
	if h.global("n") != "1" {
		t.Fatalf("n = %s", h.global("n"))
	}
	// The VM keeps working, plainly and as coroutines.
	if err := h.vm.CallGlobal("fine"); err != nil {
		t.Fatal(err)
	}
	if co, err := h.vm.CallGlobalCo("fine"); co != nil || err != nil {
		t.Fatal(co, err)
	}
	if h.global("n") != "3" {
		t.Fatalf("n = %s", h.global("n"))
	}
}

func TestCoroutineThreadsAreReused(t *testing.T) {
	h := newCoVM(t, `function ok() end
function napper() nap() end
function exits() exit() end`, Options{})
	h.vm.CallGlobalCo("ok")
	rt := h.vm.co.rt
	if len(rt.free) != 1 {
		t.Fatalf("pool %d after a normal end, want 1", len(rt.free))
	}
	th := rt.free[0]
	co, _ := h.vm.CallGlobalCo("napper")
	if co.th != th || len(rt.free) != 0 {
		t.Fatal("the pooled thread was not reused")
	}
	co.Resume()
	if len(rt.free) != 1 || rt.free[0] != th {
		t.Fatal("the thread did not return to the pool after the resume")
	}
	h.vm.CallGlobalCo("exits")
	if len(rt.free) != 0 {
		t.Fatal("a thread left by KSR.x.exit (frames remain) went back to the pool")
	}
	for i := 0; i < 3*coPoolSize; i++ {
		h.vm.CallGlobalCo("ok")
	}
	if len(rt.free) > coPoolSize {
		t.Fatalf("pool grew to %d", len(rt.free))
	}
}

// TestReloadWhileSuspended: a suspended handler finishes with the code and
// globals of the generation it started in; new events use the new one.
func TestReloadWhileSuspended(t *testing.T) {
	h := newCoVM(t, `
marker = "old"
function handler() nap(); seen = marker .. "/" .. version() end
function version() return "v1" end`, Options{})
	co, _ := h.vm.CallGlobalCo("handler")
	oldL := h.vm.L
	g, _ := Build(2, []string{"co.lua"}, func(string) ([]byte, error) {
		return []byte(`marker = "new"
function handler() seen = marker end`), nil
	})
	h.cur.Store(g)
	if switched, err := h.vm.Sync(); !switched || err != nil {
		t.Fatal(switched, err)
	}
	if susp, err := co.Resume(); susp || err != nil {
		t.Fatalf("resume after reload: %v %v", susp, err)
	}
	if got := oldL.GetGlobal("seen").String(); got != "old/v1" {
		t.Fatalf("old handler saw %q", got)
	}
	if co, err := h.vm.CallGlobalCo("handler"); co != nil || err != nil {
		t.Fatal(co, err)
	}
	if got := h.global("seen"); got != "new" {
		t.Fatalf("new handler saw %q", got)
	}
}

func TestCoroutineBudget(t *testing.T) {
	wd := NewWatchdog()
	h := newCoVM(t, `n = 0
function spin() nap(); while true do end end
function inc() nap(); n = n + 1 end`, Options{Budget: 20 * time.Millisecond, Watchdog: wd})
	stop := runWatchdog(wd, time.Millisecond)
	defer stop()
	co, err := h.vm.CallGlobalCo("spin")
	if err != nil || co == nil {
		t.Fatal(co, err)
	}
	time.Sleep(50 * time.Millisecond) // a suspended handler does not use its budget
	_, err = co.Resume()
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindBudget {
		t.Fatalf("got %v, want a budget error", err)
	}
	co, err = h.vm.CallGlobalCo("inc")
	if err != nil || co == nil {
		t.Fatalf("after the overrun: %v %v", co, err)
	}
	if susp, err := co.Resume(); susp || err != nil {
		t.Fatalf("after the overrun: %v %v", susp, err)
	}
	if h.global("n") != "1" {
		t.Fatalf("n = %s", h.global("n"))
	}
}

func TestGenerationMentions(t *testing.T) {
	for src, want := range map[string]bool{
		`function f() KSR.async.sleep(1) end`:                 true,
		`function f() local a = KSR.async; a.ms_sleep(5) end`: true,
		`function f() KSR.async["sleep"](1) end`:              true,
		`function f() KSR.async.route("x", 1) end`:            false,
		`function f() local s = "sleepy" end`:                 false,
	} {
		g, err := Build(1, []string{"m.lua"}, func(string) ([]byte, error) { return []byte(src), nil })
		if err != nil {
			t.Fatal(err)
		}
		if got := g.Mentions("sleep", "ms_sleep"); got != want {
			t.Errorf("%s: Mentions = %v, want %v", src, got, want)
		}
	}
}

// BenchmarkHandler compares one event handler run as a plain protected call
// with the same handler run as a coroutine: with a pooled thread (it returns
// normally), with a fresh thread (it ends with KSR.x.exit, whose thread keeps
// its frames and is dropped), and a suspend + resume.
func BenchmarkHandler(b *testing.B) {
	src := `
local n = 0
function work() local s = 0 for i = 1, 20 do s = s + i end n = n + s end
function plain() work() end
function exits() work() exit() end
function napper() work() nap() work() end`
	h := newCoVM(b, src, Options{})
	run := func(name string, f func() error) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := f(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	run("Call", func() error { return h.vm.CallGlobal("plain") })
	run("CallCo/pooled", func() error { _, err := h.vm.CallGlobalCo("plain"); return err })
	run("Call/exit", func() error { return h.vm.CallGlobal("exits") })
	run("CallCo/exit", func() error { _, err := h.vm.CallGlobalCo("exits"); return err })
	run("CallCo/suspend+resume", func() error {
		co, err := h.vm.CallGlobalCo("napper")
		if err != nil || co == nil {
			return fmt.Errorf("not suspended: %v", err)
		}
		h.napped = h.napped[:0]
		_, err = co.Resume()
		return err
	})
}

// coroutine.yield() called by the handler itself would leave it suspended
// for ever: it is an error naming the line, after a suspension too.
func TestBareYieldIsAnError(t *testing.T) {
	h := newCoVM(t, "function handler()\n  local x = 1\n  coroutine.yield()\nend\nfunction later()\n  nap()\n  coroutine.yield()\nend\nfunction fine() end", Options{})
	co, err := h.vm.CallGlobalCo("handler")
	var e *Error
	if co != nil || !errors.As(err, &e) {
		t.Fatalf("got co=%v err=%v, want an error", co, err)
	}
	if e.Where != "co.lua:3" || !strings.Contains(e.Msg, "co.lua:3:") || !strings.Contains(e.Msg, "yield") {
		t.Fatalf("error %+v", e)
	}
	co, err = h.vm.CallGlobalCo("later")
	if co == nil || err != nil {
		t.Fatalf("later: %v %v", co, err)
	}
	if susp, err := co.Resume(); susp || !errors.As(err, &e) || e.Where != "co.lua:7" {
		t.Fatalf("resume: %v %v", susp, err)
	}
	if co, err := h.vm.CallGlobalCo("fine"); co != nil || err != nil {
		t.Fatalf("the VM does not go on: %v %v", co, err)
	}
}

// A handler stopped by the budget names where it was stopped and its
// traceback, whether it runs as a coroutine or not, and also when the loop
// is in the handler itself (a coroutine's error unwinds that frame).
func TestBudgetStopNamesPosition(t *testing.T) {
	wd := NewWatchdog()
	h := newCoVM(t, "function direct()\n  local n = 0\n  while true do n = n + 1 end\nend\nlocal function inner()\n  while true do end\nend\nfunction outer()\n  inner()\nend", Options{Budget: 20 * time.Millisecond, Watchdog: wd})
	stop := runWatchdog(wd, time.Millisecond)
	defer stop()
	cases := []struct{ fn, where, frame string }{
		{"direct", "co.lua:3", "co.lua:3: in function"},
		{"outer", "co.lua:6", "co.lua:9: in function"},
	}
	for _, c := range cases {
		for _, asCo := range []bool{false, true} {
			var err error
			if asCo {
				_, err = h.vm.CallGlobalCo(c.fn)
			} else {
				err = h.vm.CallGlobal(c.fn)
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindBudget {
				t.Fatalf("%s (co %v): got %v, want a budget error", c.fn, asCo, err)
			}
			if e.Where != c.where || !strings.Contains(err.Error(), "at "+c.where) || !strings.Contains(e.Traceback, c.frame) {
				t.Errorf("%s (co %v): where %q, error %q, traceback:\n%s", c.fn, asCo, e.Where, err, e.Traceback)
			}
		}
	}
}
