package ksr

import (
	"time"

	lua "github.com/yuin/gopher-lua"
)

// The KSR.async functions. Limits and codes follow Kamailio's async module:
// route seconds 1..99, ms_route milliseconds 1..29999, route name < 63
// characters; success returns the module's "return" parameter (0), errors -1
// with a log line, bad arity false (KEMI's rule). The Lua function keeps
// running after a successful suspend (there is no implicit exit in KEMI):
// scripts call KSR.x.exit() right after. docs/async.md lists every
// difference from Kamailio.

const maxRouteName = 62

func (e *Env) asyncFuncs() map[string]lua.LGFunction {
	unavailable := func(L *lua.LState) bool {
		if e.D.Async == nil {
			e.D.Log.Error("async module not loaded (loadmodule \"async.so\")")
			L.Push(boxInt(-1))
			return true
		}
		return false
	}
	validName := func(fn string) bool {
		if fn == "" || len(fn) > maxRouteName {
			e.D.Log.Error("invalid async route name", "route", fn)
			return false
		}
		return true
	}
	return map[string]lua.LGFunction{
		"route": func(L *lua.LState) int {
			if !e.arity(L, "async.route", 2) || unavailable(L) {
				return 1
			}
			fn, sec := argStr(L, 1), argInt(L, 2)
			if !validName(fn) {
				return retInt(L, -1)
			}
			if sec < 1 || sec >= 100 {
				e.D.Log.Error("async route: seconds must be 1..99 (max 100 sec)", "seconds", sec)
				return retInt(L, -1)
			}
			return retInt(L, e.D.Async.Route(e, fn, time.Duration(sec)*time.Second))
		},
		"ms_route": func(L *lua.LState) int {
			if !e.arity(L, "async.ms_route", 2) || unavailable(L) {
				return 1
			}
			fn, ms := argStr(L, 1), argInt(L, 2)
			if !validName(fn) {
				return retInt(L, -1)
			}
			if ms < 1 || ms >= 30000 {
				e.D.Log.Error("async ms_route: milliseconds must be 1..29999", "ms", ms)
				return retInt(L, -1)
			}
			return retInt(L, e.D.Async.Route(e, fn, time.Duration(ms)*time.Millisecond))
		},
		"task_route": func(L *lua.LState) int {
			if !e.arity(L, "async.task_route", 1) || unavailable(L) {
				return 1
			}
			fn := argStr(L, 1)
			if !validName(fn) {
				return retInt(L, -1)
			}
			return retInt(L, e.D.Async.Task(e, fn, ""))
		},
		"task_group_route": func(L *lua.LState) int {
			if !e.arity(L, "async.task_group_route", 2) || unavailable(L) {
				return 1
			}
			fn := argStr(L, 1)
			if !validName(fn) {
				return retInt(L, -1)
			}
			return retInt(L, e.D.Async.Task(e, fn, argStr(L, 2)))
		},
		"task_data": func(L *lua.LState) int {
			if !e.arity(L, "async.task_data", 2) || unavailable(L) {
				return 1
			}
			return retInt(L, e.D.Async.Data(e, argStr(L, 1), "", argStr(L, 2)))
		},
		"task_group_data": func(L *lua.LState) int {
			if !e.arity(L, "async.task_group_data", 3) || unavailable(L) {
				return 1
			}
			return retInt(L, e.D.Async.Data(e, argStr(L, 1), argStr(L, 2), argStr(L, 3)))
		},
		"get_data":  func(L *lua.LState) int { return retStr(L, e.AsyncData) },
		"get_gname": func(L *lua.LState) int { return retStr(L, e.asyncGroup()) },
		// sleep and ms_sleep go beyond Kamailio's KEMI: the running request
		// handler is suspended as a coroutine and continues with the next
		// statement, where the call returns 1; it returns -1 at once when it
		// cannot suspend (not in the request route, inside pcall, ...).
		"sleep": func(L *lua.LState) int {
			if !e.arity(L, "async.sleep", 1) || unavailable(L) {
				return 1
			}
			sec := argInt(L, 1)
			if sec < 1 || sec >= 100 {
				e.D.Log.Error("async sleep: seconds must be 1..99", "seconds", sec)
				return retInt(L, -1)
			}
			return e.D.Async.Sleep(e, L, time.Duration(sec)*time.Second)
		},
		"ms_sleep": func(L *lua.LState) int {
			if !e.arity(L, "async.ms_sleep", 1) || unavailable(L) {
				return 1
			}
			ms := argInt(L, 1)
			if ms < 1 || ms >= 30000 {
				e.D.Log.Error("async ms_sleep: milliseconds must be 1..29999", "ms", ms)
				return retInt(L, -1)
			}
			return e.D.Async.Sleep(e, L, time.Duration(ms)*time.Millisecond)
		},
	}
}

// asyncGroup is the async group name of this worker, "" for other workers.
func (e *Env) asyncGroup() string {
	if e.AsyncWorker {
		return e.Group
	}
	return ""
}
