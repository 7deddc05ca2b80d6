package ksr

import (
	lua "github.com/yuin/gopher-lua"

	"kemi/luavm"
)

func (e *Env) xFuncs() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// exit ends the running callback (only this one), as app_lua does.
		"exit": luavm.Exit,
		// drop marks the message dropped (pre-routing, reply route) and exits.
		"drop": func(L *lua.LState) int {
			if e.Msg != nil {
				e.Msg.Drop = true
			}
			return luavm.Exit(L)
		},
		"probe": func(L *lua.LState) int { return retNone(L) },
		"modf": func(L *lua.LState) int {
			e.D.Log.Error("KSR.x.modf is not supported by kemi (no native modules)", "function", argStr(L, 1))
			return retInt(L, -1)
		},
	}
}
