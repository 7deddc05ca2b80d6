package mqueue

import (
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/queues"
)

// The KSR.mqueue functions (reference §1.3). Return codes are KEMI's, which
// differ from the native-cfg wrappers documented in the module README:
// mq_size gives 0 for an empty queue and -1 for an unknown one (the README's
// -1/-2 are the native functions'). The fetched item is private to the VM,
// as Kamailio's is private to its process.
//
// The hot path (mq_add + mq_fetch from a Lua loop) does not allocate: the
// queue and this VM's fetched-item slot are found through a one-entry cache
// keyed by the queue name, which a loop passes as the same Lua string
// constant every time, so the check is a length and pointer comparison.

func (m *Module) exports() []ksr.Submodule {
	q := []string{"queue"}
	return []ksr.Submodule{{Name: "mqueue", Funcs: []ksr.Export{
		{Name: "mq_add", NoRetain: true, Func: m.add, Ret: ksr.Int, Args: []string{"queue", "key", "value"},
			Doc: "Add an item: 1 added, -1 unknown queue or the item could not be stored."},
		{Name: "mq_fetch", NoRetain: true, Func: m.fetch, Ret: ksr.Int, Args: q,
			Doc: "Take the oldest item into this worker's slot: 1 fetched, -1 unknown queue, -2 empty."},
		// kemi extensions (docs/mqueue.md, docs/cluster.md): at-least-once.
		{Name: "mq_take", Func: m.take, Ret: ksr.Int, Args: []string{"queue", "timeout_ms"},
			Doc: "kemi: take the oldest item, waiting up to timeout_ms, kept owed until mq_ack: 1 taken, -1 unknown queue or backend error, -2 none came."},
		{Name: "mq_ack", Func: m.ack, Ret: ksr.Int, Args: q,
			Doc: "kemi: acknowledge this worker's taken item, removing it for good: 1 done, -1 unknown queue or failed, -2 nothing taken."},
		{Name: "mq_nack", Func: m.nack, Ret: ksr.Int, Args: q,
			Doc: "kemi: put this worker's taken item back: 1 done, -1 unknown queue or failed, -2 nothing taken."},
		{Name: "mq_pv_free", Func: m.pvFree, Ret: ksr.Int, Args: q,
			Doc: "Forget this worker's fetched item of the queue: always 1."},
		{Name: "mq_size", NoRetain: true, Func: m.size, Ret: ksr.Int, Args: q,
			Doc: "Number of items: 0 when empty, -1 unknown queue."},
		// The e/w variants behave like the plain ones in Kamailio
		// (ki_mqx_get_mode ignores its mode and returns nil when nothing is
		// fetched); kemi keeps that. An empty key or value is returned as ""
		// (the $mqk/$mqv PVs give nil for it).
		{Name: "mqk_get", Func: m.key, Ret: ksr.Xval, Args: q, Doc: "Key of the fetched item, or nil."},
		{Name: "mqk_gete", Func: m.key, Ret: ksr.Xval, Args: q, Doc: "Key of the fetched item, or nil."},
		{Name: "mqk_getw", Func: m.key, Ret: ksr.Xval, Args: q, Doc: "Key of the fetched item, or nil."},
		{Name: "mqv_get", Func: m.val, Ret: ksr.Xval, Args: q, Doc: "Value of the fetched item, or nil."},
		{Name: "mqv_gete", Func: m.val, Ret: ksr.Xval, Args: q, Doc: "Value of the fetched item, or nil."},
		{Name: "mqv_getw", Func: m.val, Ret: ksr.Xval, Args: q, Doc: "Value of the fetched item, or nil."},
	}}}
}

// vmState is one VM's mqueue state: the item fetched from each queue
// (Kamailio's per-process pv item) and the lookup cache.
type vmState struct {
	slots    map[*queues.Queue]*slot // created on first use of each queue
	lastName string
	last     *slot
}

// slot is one queue as a VM sees it.
type slot struct {
	q       *queues.Queue
	it      queues.Item
	fetched bool
	taken   *queues.Taken // mq_take's item until mq_ack or mq_nack
}

// free forgets the fetched item (mq_pv_free, or a new mq_fetch).
func (s *slot) free() { s.it, s.fetched = queues.Item{}, false }

