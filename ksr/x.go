package ksr

import (
	lua "github.com/yuin/gopher-lua"

	"kemi/luavm"
)

// xExports is KSR.x: app_lua's own functions (app_lua_api.c,
// _sr_kemi_x_Map), not sr_kemi_t exports. They handle the Lua stack
// themselves, so they are Raw.
func xExports() Submodule {
	return Submodule{Name: "x", Funcs: []Export{
		{Name: "exit", NoRetain: true, Func: Raw(xExit), Ret: None, Doc: "End the running callback (only this one), as app_lua does."},
		{Name: "drop", NoRetain: true, Func: Raw(xDrop), Ret: None, Doc: "Mark the message dropped and end the running callback."},
		{Name: "probe", Func: Raw(xProbe), Ret: None, Doc: "Do nothing (the cost of an empty KSR call)."},
		{Name: "modf", Func: Raw(xModf), Ret: Int, Doc: "Call a native module function: not supported by kemi, -1."},
	}}
}

func xExit(_ *Env, L *lua.LState) int { return luavm.Exit(L) }

func xDrop(e *Env, L *lua.LState) int {
	if e.Msg != nil {
		e.Msg.Drop = true
	}
	return luavm.Exit(L)
}

// xProbe returns no value, as app_lua's sr_kemi_lua_probe (a call gives nil).
func xProbe(_ *Env, L *lua.LState) int { return 0 }

func xModf(e *Env, L *lua.LState) int {
	e.D.Log.Error("KSR.x.modf is not supported by kemi (no native modules)", "function", argStr(L, 1))
	return retInt(L, -1)
}
