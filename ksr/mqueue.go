package ksr

import (
	lua "github.com/yuin/gopher-lua"

	"kemi/queues"
)

// The KSR.mqueue functions. Return codes are KEMI's, which differ from the
// native-cfg wrappers documented in the module README: mq_size gives 0 for
// an empty queue and -1 for an unknown one (the README's -1/-2 are the
// native functions'). The fetched item is private to this VM, as Kamailio's
// is private to its process.

func (e *Env) queue(name string) *queues.Queue {
	if e.D.Queues == nil {
		return nil
	}
	return e.D.Queues.Get(name)
}

func (e *Env) mqueueFuncs() map[string]lua.LGFunction {
	get := func(fname string, val bool) lua.LGFunction {
		return func(L *lua.LState) int {
			if !e.arity(L, "mqueue."+fname, 1) {
				return 1
			}
			q := e.queue(argStr(L, 1))
			if q == nil {
				return retNil(L)
			}
			it, ok := e.mq[q]
			if !ok {
				return retNil(L)
			}
			if val {
				return retStr(L, it.Val)
			}
			return retStr(L, it.Key)
		}
	}
	// The e/w variants behave like the plain ones in Kamailio (they ignore
	// their mode and return nil when nothing is fetched); kemi keeps that.
	return map[string]lua.LGFunction{
		"mq_add": func(L *lua.LState) int {
			if !e.arity(L, "mqueue.mq_add", 3) {
				return 1
			}
			q := e.queue(argStr(L, 1))
			if q == nil {
				e.D.Log.Error("mqueue not found", "queue", argStr(L, 1))
				return retInt(L, -1)
			}
			if err := q.Add(argStr(L, 2), argStr(L, 3)); err != nil {
				e.D.Log.Error("mqueue add failed", "queue", q.Name(), "error", err)
				return retInt(L, -1)
			}
			return retInt(L, 1)
		},
		"mq_fetch": func(L *lua.LState) int {
			if !e.arity(L, "mqueue.mq_fetch", 1) {
				return 1
			}
			q := e.queue(argStr(L, 1))
			if q == nil {
				return retInt(L, -1)
			}
			delete(e.mq, q) // the previous item is freed before the emptiness check
			it, err := q.Fetch()
			if err != nil {
				return retInt(L, -2)
			}
			e.mq[q] = it
			return retInt(L, 1)
		},
		"mq_pv_free": func(L *lua.LState) int {
			if !e.arity(L, "mqueue.mq_pv_free", 1) {
				return 1
			}
			if q := e.queue(argStr(L, 1)); q != nil {
				delete(e.mq, q)
			}
			return retInt(L, 1)
		},
		"mq_size": func(L *lua.LState) int {
			if !e.arity(L, "mqueue.mq_size", 1) {
				return 1
			}
			q := e.queue(argStr(L, 1))
			if q == nil {
				e.D.Log.Error("mqueue not found", "queue", argStr(L, 1))
				return retInt(L, -1)
			}
			return retInt(L, q.Len())
		},
		"mqk_get":  get("mqk_get", false),
		"mqk_gete": get("mqk_gete", false),
		"mqk_getw": get("mqk_getw", false),
		"mqv_get":  get("mqv_get", true),
		"mqv_gete": get("mqv_gete", true),
		"mqv_getw": get("mqv_getw", true),
	}
}

// mqueuePV is $mqk(q), $mqv(q), $mq_size(q): null for an empty key/value or
// nothing fetched; nil (PV error) for an unknown queue.
func mqueuePV(class string) func(e *Env, s *pvSpec) lua.LValue {
	return func(e *Env, s *pvSpec) lua.LValue {
		name, ok := e.argName(s)
		if !ok {
			return lua.LNil
		}
		q := e.queue(name)
		if q == nil {
			e.D.Log.Error("mqueue not found", "queue", name)
			return lua.LNil
		}
		switch class {
		case "mq_size":
			return boxInt(q.Len())
		case "mqk":
			if it, ok := e.mq[q]; ok {
				return strOrNil(it.Key)
			}
		case "mqv":
			if it, ok := e.mq[q]; ok {
				return strOrNil(it.Val)
			}
		}
		return lua.LNil
	}
}
