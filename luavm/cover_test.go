package luavm

import (
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

const coverSrc = `local n = 0
function route(m)
	if m == "OPTIONS" then
		n = n + 1
		return 200
	elseif m == "MESSAGE" then
		for i = 1, 3 do
			n = n + i
		end
		return 202
	end
	local t = {f = function() return 1 end}
	return t.f() + 404
end

function failure_route()
	error("boom")
end
`

func coverVM(t *testing.T, c *Coverage, prepare func(*lua.LState) error) *VM {
	t.Helper()
	g, err := BuildWith(1, []string{"route.lua"}, func(string) ([]byte, error) { return []byte(coverSrc), nil }, BuildOptions{Cover: c, Prepare: prepare})
	if err != nil {
		t.Fatal(err)
	}
	cur := &Current{}
	cur.Store(g)
	vm, err := New(cur, Options{Name: "cover/0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vm.Close)
	return vm
}

// Each statement line is registered when the script compiles: lines that
// never ran are there with 0, the others with how often they ran.
func TestCoverageCountsLines(t *testing.T) {
	c := NewCoverage()
	vm := coverVM(t, c, nil)
	for _, m := range []string{"OPTIONS", "OPTIONS", "MESSAGE", "INVITE"} {
		if err := vm.CallGlobal("route", lua.LString(m)); err != nil {
			t.Fatal(err)
		}
	}
	files := c.Files()
	if len(files) != 1 || files[0].Path != "route.lua" {
		t.Fatalf("files: %+v", files)
	}
	got := map[int]int64{}
	for _, l := range files[0].Lines {
		got[l.Line] = l.Count
	}
	want := map[int]int64{
		1: 1, 2: 1, // the top level ran once
		3: 4, 4: 2, 5: 2, // the if ran 4 times, its OPTIONS branch twice
		6: 2, 7: 1, 8: 3, 10: 1, // elseif evaluated twice, the loop body 3 times
		12: 1, 13: 1, // the INVITE fall-through (the nested function's body is on line 12 too)
		16: 1, 17: 0, // failure_route defined, never called
	}
	for line, n := range want {
		if got[line] != n {
			t.Errorf("line %d: count %d, want %d (all: %v)", line, got[line], n, got)
		}
	}
	for line := range got {
		if _, ok := want[line]; !ok {
			t.Errorf("line %d counted (%d) but has no statement", line, got[line])
		}
	}
	hit, total := files[0].Covered()
	if hit != len(want)-1 || total != len(want) {
		t.Errorf("covered %d/%d, want %d/%d", hit, total, len(want)-1, len(want))
	}
}

// The counters are on the statement's own line: errors and tracebacks
// name the same positions as without coverage.
func TestCoverageKeepsErrorPositions(t *testing.T) {
	vm := coverVM(t, NewCoverage(), nil)
	err := vm.CallGlobal("failure_route")
	var e *Error
	if err == nil || !strings.Contains(err.Error(), "route.lua:17:") {
		t.Fatalf("error %v, want it at route.lua:17", err)
	}
	if e = err.(*Error); !strings.Contains(e.Traceback, "route.lua:17: in function <route.lua:16>") {
		t.Fatalf("traceback:\n%s", e.Traceback)
	}
}

// Without a Coverage nothing is inserted: the compiled code is the same as
// Compile's, instruction for instruction.
func TestNoCoverageNoInstrumentation(t *testing.T) {
	plain, err := Compile("route.lua", []byte(coverSrc))
	if err != nil {
		t.Fatal(err)
	}
	g, err := BuildWith(1, []string{"route.lua"}, func(string) ([]byte, error) { return []byte(coverSrc), nil }, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := plain.String(), g.Scripts[0].Proto.String(); a != b {
		t.Fatalf("an uninstrumented build differs from Compile:\n%s\n---\n%s", a, b)
	}
	cov, err := compile("route.lua", []byte(coverSrc), NewCoverage(), map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), CoverGlobal) || !strings.Contains(cov.String(), CoverGlobal) {
		t.Fatal("the instrumented build should call " + CoverGlobal + " and the plain one not")
	}
}

// Prepare runs on every fresh state before the scripts' top level.
func TestPrepareRunsBeforeTheScripts(t *testing.T) {
	vm := coverVM(t, nil, func(L *lua.LState) error {
		L.SetGlobal("prepared", lua.LTrue)
		return nil
	})
	if vm.L.GetGlobal("prepared") != lua.LTrue {
		t.Fatal("prepare did not run")
	}
	if vm.L.GetGlobal(CoverGlobal) != lua.LNil {
		t.Fatal("an uninstrumented generation defines " + CoverGlobal)
	}
}

// BenchmarkCall measures a route call with and without coverage compiled
// in (without, the code is the plain one: see TestNoCoverageNoInstrumentation).
func BenchmarkCall(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "cover=off"
		var c *Coverage
		if on {
			name, c = "cover=on", NewCoverage()
		}
		b.Run(name, func(b *testing.B) {
			g, err := BuildWith(1, []string{"route.lua"}, func(string) ([]byte, error) { return []byte(coverSrc), nil }, BuildOptions{Cover: c})
			if err != nil {
				b.Fatal(err)
			}
			cur := &Current{}
			cur.Store(g)
			vm, err := New(cur, Options{Name: "bench/0"})
			if err != nil {
				b.Fatal(err)
			}
			defer vm.Close()
			arg := lua.LString("MESSAGE")
			for b.Loop() {
				if err := vm.CallGlobal("route", arg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
