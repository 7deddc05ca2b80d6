package ksr

import (
	lua "github.com/yuin/gopher-lua"
)

func (e *Env) sworkerFuncs() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// task delegates the message to group; only valid in the pre-routing
		// callback. Unlike Kamailio (which returns 1 and loses the message
		// for an unknown group or a full nonblock queue), kemi returns -1 and
		// the message carries on in this worker.
		"task": func(L *lua.LState) int {
			if !e.arity(L, "sworker.task", 1) {
				return 1
			}
			if e.Msg == nil || e.Msg.Faked || (e.Msg.Req == nil && e.Msg.Res == nil) {
				e.D.Log.Error("sworker task: no message to delegate")
				return retInt(L, -1)
			}
			if !e.Msg.PreRouting {
				e.D.Log.Error("sworker task: not used in pre-routing phase")
				return retInt(L, -1)
			}
			if e.D.Sworker == nil {
				e.D.Log.Error("sworker module not loaded (loadmodule \"sworker.so\")")
				return retInt(L, -1)
			}
			return retInt(L, e.D.Sworker.Task(e, argStr(L, 1)))
		},
		"active": func(L *lua.LState) int {
			if e.SWActive {
				return retInt(L, 1)
			}
			return retInt(L, -1)
		},
	}
}
