package luavm

import (
	"testing"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// TestInternKeys: equal strings of all the script's functions share their
// bytes, the keys of the tables built in Go (here Tab, Tab.sub and string)
// are re-keyed with them, and nothing a script sees changes: values,
// iteration order, the metatable.
func TestInternKeys(t *testing.T) {
	g := gen(t, 1, `
		function f() return Tab.sub.fn(), Tab.other, string.format("%d", 7) end
		function order() local o = {} for k in pairs(Tab) do o[#o + 1] = k end return table.concat(o, ",") end`)
	var order0 string
	cur := &Current{}
	cur.Store(g)
	vm, err := New(cur, Options{Name: "t", Init: func(L *lua.LState) error {
		tbl, sub := L.NewTable(), L.NewTable()
		sub.RawSetString(string([]byte("fn")), L.NewFunction(func(L *lua.LState) int { L.Push(lua.LString("called")); return 1 }))
		for _, k := range []string{"a", "sub", "b", "other", "c"} {
			tbl.RawSetString(string([]byte(k)), sub)
		}
		tbl.RawSetString(string([]byte("other")), lua.LNumber(42))
		mt := L.NewTable()
		L.SetMetatable(tbl, mt)
		L.SetGlobal(string([]byte("Tab")), tbl)
		for k, _ := tbl.Next(lua.LNil); k != lua.LNil; k, _ = tbl.Next(k) {
			order0 += k.String() + ","
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	consts := g.constants()
	// both functions' "Tab" is one string
	var tabs []string
	for _, p := range g.Scripts[0].Proto.FunctionPrototypes {
		for _, c := range p.Constants {
			if c == lua.LString("Tab") {
				tabs = append(tabs, string(c.(lua.LString)))
			}
		}
	}
	if len(tabs) != 2 || unsafe.StringData(tabs[0]) != unsafe.StringData(tabs[1]) {
		t.Errorf("the functions' constants \"Tab\" do not share their bytes (%d found)", len(tabs))
	}
	shares := func(tb *lua.LTable, key string) bool {
		found := false
		tb.ForEach(func(k, _ lua.LValue) {
			if ks, ok := k.(lua.LString); ok && string(ks) == key {
				found = unsafe.StringData(string(ks)) == unsafe.StringData(consts[key])
			}
		})
		return found
	}
	L := vm.L
	T := L.GetGlobal("Tab").(*lua.LTable)
	for _, c := range []struct {
		tb  *lua.LTable
		key string
	}{{L.G.Global, "Tab"}, {T, "sub"}, {T, "other"}, {T.RawGetString("sub").(*lua.LTable), "fn"}, {L.GetGlobal("string").(*lua.LTable), "format"}} {
		if !shares(c.tb, c.key) {
			t.Errorf("key %q does not share the script constant's bytes", c.key)
		}
	}
	if err := L.CallByParam(lua.P{Fn: L.GetGlobal("f"), NRet: 3, Protect: true}); err != nil {
		t.Fatal(err)
	}
	if a, b, c := L.Get(-3).String(), L.Get(-2).String(), L.Get(-1).String(); a != "called" || b != "42" || c != "7" {
		t.Errorf("f() = %s, %s, %s", a, b, c)
	}
	L.Pop(3)
	if err := L.CallByParam(lua.P{Fn: L.GetGlobal("order"), NRet: 1, Protect: true}); err != nil {
		t.Fatal(err)
	}
	if got := L.Get(-1).String() + ","; got != order0 {
		t.Errorf("pairs order %q, before interning %q", got, order0)
	}
	if L.GetMetatable(T) == lua.LNil {
		t.Error("metatable lost")
	}
}
