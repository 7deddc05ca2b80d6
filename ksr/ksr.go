package ksr

import (
	lua "github.com/yuin/gopher-lua"
)

// legacy is a KSR submodule still bound the old way, as a map of closures
// built for each Env: registered, but not yet in an export table, so
// `kemi check`, `kemi stubs` and app_lua.api_list do not know it.
type legacy struct {
	name  string
	funcs map[string]lua.LGFunction
}

// legacyModules lists the submodules not yet converted to export tables.
func (e *Env) legacyModules() []legacy {
	return []legacy{
		{"async", e.asyncFuncs()},
		{"sworker", e.sworkerFuncs()},
	}
}

// registerLegacy adds the legacy submodules to the KSR table.
func registerLegacy(L *lua.LState, e *Env, ksr *lua.LTable) {
	for _, m := range e.legacyModules() {
		t := ksr
		if m.name != "" {
			if tt, ok := ksr.RawGetString(m.name).(*lua.LTable); ok {
				t = tt
			} else {
				t = L.NewTable()
				ksr.RawSetString(m.name, t)
				L.SetMetatable(t, missing(L, "KSR."+m.name+".", "function"))
			}
		}
		for name, fn := range m.funcs {
			t.RawSetString(name, L.NewFunction(fn))
		}
	}
}

// legacyNames lists the legacy functions as "module.name".
func legacyNames(e *Env) []string {
	var out []string
	for _, m := range e.legacyModules() {
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

// Register builds the KSR table for L from e's Deps.Table (or, when the
// Deps have none, from the core module alone) and sets it as the global
// KSR.
func Register(L *lua.LState, e *Env) *lua.LTable {
	t := e.D.Table
	if t == nil {
		var err error
		if t, err = NewTable(Core()); err != nil {
			panic("ksr: core exports: " + err.Error())
		}
	}
	return t.Register(L, e)
}

// coreModule is what Kamailio's core exports to KEMI: KSR.*, KSR.x,
// KSR.pv and KSR.hdr.
type coreModule struct{}

// Core returns Kamailio's core as a module.
func Core() Module { return coreModule{} }

func (coreModule) Info() ModuleInfo {
	return ModuleInfo{
		Name:    "core",
		Doc:     "Kamailio's core: KSR.*, KSR.x, KSR.pv, KSR.hdr",
		Exports: []Submodule{coreExports(), xExports(), pvExports(), hdrExports()},
	}
}
