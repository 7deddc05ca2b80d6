package luavm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
)

func gen(t *testing.T, version int64, src string) *Generation {
	t.Helper()
	g, err := Build(version, []string{"test.lua"}, func(string) ([]byte, error) { return []byte(src), nil })
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return g
}

func newVM(t *testing.T, src string, opts Options) (*VM, *Current) {
	t.Helper()
	cur := &Current{}
	cur.Store(gen(t, 1, src))
	if opts.Init == nil {
		opts.Init = func(L *lua.LState) error {
			L.SetGlobal("exit", L.NewFunction(Exit))
			L.SetGlobal("gopanic", L.NewFunction(func(L *lua.LState) int { panic("binding broke") }))
			return nil
		}
	}
	vm, err := New(cur, opts)
	if err != nil {
		t.Fatalf("new vm: %v", err)
	}
	t.Cleanup(vm.Close)
	return vm, cur
}

func TestCallResults(t *testing.T) {
	vm, _ := newVM(t, `
n = 0
function ok() n = n + 1 end
function exits() n = n + 1; exit(); n = 100 end
function fails()
  local x = nil
  return x.field
end
function panics() gopanic() end
function swallowed() pcall(exit); n = n + 10 end
`, Options{})
	tests := []struct {
		fn      string
		wantErr string
		wantN   float64
	}{
		{"ok", "", 1},
		{"exits", "", 2},
		{"fails", "test.lua:7:", 2},
		{"panics", "binding broke", 2},
		{"swallowed", "", 12},
	}
	for _, tt := range tests {
		err := vm.CallGlobal(tt.fn)
		if tt.wantErr == "" && err != nil {
			t.Errorf("%s: unexpected error %v", tt.fn, err)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: error %v, want containing %q", tt.fn, err, tt.wantErr)
		}
		if got := float64(vm.L.GetGlobal("n").(lua.LNumber)); got != tt.wantN {
			t.Errorf("%s: n = %v, want %v", tt.fn, got, tt.wantN)
		}
		if top := vm.L.GetTop(); top != 0 {
			t.Errorf("%s: stack top %d after call", tt.fn, top)
		}
	}
}

func TestTracebackNamesFunctionAndLine(t *testing.T) {
	vm, _ := newVM(t, "function inner()\n  error('boom')\nend\nfunction outer()\n  inner()\nend\n", Options{})
	err := vm.CallGlobal("outer")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	if e.Msg != "test.lua:2: boom" {
		t.Errorf("msg %q", e.Msg)
	}
	for _, want := range []string{"test.lua:2: in function 'inner'", "test.lua:5: in function"} {
		if !strings.Contains(e.Traceback, want) {
			t.Errorf("traceback lacks %q:\n%s", want, e.Traceback)
		}
	}
}

func TestMissingFunction(t *testing.T) {
	vm, _ := newVM(t, "x = 1", Options{})
	if err := vm.CallGlobal("ksr_request_route"); !errors.Is(err, ErrNoFunction) {
		t.Fatalf("got %v, want ErrNoFunction", err)
	}
	if err := vm.CallGlobal("x"); !errors.Is(err, ErrNoFunction) {
		t.Fatalf("non-function global: got %v", err)
	}
}

func TestOSExitDisabled(t *testing.T) {
	vm, _ := newVM(t, "function f() os.exit(1) end", Options{})
	err := vm.CallGlobal("f")
	if err == nil || !strings.Contains(err.Error(), "os.exit is disabled") {
		t.Fatalf("got %v", err)
	}
}

