package ksr

import (
	lua "github.com/yuin/gopher-lua"
)

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
		Exports: []Submodule{coreExports(), coreMoreExports(), xExports(), pvExports(), hdrExports()},
	}
}
