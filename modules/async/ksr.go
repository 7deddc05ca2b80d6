package async

import (
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
)

// The KSR.async functions. Limits and codes follow Kamailio's async module:
// route seconds 1..99, ms_route milliseconds 1..29999, route name < 63
// characters; success returns the module's "return" parameter (0), errors -1
// with a log line, bad arity false (KEMI's rule). The Lua function keeps
// running after a successful suspend (there is no implicit exit in KEMI):
// scripts call KSR.x.exit() right after. docs/async.md lists every
// difference from Kamailio.

const maxRouteName = 62

func (m *Module) exports() []ksr.Submodule {
	return []ksr.Submodule{{Name: "async", Funcs: []ksr.Export{
		{Name: "route", Func: m.route, Ret: ksr.Int, Args: []string{"route", "seconds"},
			Doc: "Suspend the request and resume it in route after 1..99 seconds, on the async workers."},
		{Name: "ms_route", Func: m.msRoute, Ret: ksr.Int, Args: []string{"route", "milliseconds"},
			Doc: "Suspend the request and resume it in route after 1..29999 milliseconds, on the async workers."},
		{Name: "task_route", Func: m.taskRoute, Ret: ksr.Int, Args: []string{"route"},
			Doc: "Suspend the request and resume it in route now, on the default async_workers group."},
		{Name: "task_group_route", Func: m.taskGroupRoute, Ret: ksr.Int, Args: []string{"route", "group"},
			Doc: "Suspend the request and resume it in route now, on an async_workers group."},
		{Name: "task_data", Func: m.taskData, Ret: ksr.Int, Args: []string{"route", "data"},
			Doc: "Run route(\"async:task-data\") with data on the default async_workers group, without a transaction."},
		{Name: "task_group_data", Func: m.taskGroupData, Ret: ksr.Int, Args: []string{"route", "group", "data"},
			Doc: "Run route(\"async:task-data\") with data on an async_workers group, without a transaction."},
		{Name: "get_data", Func: getData, Ret: ksr.Xval, Doc: "The data of the running data task, or \"\"."},
		{Name: "get_gname", Func: getGname, Ret: ksr.Xval, Doc: "The async_workers group of this worker, or \"\"."},
		// sleep and ms_sleep go beyond Kamailio's KEMI: the running request
		// handler is suspended as a coroutine and continues with the next
		// statement, where the call returns 1; it returns -1 at once when it
		// cannot suspend (not in the request route, inside pcall, ...).
		{Name: "sleep", Func: ksr.Raw(m.sleep), Params: []ksr.Type{ksr.Int}, Ret: ksr.Int, Args: []string{"seconds"},
			Doc: "kemi: pause the request handler 1..99 seconds; the worker serves others meanwhile. 1 after the pause, -1 when it cannot."},
		{Name: "ms_sleep", Func: ksr.Raw(m.msSleep), Params: []ksr.Type{ksr.Int}, Ret: ksr.Int, Args: []string{"milliseconds"},
			Doc: "kemi: pause the request handler 1..29999 milliseconds; 1 after the pause, -1 when it cannot."},
	}}}
}

// loaded reports whether the module runs, logging when it does not.
func (m *Module) loaded(e *ksr.Env) bool {
	if m.host == nil {
		e.D.Log.Error("async module not loaded (loadmodule \"async.so\")")
		return false
	}
	return true
}

func validName(e *ksr.Env, fn string) bool {
	if fn == "" || len(fn) > maxRouteName {
		e.D.Log.Error("invalid async route name", "route", fn)
		return false
	}
	return true
}

func (m *Module) route(e *ksr.Env, fn string, sec int) int {
	if !m.loaded(e) || !validName(e, fn) {
		return -1
	}
	if sec < 1 || sec >= 100 {
		e.D.Log.Error("async route: seconds must be 1..99 (max 100 sec)", "seconds", sec)
		return -1
	}
	return m.suspendRoute(e, fn, time.Duration(sec)*time.Second)
}

func (m *Module) msRoute(e *ksr.Env, fn string, ms int) int {
	if !m.loaded(e) || !validName(e, fn) {
		return -1
	}
	if ms < 1 || ms >= 30000 {
		e.D.Log.Error("async ms_route: milliseconds must be 1..29999", "ms", ms)
		return -1
	}
	return m.suspendRoute(e, fn, time.Duration(ms)*time.Millisecond)
}

func (m *Module) taskRoute(e *ksr.Env, fn string) int {
	if !m.loaded(e) || !validName(e, fn) {
		return -1
	}
	return m.task(e, fn, "")
}

func (m *Module) taskGroupRoute(e *ksr.Env, fn, group string) int {
	if !m.loaded(e) || !validName(e, fn) {
		return -1
	}
	return m.task(e, fn, group)
}

func (m *Module) taskData(e *ksr.Env, fn, data string) int {
	if !m.loaded(e) {
		return -1
	}
	return m.data(e, fn, "", data)
}

func (m *Module) taskGroupData(e *ksr.Env, fn, group, data string) int {
	if !m.loaded(e) {
		return -1
	}
	return m.data(e, fn, group, data)
}

// getData is the data of the running data task, "" elsewhere
// (ki_async_get_data: SR_KEMI_XVAL_NULL_EMPTY).
func getData(e *ksr.Env) lua.LValue { return lua.LString(e.AsyncData) }

// getGname is the async group name of this worker, "" for other workers.
func getGname(e *ksr.Env) lua.LValue {
	if e.AsyncWorker {
		return lua.LString(e.Group)
	}
	return lua.LString("")
}

func (m *Module) sleep(e *ksr.Env, L *lua.LState) int {
	if !m.loaded(e) {
		L.Push(ksr.BoxInt(-1))
		return 1
	}
	sec := ksr.ArgInt(L, 1)
	if sec < 1 || sec >= 100 {
		e.D.Log.Error("async sleep: seconds must be 1..99", "seconds", sec)
		L.Push(ksr.BoxInt(-1))
		return 1
	}
	return m.suspendSleep(e, L, time.Duration(sec)*time.Second)
}

func (m *Module) msSleep(e *ksr.Env, L *lua.LState) int {
	if !m.loaded(e) {
		L.Push(ksr.BoxInt(-1))
		return 1
	}
	ms := ksr.ArgInt(L, 1)
	if ms < 1 || ms >= 30000 {
		e.D.Log.Error("async ms_sleep: milliseconds must be 1..29999", "ms", ms)
		L.Push(ksr.BoxInt(-1))
		return 1
	}
	return m.suspendSleep(e, L, time.Duration(ms)*time.Millisecond)
}