func TestBudgetStopsRunawayLoop(t *testing.T) {
	wd := NewWatchdog()
	wd.Interval = time.Millisecond
	vm, _ := newVM(t, "n = 0\nfunction spin() while true do end end\nfunction inc() n = n + 1 end", Options{Budget: 20 * time.Millisecond, Watchdog: wd})
	stop := runWatchdog(wd, time.Millisecond)
	defer stop()
	err := vm.CallGlobal("spin")
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindBudget {
		t.Fatalf("got %v, want a budget error", err)
	}
	// The VM recovers: the next event runs normally.
	if err := vm.CallGlobal("inc"); err != nil {
		t.Fatalf("after budget: %v", err)
	}
	if n := vm.L.GetGlobal("n").(lua.LNumber); n != 1 {
		t.Fatalf("n = %v", n)
	}
}

func TestSyncSwitchesGeneration(t *testing.T) {
	vm, cur := newVM(t, "function v() return 1 end\nmarker = 'old'", Options{})
	if switched, err := vm.Sync(); switched || err != nil {
		t.Fatalf("sync without change: %v %v", switched, err)
	}
	cur.Store(gen(t, 2, "marker = 'new'"))
	switched, err := vm.Sync()
	if !switched || err != nil {
		t.Fatalf("sync: %v %v", switched, err)
	}
	if vm.Version() != 2 {
		t.Fatalf("version %d", vm.Version())
	}
	if got := vm.L.GetGlobal("marker").String(); got != "new" {
		t.Fatalf("marker %q", got)
	}
	// Globals of the old generation are gone: each generation starts fresh.
	if vm.HasFunction("v") {
		t.Fatal("old function survived the switch")
	}
	// A generation that fails to instantiate keeps the old state.
	cur.Store(gen(t, 3, "error('top-level failure')"))
	if switched, err := vm.Sync(); switched || err == nil {
		t.Fatalf("bad generation: %v %v", switched, err)
	}
	if vm.Version() != 2 || vm.L.GetGlobal("marker").String() != "new" {
		t.Fatal("old state lost after a failed switch")
	}
}

func TestCompileErrorHasLine(t *testing.T) {
	_, err := Build(1, []string{"bad.lua"}, func(string) ([]byte, error) { return []byte("x = 1\nfunction f(\n"), nil })
	var ce *CompileError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	if ce.Path != "bad.lua" || ce.Line != 2 {
		t.Fatalf("got %+v (%v)", ce, err)
	}
}

