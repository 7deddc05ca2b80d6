package ksr

import (
	lua "github.com/yuin/gopher-lua"
)

func (e *Env) sworkerFuncs() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// task delegates the message (request or reply) to an async_workers
		// group; only valid in the pre-routing callback. It returns 1 when
		// delegated (the script must then KSR.x.drop(), or the message is
		// routed here too), -1 otherwise. Unlike Kamailio (which returns 1
		// and loses the message for an unknown group or a full nonblock
		// queue), kemi returns -1 and the message carries on in this worker.
		"task": func(L *lua.LState) int {
			if !e.arity(L, "sworker.task", 1) {
				return 1
			}
			group := argStr(L, 1)
			if e.Msg == nil || e.Msg.Faked || (e.Msg.Req == nil && e.Msg.Res == nil) {
				e.D.Log.Error("sworker task: invalid usage for null or faked message", "group", group)
				return retInt(L, -1)
			}
			if !e.Msg.PreRouting {
				e.D.Log.Warn("sworker task: not used in pre-routing phase", "group", group, "worker", e.Name)
				return retInt(L, -1)
			}
			if e.D.Sworker == nil {
				e.D.Log.Error("sworker task: module not loaded (loadmodule \"sworker.so\")", "group", group)
				return retInt(L, -1)
			}
			return retInt(L, e.D.Sworker.Task(e, group))
		},
		// active returns 1 while a delegated message is processed in a group
		// worker, -1 otherwise.
		"active": func(L *lua.LState) int {
			if !e.arity(L, "sworker.active", 0) {
				return 1
			}
			if e.SWActive {
				return retInt(L, 1)
			}
			return retInt(L, -1)
		},
	}
}