// slot returns the VM's slot of the named queue, or nil for an unknown
// queue. The registry never changes after start, so the cache needs no
// invalidation.
func (m *Module) slot(e *ksr.Env, name string) *slot {
	if m.host == nil {
		return nil // not loaded: no queues, and no per-VM slot
	}
	st := ksr.LocalOf[vmState](e, m.local)
	if st.last != nil && st.lastName == name {
		return st.last
	}
	q := m.reg.Get(name)
	if q == nil {
		return nil
	}
	s := st.slots[q]
	if s == nil {
		if st.slots == nil {
			st.slots = map[*queues.Queue]*slot{}
		}
		s = &slot{q: q}
		st.slots[q] = s
	}
	st.lastName, st.last = name, s
	return s
}

// add is mq_add: 1 added (also when addmode 1 ignores a duplicate key), -1
// unknown queue or (durable queue) the row could not be written.
func (m *Module) add(e *ksr.Env, queue, key, val string) int {
	s := m.slot(e, queue)
	if s == nil {
		e.D.Log.Error("mqueue not found", "queue", queue)
		return -1
	}
	if err := s.q.Add(key, val); err != nil {
		m.errs.error(e.D.Log, "mqueue add failed", "queue", s.q.Name(), "error", err)
		return -1
	}
	return 1
}

// fetch is mq_fetch: 1 fetched, -1 unknown queue, -2 empty.
func (m *Module) fetch(e *ksr.Env, queue string) int {
	s := m.slot(e, queue)
	if s == nil {
		return -1
	}
	s.free() // the previous item is freed before the emptiness check
	it, err := s.q.Fetch()
	if err == queues.ErrEmpty { // returned unwrapped: no errors.Is walk on the hot path
		return -2
	}
	if err != nil {
		// Only a durable queue (dbmode 4) fails here, when its row cannot be
		// deleted: the item stays queued, so this is an error, not "empty".
		m.errs.error(e.D.Log, "mqueue fetch failed", "queue", s.q.Name(), "error", err)
		return -1
	}
	s.it, s.fetched = it, true
	return 1
}

// pvFree is mq_pv_free: always 1, an unknown queue included.
func (m *Module) pvFree(e *ksr.Env, queue string) int {
	if s := m.slot(e, queue); s != nil {
		s.free()
	}
	return 1
}

// size is mq_size: the count (0 when empty), -1 unknown queue.
func (m *Module) size(e *ksr.Env, queue string) int {
	s := m.slot(e, queue)
	if s == nil {
		e.D.Log.Error("mqueue not found", "queue", queue)
		return -1
	}
	n, err := s.q.Size()
	if err != nil {
		m.errs.error(e.D.Log, "mqueue size failed", "queue", s.q.Name(), "error", err)
		return -1
	}
	return n
}

// key is mqk_get and its variants.
func (m *Module) key(e *ksr.Env, queue string) lua.LValue {
	s := m.slot(e, queue)
	if s == nil || !s.fetched {
		return lua.LNil
	}
	return lua.LString(s.it.Key)
}

// val is mqv_get and its variants.
func (m *Module) val(e *ksr.Env, queue string) lua.LValue {
	s := m.slot(e, queue)
	if s == nil || !s.fetched {
		return lua.LNil
	}
	return lua.LString(s.it.Val)
}

// pvs are $mqk(q), $mqv(q), $mq_size(q): null for an empty key/value or
// nothing fetched; nil (PV error) for an unknown queue.
func (m *Module) pvs() []ksr.PV {
	pv := func(class string) ksr.PV {
		return ksr.PV{Name: class, Named: true, Get: func(e *ksr.Env, name string) lua.LValue {
			s := m.slot(e, name)
			if s == nil {
				e.D.Log.Error("mqueue not found", "queue", name)
				return lua.LNil
			}
			switch {
			case class == "mq_size":
				return ksr.BoxInt(s.q.Len())
			case !s.fetched:
				return lua.LNil
			case class == "mqk":
				return ksr.StrOrNil(s.it.Key)
			}
			return ksr.StrOrNil(s.it.Val)
		}}
	}
	return []ksr.PV{pv("mqk"), pv("mqv"), pv("mq_size")}
}