func TestProveRunsCheck(t *testing.T) {
	g := gen(t, 1, "function ksr_request_route() end")
	err := Prove(context.Background(), g, 0, nil, func(L *lua.LState) error {
		if _, ok := L.GetGlobal("ksr_request_route").(*lua.LFunction); !ok {
			return errors.New("missing")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	g2 := gen(t, 2, "x = 1")
	if err := Prove(context.Background(), g2, 0, nil, func(L *lua.LState) error {
		if _, ok := L.GetGlobal("ksr_request_route").(*lua.LFunction); !ok {
			return errors.New("missing")
		}
		return nil
	}); err == nil {
		t.Fatal("check not applied")
	}
}

func BenchmarkCallEmpty(b *testing.B) {
	for _, budget := range []time.Duration{0, time.Second} {
		name := "nobudget"
		if budget > 0 {
			name = "budget"
		}
		b.Run(name, func(b *testing.B) {
			cur := &Current{}
			g, _ := Build(1, []string{"b.lua"}, func(string) ([]byte, error) {
				return []byte("function f() end\nfunction loop() local s = 0 for i = 1, 1000 do s = s + i end end"), nil
			})
			cur.Store(g)
			vm, err := New(cur, Options{Budget: budget, Watchdog: NewWatchdog()})
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
		})
	}
}

// runWatchdog runs wd.Run every iv until the returned stop is called (which
// waits for it to return).
func runWatchdog(wd *Watchdog, iv time.Duration) (stop func()) {
	wd.Interval = iv
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); wd.Run(ctx) }()
	return func() { cancel(); <-done }
}

// A top level that never finishes is stopped by the load timeout, with its
// position, on the calling goroutine; the same state type proves fine after.
func TestProveStopsEndlessTopLevel(t *testing.T) {
	for _, src := range []string{
		"x = 1\nwhile true do end\n",
		"x = 1\nlocal function f()\n  while true do end\nend\nf()\n",
		// pcall cannot hold the stop: the next instruction outside it stops again.
		"while true do pcall(function() while true do end end) end\n",
		"local co = coroutine.wrap(function() while true do end end)\nco()\n",
	} {
		g := gen(t, 1, src)
		err := Prove(context.Background(), g, 20*time.Millisecond, nil, nil)
		var te *LoadTimeoutError
		if !errors.As(err, &te) {
			t.Fatalf("%q: got %v, want a LoadTimeoutError", src, err)
		}
		if te.Path != "test.lua" || !strings.HasPrefix(te.Where, "test.lua:") {
			t.Errorf("%q: %+v", src, te)
		}
		if !strings.Contains(err.Error(), "script top level did not finish within 20ms (stopped at test.lua:") {
			t.Errorf("%q: message %q", src, err)
		}
	}
	var te *LoadTimeoutError
	err := Prove(context.Background(), gen(t, 1, "x = 1\nwhile true do end\n"), 20*time.Millisecond, nil, nil)
	if !errors.As(err, &te) || te.Where != "test.lua:2" {
		t.Fatalf("got %v, want stopped at test.lua:2", err)
	}
	// A top level that finishes is not disturbed, and coroutines it made stay
	// usable after the limit is gone.
	g := gen(t, 2, "co = coroutine.wrap(function() while true do coroutine.yield(1) end end)\nfunction f() return co() end")
	if err := Prove(context.Background(), g, time.Hour, nil, func(L *lua.LState) error {
		L.Push(L.GetGlobal("f"))
		return L.PCall(0, 1, nil)
	}); err != nil {
		t.Fatal(err)
	}
}

// A cancelled context stops the proof too.
func TestProveStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	g := gen(t, 1, "started()\nwhile true do end\n")
	err := Prove(ctx, g, 0, func(L *lua.LState) error {
		L.SetGlobal("started", L.NewFunction(func(L *lua.LState) int { cancel(); return 0 }))
		return nil
	}, nil)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want a cancelled proof", err)
	}
}

// The same bound applies when a VM starts or switches generation.
func TestLoadTimeoutAtStartAndSync(t *testing.T) {
	cur := &Current{}
	cur.Store(gen(t, 1, "while true do end"))
	if _, err := New(cur, Options{LoadTimeout: 20 * time.Millisecond}); !errors.As(err, new(*LoadTimeoutError)) {
		t.Fatalf("new: got %v", err)
	}
	vm, cur := newVM(t, "marker = 'old'", Options{LoadTimeout: 20 * time.Millisecond})
	cur.Store(gen(t, 2, "while true do end"))
	if switched, err := vm.Sync(); switched || !errors.As(err, new(*LoadTimeoutError)) {
		t.Fatalf("sync: %v %v", switched, err)
	}
	if vm.L.GetGlobal("marker").String() != "old" {
		t.Fatal("old state lost")
	}
}

// A coroutine the top level made stays under the budget: the load limit's
// context sits below the budget's.
func TestBudgetStopsLoopInTopLevelCoroutine(t *testing.T) {
	wd := NewWatchdog()
	vm, _ := newVM(t, "gen = coroutine.wrap(function() while true do end end)\nfunction spin() gen() end\nfunction ok() end",
		Options{Budget: 20 * time.Millisecond, Watchdog: wd, LoadTimeout: time.Hour})
	stop := runWatchdog(wd, time.Millisecond)
	defer stop()
	var e *Error
	if err := vm.CallGlobal("spin"); !errors.As(err, &e) || e.Kind != KindBudget {
		t.Fatalf("got %v, want a budget error", err)
	}
	if err := vm.CallGlobal("ok"); err != nil {
		t.Fatalf("after the budget stop: %v", err)
	}
}
