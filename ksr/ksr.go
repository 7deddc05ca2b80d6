package ksr

import (
	lua "github.com/yuin/gopher-lua"
)

// module is one KSR submodule: its name under KSR ("" for KSR itself) and
// its functions.
type module struct {
	name  string
	funcs map[string]lua.LGFunction
}

// modules lists the KSR submodules in registration order, like linit.go.
func (e *Env) modules() []module {
	return []module{
		{"", e.coreFuncs()},
		{"x", e.xFuncs()},
		{"pv", e.pvFuncs()},
		{"hdr", e.hdrFuncs()},
		{"sl", e.slFuncs()},
		{"tm", e.tmFuncs()},
		{"rr", e.rrFuncs()},
		{"mqueue", e.mqueueFuncs()},
		{"async", e.asyncFuncs()},
		{"sworker", e.sworkerFuncs()},
	}
}

// Register builds the KSR table for L, bound to e, and sets it as the global
// KSR. It returns the table.
func Register(L *lua.LState, e *Env) *lua.LTable {
	ksr := L.NewTable()
	for _, m := range e.modules() {
		t := ksr
		if m.name != "" {
			t = L.NewTable()
			ksr.RawSetString(m.name, t)
		}
		for name, fn := range m.funcs {
			t.RawSetString(name, L.NewFunction(fn))
		}
	}
	L.SetGlobal("KSR", ksr)
	return ksr
}

// APIList describes every registered function as "module.name", for
// app_lua.api_list-style output and docs.
func APIList(e *Env) []string {
	var out []string
	for _, m := range e.modules() {
		for name := range m.funcs {
			if m.name == "" {
				out = append(out, name)
			} else {
				out = append(out, m.name+"."+name)
			}
		}
	}
	return out
}
