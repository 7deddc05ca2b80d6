package ksr

import (
	lua "github.com/yuin/gopher-lua"

	"kemi/queues"
)

// The KSR.mqueue functions (reference §1.3). Return codes are KEMI's, which
// differ from the native-cfg wrappers documented in the module README:
// mq_size gives 0 for an empty queue and -1 for an unknown one (the README's
// -1/-2 are the native functions'). The fetched item is private to this VM,
// as Kamailio's is private to its process.
//
// The hot path (mq_add + mq_fetch from a Lua loop) does not allocate: the
// queue and this VM's fetched-item slot are found through a one-entry cache
// keyed by the queue name, which a loop passes as the same Lua string
// constant every time, so the check is a length and pointer comparison.

// mqState is one VM's mqueue state: the item fetched from each queue
// (Kamailio's per-process pv item) and the lookup cache.
type mqState struct {
	slots    map[*queues.Queue]*mqSlot // created on first use of each queue
	lastName string
	last     *mqSlot
}

// mqSlot is one queue as this VM sees it.
type mqSlot struct {
	q       *queues.Queue
	it      queues.Item
	fetched bool
}

// free forgets the fetched item (mq_pv_free, or a new mq_fetch).
func (s *mqSlot) free() { s.it, s.fetched = queues.Item{}, false }

// mqSlot returns this VM's slot of the named queue, or nil for an unknown
// queue. The registry never changes after start, so the cache needs no
// invalidation.
func (e *Env) mqSlot(name string) *mqSlot {
	st := &e.mq
	if st.last != nil && st.lastName == name {
		return st.last
	}
	if e.D.Queues == nil {
		return nil
	}
	q := e.D.Queues.Get(name)
	if q == nil {
		return nil
	}
	s := st.slots[q]
	if s == nil {
		if st.slots == nil {
			st.slots = map[*queues.Queue]*mqSlot{}
		}
		s = &mqSlot{q: q}
		st.slots[q] = s
	}
	st.lastName, st.last = name, s
	return s
}

func (e *Env) mqueueFuncs() map[string]lua.LGFunction {
	// get is mqk_get/mqv_get and their e/w variants: the e/w variants behave
	// like the plain ones in Kamailio (ki_mqx_get_mode ignores its mode and
	// returns nil when nothing is fetched); kemi keeps that. An empty key or
	// value is returned as "" (the $mqk/$mqv PVs give nil for it).
	get := func(fname string, val bool) lua.LGFunction {
		return func(L *lua.LState) int {
			if !e.arity(L, "mqueue."+fname, 1) {
				return 1
			}
			s := e.mqSlot(argStr(L, 1))
			if s == nil || !s.fetched {
				return retNil(L)
			}
			if val {
				return retStr(L, s.it.Val)
			}
			return retStr(L, s.it.Key)
		}
	}
	return map[string]lua.LGFunction{
		// mq_add: 1 added (also when addmode 1 ignores a duplicate key), -1
		// unknown queue or (durable queue) the row could not be written.
		"mq_add": func(L *lua.LState) int {
			if !e.arity(L, "mqueue.mq_add", 3) {
				return 1
			}
			s := e.mqSlot(argStr(L, 1))
			if s == nil {
				e.D.Log.Error("mqueue not found", "queue", argStr(L, 1))
				return retInt(L, -1)
			}
			if err := s.q.Add(argStr(L, 2), argStr(L, 3)); err != nil {
				e.D.Log.Error("mqueue add failed", "queue", s.q.Name(), "error", err)
				return retInt(L, -1)
			}
			return retInt(L, 1)
		},
		// mq_fetch: 1 fetched, -1 unknown queue, -2 empty.
		"mq_fetch": func(L *lua.LState) int {
			if !e.arity(L, "mqueue.mq_fetch", 1) {
				return 1
			}
			s := e.mqSlot(argStr(L, 1))
			if s == nil {
				return retInt(L, -1)
			}
			s.free() // the previous item is freed before the emptiness check
			it, err := s.q.Fetch()
			if err == queues.ErrEmpty { // returned unwrapped: no errors.Is walk on the hot path
				return retInt(L, -2)
			}
			if err != nil {
				// Only a durable queue (dbmode 4) fails here, when its row cannot be
				// deleted: the item stays queued, so this is an error, not "empty".
				e.D.Log.Error("mqueue fetch failed", "queue", s.q.Name(), "error", err)
				return retInt(L, -1)
			}
			s.it, s.fetched = it, true
			return retInt(L, 1)
		},
		// mq_pv_free: always 1, an unknown queue included.
		"mq_pv_free": func(L *lua.LState) int {
			if !e.arity(L, "mqueue.mq_pv_free", 1) {
				return 1
			}
			if s := e.mqSlot(argStr(L, 1)); s != nil {
				s.free()
			}
			return retInt(L, 1)
		},
		// mq_size: the count (0 when empty), -1 unknown queue.
		"mq_size": func(L *lua.LState) int {
			if !e.arity(L, "mqueue.mq_size", 1) {
				return 1
			}
			s := e.mqSlot(argStr(L, 1))
			if s == nil {
				e.D.Log.Error("mqueue not found", "queue", argStr(L, 1))
				return retInt(L, -1)
			}
			return retInt(L, s.q.Len())
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
		sl := e.mqSlot(name)
		if sl == nil {
			e.D.Log.Error("mqueue not found", "queue", name)
			return lua.LNil
		}
		switch {
		case class == "mq_size":
			return boxInt(sl.q.Len())
		case !sl.fetched:
			return lua.LNil
		case class == "mqk":
			return strOrNil(sl.it.Key)
		case class == "mqv":
			return strOrNil(sl.it.Val)
		}
		return lua.LNil
	}
}
