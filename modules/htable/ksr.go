package htable

import (
	"regexp"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
)

// The KSR.htable functions, in the order of sr_kemi_htable_exports at
// 5.6.3, with the return codes of the ki_ht_* functions in htable.c (KEMI's,
// which differ from the native-cfg functions' in places: sht_reset gives 0,
// sht_setxi gives 0 on success, sht_rm_name_re on an unknown table gives 1).
// Integer values are C ints: 32 bits, wrapping.

func (m *Module) exports() []ksr.Submodule {
	tk := []string{"table", "key"}
	it := []string{"iterator"}
	op := []string{"table", "op", "value"}
	return []ksr.Submodule{{Name: "htable", Funcs: []ksr.Export{
		{Name: "sht_lock", Func: m.lock, Ret: ksr.Int, Args: tk, Doc: "Lock the slot of key (re-entrant for this worker): 1, -1 unknown table."},
		{Name: "sht_unlock", Func: m.unlock, Ret: ksr.Int, Args: tk, Doc: "Unlock the slot of key: 1, -1 unknown table."},
		{Name: "sht_reset", Func: m.reset, Ret: ksr.Int, Args: []string{"table"}, Doc: "Remove every item: 0 (sic), -1 unknown table."},
		{Name: "sht_iterator_start", Func: m.itStart, Ret: ksr.Int, Args: []string{"iterator", "table"}, Doc: "Start (or restart) a named iterator over a table: 1, -1 error (at most 4 per worker, names below 32 characters)."},
		{Name: "sht_iterator_next", Func: m.itNext, Ret: ksr.Int, Args: it, Doc: "Move to the next item: 1, -1 no more items or unknown iterator."},
		{Name: "sht_iterator_end", Func: m.itEnd, Ret: ksr.Int, Args: it, Doc: "Release the iterator: 1, -1 unknown iterator."},
		{Name: "sht_iterator_rm", Func: m.itRm, Ret: ksr.Int, Args: it, Doc: "Remove the current item and move to the next: 1, -2 removed and no more items, -1 error."},
		{Name: "sht_iterator_sets", Func: m.itSets, Ret: ksr.Int, Args: []string{"iterator", "value"}, Doc: "Set the current item to a string: 1, -1 error."},
		{Name: "sht_iterator_seti", Func: m.itSeti, Ret: ksr.Int, Args: []string{"iterator", "value"}, Doc: "Set the current item to an integer: 1, -1 error."},
		{Name: "sht_iterator_setex", Func: m.itSetex, Ret: ksr.Int, Args: []string{"iterator", "expire"}, Doc: "Set the current item to expire in expire seconds: 1, -1 error."},
		{Name: "sht_rm", Func: m.rm, Ret: ksr.Int, Args: tk, Doc: "Remove an item: 1 (also when absent), -1 unknown table."},
		{Name: "sht_rm_name_re", Func: m.rmNameRe, Ret: ksr.Int, Args: []string{"table", "regexp"}, Doc: "Remove the items whose name matches: 1 (also for an unknown table), -1 bad expression."},
		{Name: "sht_rm_value_re", Func: m.rmValueRe, Ret: ksr.Int, Args: []string{"table", "regexp"}, Doc: "Remove the items whose string value matches: 1 (also for an unknown table), -1 bad expression."},
		{Name: "sht_rm_name", Func: m.rmName, Ret: ksr.Int, Args: op, Doc: "Remove the items whose name matches (op re or sw): 1, -1 unknown table or op."},
		{Name: "sht_rm_value", Func: m.rmValue, Ret: ksr.Int, Args: op, Doc: "Remove the items whose string value matches (op re or sw): 1, -1 unknown table or op."},
		{Name: "sht_match_name", Func: m.matchName, Ret: ksr.Int, Args: op, Doc: "1 if an item name matches (op eq, ne, re, sw), else -1."},
		{Name: "sht_match_str_value", Func: m.matchValue, Ret: ksr.Int, Args: op, Doc: "1 if an item's string value matches (op eq, ne, re, sw), else -1."},
		{Name: "sht_get", NoRetain: true, Func: m.get, Ret: ksr.Xval, Args: tk, Doc: "The item's value (string or integer); initval for an absent key if the table has one; else nil."},
		{Name: "sht_gete", NoRetain: true, Func: m.gete, Ret: ksr.Xval, Args: tk, Doc: "Like sht_get, with \"\" instead of nil."},
		{Name: "sht_getw", Func: m.getw, Ret: ksr.Xval, Args: tk, Doc: "Like sht_get, with \"<null>\" instead of nil."},
		{Name: "sht_sets", NoRetain: true, Func: m.sets, Ret: ksr.Int, Args: []string{"table", "key", "value"}, Doc: "Set a string value: 1, -1 unknown table."},
		{Name: "sht_seti", NoRetain: true, Func: m.seti, Ret: ksr.Int, Args: []string{"table", "key", "value"}, Doc: "Set an integer value: 1, -1 unknown table."},
		{Name: "sht_setex", Func: m.setex, Ret: ksr.Int, Args: []string{"table", "key", "expire"}, Doc: "Set an item's expiry in seconds (autoexpire tables only): 1, -1 unknown table."},
		{Name: "sht_setxi", Func: ksr.Raw(m.setxi), Params: []ksr.Type{ksr.Str, ksr.Str, ksr.Int, ksr.Int}, Ret: ksr.Int,
			Args: []string{"table", "key", "value", "expire"}, Doc: "Set an integer value expiring in expire seconds: 0 (sic, as Kamailio 5.6), -1 unknown table."},
		{Name: "sht_setxs", Func: ksr.Raw(m.setxs), Params: []ksr.Type{ksr.Str, ksr.Str, ksr.Str, ksr.Int}, Ret: ksr.Int,
			Args: []string{"table", "key", "value", "expire"}, Doc: "Set a string value expiring in expire seconds: 1, -1 unknown table."},
		{Name: "sht_is_null", Func: m.isNull, Ret: ksr.Int, Args: tk, Doc: "1 absent, -1 present, -2 the table has initval, 2 unknown table."},
		{Name: "sht_inc", NoRetain: true, Func: m.inc, Ret: ksr.Int, Args: tk, Doc: "Add 1 to an integer item and return the new value (an absent key starts from initval); -255 not possible."},
		{Name: "sht_dec", Func: m.dec, Ret: ksr.Int, Args: tk, Doc: "Subtract 1 from an integer item and return the new value; -255 not possible."},
	}}}
}

// noIntVal is KSR_HT_KEMI_NOINTVAL: sht_inc/sht_dec could not count.
const noIntVal = -255

// table returns the named table, or nil. With autoexpire tables, it first
// runs the expiry sweep if one is due (now), so that every htable call,
// and not only those that read the clock, sees the table as Kamailio's
// timer would have left it. who is the calling VM, or nil.
func (m *Module) table(who any, name string) *Table {
	if m.sweepEvery > 0 {
		m.now(who)
	}
	if e, ok := who.(*ksr.Env); ok && m.host != nil {
		// A VM's last table: a script passes the same Lua string constant
		// call after call, so this is a pointer comparison instead of a
		// map lookup. The tables never change after Provision.
		st := m.state(e)
		if st.lastTable != nil && st.lastName == name {
			return st.lastTable
		}
		t := m.tables[name]
		if t != nil {
			st.lastName, st.lastTable = name, t
		}
		return t
	}
	return m.tables[name]
}

// nowFor is the time an operation on t needs: m.now, or 0 for a table
// without autoexpire, whose items neither expire nor get an expiry time
// (Get, Add and Set ignore now then), which saves a clock read on every
// sht_get and sht_inc. The caller found t with m.table, which already
// started any sweep that was due.
func (m *Module) nowFor(e *ksr.Env, t *Table) int64 {
	if t.AutoExpire <= 0 {
		return 0
	}
	return m.now(e)
}

func (m *Module) noTable(e *ksr.Env, name string) {
	e.D.Log.Error("no such htable", "table", name)
}

func (m *Module) lock(e *ksr.Env, table, key string) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	t.LockSlot(key, e)
	return 1
}

func (m *Module) unlock(e *ksr.Env, table, key string) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	if !t.UnlockSlot(key, e) {
		e.D.Log.Error("htable slot not locked by this worker", "table", table, "key", key)
	}
	return 1
}

func (m *Module) reset(e *ksr.Env, table string) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	t.Reset(e)
	return 0
}

func (m *Module) rm(e *ksr.Env, table, key string) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	t.Delete(key, e)
	return 1
}

// rmRe is ki_ht_rm_name_re / ki_ht_rm_value_re.
func (m *Module) rmRe(e *ksr.Env, table, re string, byValue bool) int {
	t := m.table(e, table)
	if t == nil {
		return 1
	}
	if re == "" {
		return -1
	}
	rx, err := compileRE(re)
	if err != nil {
		e.D.Log.Error("bad regular expression", "re", re, "error", err)
		return -1
	}
	t.Remove(byValue, opRE, re, rx, e)
	return 1
}

func (m *Module) rmNameRe(e *ksr.Env, table, re string) int  { return m.rmRe(e, table, re, false) }
func (m *Module) rmValueRe(e *ksr.Env, table, re string) int { return m.rmRe(e, table, re, true) }

// rmItems is ht_rm_items: op "re" or "sw".
func (m *Module) rmItems(e *ksr.Env, table, op, val string, byValue bool) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	switch op {
	case "re":
		return m.rmRe(e, table, val, byValue)
	case "sw":
		if val == "" {
			return -1
		}
		t.Remove(byValue, opSW, val, nil, e)
		return 1
	}
	e.D.Log.Warn("unsupported match operator", "op", op)
	return -1
}

func (m *Module) rmName(e *ksr.Env, table, op, val string) int {
	return m.rmItems(e, table, op, val, false)
}

func (m *Module) rmValue(e *ksr.Env, table, op, val string) int {
	return m.rmItems(e, table, op, val, true)
}

// matchItems is ht_match_str_items.
func (m *Module) matchItems(e *ksr.Env, table, op, val string, byValue bool) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	var o int
	switch op {
	case "eq":
		o = opEQ
	case "ne":
		o = opNE
	case "re":
		o = opRE
	case "sw":
		o = opSW
	default:
		e.D.Log.Warn("unsupported match operator", "op", op)
		return -1
	}
	if val == "" {
		return -1
	}
	var rx *regexp.Regexp
	if o == opRE {
		var err error
		if rx, err = compileRE(val); err != nil {
			e.D.Log.Error("bad regular expression", "re", val, "error", err)
			return -1
		}
	}
	if t.Match(byValue, o, val, rx, e) {
		return 1
	}
	return -1
}

func (m *Module) matchName(e *ksr.Env, table, op, val string) int {
	return m.matchItems(e, table, op, val, false)
}

func (m *Module) matchValue(e *ksr.Env, table, op, val string) int {
	return m.matchItems(e, table, op, val, true)
}

// Null results of sht_get and its variants (SR_KEMI_XVAL_NULL_*).
var (
	nullNone  lua.LValue = lua.LNil
	nullEmpty lua.LValue = lua.LString("")
	nullPrint lua.LValue = lua.LString("<null>")
)

// getMode is ki_ht_get_mode.
func (m *Module) getMode(e *ksr.Env, table, key string, null lua.LValue) lua.LValue {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return null
	}
	it, ok := t.Get(key, m.nowFor(e, t), e)
	switch {
	case !ok && t.HasInit:
		return ksr.BoxInt(int(t.InitVal))
	case !ok:
		return null
	case it.IsStr:
		return lua.LString(it.Str)
	}
	return ksr.BoxInt(int(it.Int))
}

func (m *Module) get(e *ksr.Env, table, key string) lua.LValue {
	return m.getMode(e, table, key, nullNone)
}

func (m *Module) gete(e *ksr.Env, table, key string) lua.LValue {
	return m.getMode(e, table, key, nullEmpty)
}

func (m *Module) getw(e *ksr.Env, table, key string) lua.LValue {
	return m.getMode(e, table, key, nullPrint)
}

func (m *Module) isNull(e *ksr.Env, table, key string) int {
	t := m.table(e, table)
	switch {
	case t == nil:
		return 2
	case t.HasInit:
		return -2
	case t.Exists(key, m.now(e), e):
		return -1
	}
	return 1
}

func (m *Module) sets(e *ksr.Env, table, key, val string) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	t.Set(key, true, val, 0, 0, m.nowFor(e, t), e)
	return 1
}

func (m *Module) seti(e *ksr.Env, table, key string, val int) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	t.Set(key, false, "", int32(val), 0, m.nowFor(e, t), e)
	return 1
}

func (m *Module) setex(e *ksr.Env, table, key string, exp int) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	t.SetExpire(key, int(int32(exp)), m.now(e), e)
	return 1
}

// setxs is ki_ht_setxs(table, key, value, expire).
func (m *Module) setxs(e *ksr.Env, L *lua.LState) int {
	table, key, val, exp := ksr.ArgStr(L, 1), ksr.ArgStr(L, 2), ksr.ArgStr(L, 3), ksr.ArgInt(L, 4)
	L.Push(ksr.BoxInt(m.setx(e, table, key, true, val, 0, int(int32(exp)), 1)))
	return 1
}

// setxi is ki_ht_setxi(table, key, value, expire); like Kamailio 5.6.3 it
// returns 0 on success (later versions return 1).
func (m *Module) setxi(e *ksr.Env, L *lua.LState) int {
	table, key, val, exp := ksr.ArgStr(L, 1), ksr.ArgStr(L, 2), ksr.ArgInt(L, 3), ksr.ArgInt(L, 4)
	L.Push(ksr.BoxInt(m.setx(e, table, key, false, "", int32(val), int(int32(exp)), 0)))
	return 1
}

func (m *Module) setx(e *ksr.Env, table, key string, isStr bool, sv string, nv int32, exp, ok int) int {
	t := m.table(e, table)
	if t == nil {
		m.noTable(e, table)
		return -1
	}
	t.Set(key, isStr, sv, nv, exp, m.now(e), e)
	return ok
}

// add is ki_ht_add_op.
func (m *Module) add(e *ksr.Env, table, key string, delta int32) int {
	t := m.table(e, table)
	if t == nil {
		return noIntVal
	}
	n, ok := t.Add(key, delta, m.nowFor(e, t), e)
	if !ok {
		return noIntVal
	}
	return int(n)
}

func (m *Module) inc(e *ksr.Env, table, key string) int { return m.add(e, table, key, 1) }
func (m *Module) dec(e *ksr.Env, table, key string) int { return m.add(e, table, key, -1) }

// vmState is one VM's htable state: its iterators (Kamailio keeps 4 per
// process) and its parsed $sht names.
type vmState struct {
	its   [maxIterators]iterator
	names map[string]*pvName
	// the table found last (Module.table)
	lastName  string
	lastTable *Table
}

const (
	maxIterators   = 4  // HT_ITERATOR_SIZE
	maxIteratorLen = 32 // HT_ITERATOR_NAME_SIZE
)

// iterator is ht_iterator_t. While it is on an item it holds that item's
// slot (re-entrantly for its VM), as Kamailio's does.
type iterator struct {
	name  string
	t     *Table
	slot  int
	cells []*cell // the slot's items when the iterator entered it
	idx   int
	cur   *cell // nil: not on an item
}

func (m *Module) state(e *ksr.Env) *vmState { return ksr.LocalOf[vmState](e, m.local) }

// find is ht_iterator_find: the iterator named name, else the first free
// one, else nil.
func (st *vmState) find(name string) *iterator {
	var free *iterator
	for i := range st.its {
		it := &st.its[i]
		if it.name != "" {
			if it.name == name {
				return it
			}
		} else if free == nil {
			free = it
		}
	}
	return free
}

// release leaves the iterator's slot.
func (it *iterator) release(e *ksr.Env) {
	if it.t != nil && it.cur != nil && it.slot >= 0 && it.slot < it.t.Size {
		it.t.unlockSlot(&it.t.slots[it.slot], e)
	}
	it.cur, it.cells = nil, nil
}

// advance moves to the next live item of the current slot's list, else
// leaves the slot and scans the next ones (holding a slot that has items);
// it reports whether it is on an item.
func (it *iterator) advance(e *ksr.Env) bool {
	if it.cur != nil {
		s := &it.t.slots[it.slot]
		for it.idx++; it.idx < len(it.cells); it.idx++ {
			if c := it.cells[it.idx]; s.cells[c.name] == c {
				it.cur = c
				return true
			}
		}
		it.release(e)
		it.slot++
	}
	for ; it.slot < it.t.Size; it.slot++ {
		s := &it.t.slots[it.slot]
		it.t.lockIdx(it.slot, e)
		if len(s.cells) > 0 {
			it.cells, it.idx = sorted(s), 0
			it.cur = it.cells[0]
			return true
		}
		it.t.unlockSlot(s, e)
	}
	return false
}

func (m *Module) itStart(e *ksr.Env, iname, table string) int {
	if iname == "" || table == "" {
		e.D.Log.Error("invalid parameters")
		return -1
	}
	it := m.state(e).find(iname)
	if it == nil {
		e.D.Log.Error("no iterator available", "max", maxIterators)
		return -1
	}
	if it.name != "" {
		it.release(e)
	} else {
		if len(iname) >= maxIteratorLen {
			e.D.Log.Error("iterator name is too big", "iterator", iname, "max", maxIteratorLen)
			return -1
		}
		it.name = iname
	}
	it.cur, it.slot, it.t = nil, 0, m.table(e, table)
	if it.t == nil {
		m.noTable(e, table)
		return -1
	}
	return 1
}

// current finds a started iterator; code is what ht_iterator_* returns when
// it is missing.
func (m *Module) current(e *ksr.Env, iname string, needItem bool) *iterator {
	it := m.state(e).find(iname)
	switch {
	case it == nil:
		e.D.Log.Error("iterator not found", "iterator", iname)
		return nil
	case it.t == nil:
		e.D.Log.Error("iterator not initialized", "iterator", iname)
		return nil
	case needItem && it.cur == nil:
		e.D.Log.Error("iterator not used", "iterator", iname)
		return nil
	}
	return it
}

func (m *Module) itNext(e *ksr.Env, iname string) int {
	if iname == "" {
		return -1
	}
	it := m.current(e, iname, false)
	if it == nil {
		return -1
	}
	if it.cur == nil {
		it.slot = 0
	}
	if !it.advance(e) {
		return -1
	}
	return 1
}

func (m *Module) itEnd(e *ksr.Env, iname string) int {
	if iname == "" {
		return -1
	}
	it := m.state(e).find(iname)
	if it == nil || it.name == "" {
		e.D.Log.Error("iterator not found", "iterator", iname)
		return -1
	}
	it.release(e)
	*it = iterator{}
	return 1
}

func (m *Module) itRm(e *ksr.Env, iname string) int {
	if iname == "" {
		return -1
	}
	it := m.current(e, iname, true)
	if it == nil {
		return -1
	}
	s := &it.t.slots[it.slot]
	delete(s.cells, it.cur.name)
	it.t.sendDel(s, it.cur.name)
	if !it.advance(e) {
		return -2
	}
	return 1
}

// itSet gives the iterator's current item a value (sht_iterator_sets and
// seti), renewing its expiry when the table has updateexpire.
func (m *Module) itSet(e *ksr.Env, iname string, isStr bool, str string, n int32) int {
	if iname == "" {
		return -1
	}
	it := m.current(e, iname, true)
	if it == nil {
		return -1
	}
	c := it.cur
	c.isStr, c.s, c.n = isStr, str, n
	if it.t.UpdateExpire {
		c.expire = m.now(e) + int64(it.t.AutoExpire)
	}
	it.t.sendSet(&it.t.slots[it.slot], c)
	return 1
}

func (m *Module) itSets(e *ksr.Env, iname, val string) int { return m.itSet(e, iname, true, val, 0) }

func (m *Module) itSeti(e *ksr.Env, iname string, val int) int {
	return m.itSet(e, iname, false, "", int32(val))
}

func (m *Module) itSetex(e *ksr.Env, iname string, exp int) int {
	if iname == "" {
		return -1
	}
	it := m.current(e, iname, true)
	if it == nil {
		return -1
	}
	it.cur.expire = m.now(e) + int64(int32(exp))
	it.t.sendSet(&it.t.slots[it.slot], it.cur)
	return 1
}

// pvName is a parsed $sht inner name: "table=>key format".
type pvName struct {
	table string
	key   []keyPart
}

// keyPart is a literal or a pseudo-variable of a key format.
type keyPart struct {
	lit string
	pv  string // "$si"; "" for a literal
}

// parseName is pv_parse_ht_name with pv_parse_format: the table name, "=>",
// then text with pseudo-variables ($name, $name(...), $(...)).
func parseName(in string) (*pvName, bool) {
	const ws = " \t\r\n"
	p := strings.TrimLeft(in, ws)
	i := strings.IndexAny(p, "="+ws)
	if p == "" || i <= 0 {
		return nil, false
	}
	n := &pvName{table: p[:i]}
	p = strings.TrimLeft(p[i:], ws)
	if !strings.HasPrefix(p, "=>") {
		return nil, false
	}
	p = p[2:]
	for p != "" {
		j := strings.IndexByte(p, '$')
		if j < 0 {
			n.key = append(n.key, keyPart{lit: p})
			break
		}
		if j > 0 {
			n.key = append(n.key, keyPart{lit: p[:j]})
		}
		end := pvEnd(p[j:])
		if end <= 1 {
			n.key = append(n.key, keyPart{lit: "$"})
			p = p[j+1:]
			continue
		}
		n.key = append(n.key, keyPart{pv: p[j : j+end]})
		p = p[j+end:]
	}
	return n, true
}

// pvEnd returns the length of the pseudo-variable at the start of s ("$"
// included), or 1 when there is none.
func pvEnd(s string) int {
	i := 1
	if i < len(s) && s[i] == '(' {
		return balanced(s, i)
	}
	for i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
		i++
	}
	if i > 1 && i < len(s) && s[i] == '(' {
		return balanced(s, i)
	}
	return i
}

// balanced returns the index after the parenthesis that closes s[open], or
// 1 when it is not closed.
func balanced(s string, open int) int {
	depth := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return 1
}

// resolve evaluates a $sht-style name: the table (nil if unknown) and the
// key, with null pseudo-variables printed "<null>" as pv_printf does.
func (m *Module) resolve(e *ksr.Env, inner string) (*Table, string, bool) {
	st := m.state(e)
	n := st.names[inner]
	if n == nil {
		var ok bool
		if n, ok = parseName(inner); !ok {
			e.D.Log.Error("invalid htable name", "name", inner)
			return nil, "", false
		}
		if st.names == nil {
			st.names = map[string]*pvName{}
		}
		if len(st.names) < 1024 {
			st.names[inner] = n
		}
	}
	t := m.table(e, n.table)
	if len(n.key) == 1 && n.key[0].pv == "" {
		return t, n.key[0].lit, true
	}
	var b strings.Builder
	for _, k := range n.key {
		if k.pv == "" {
			b.WriteString(k.lit)
			continue
		}
		v, err := e.PVGet(k.pv)
		if err != nil {
			e.D.Log.Error("cannot get $sht name", "pv", k.pv, "error", err)
			return nil, "", false
		}
		if v == lua.LNil {
			b.WriteString("<null>")
		} else {
			b.WriteString(v.String())
		}
	}
	return t, b.String(), true
}

// pvs are $sht, $shtex, $shtcn, $shtcv, $shtinc, $shtdec, $shtitkey and
// $shtitval.
func (m *Module) pvs() []ksr.PV {
	return []ksr.PV{
		{Name: "sht", Named: true, Get: m.pvGet, Set: m.pvSet},
		{Name: "shtex", Named: true, Get: m.pvGetEx, Set: m.pvSetEx},
		{Name: "shtcn", Named: true, Get: func(e *ksr.Env, n string) lua.LValue { return m.pvCount(e, n, false) }},
		{Name: "shtcv", Named: true, Get: func(e *ksr.Env, n string) lua.LValue { return m.pvCount(e, n, true) }},
		{Name: "shtinc", Named: true, Get: func(e *ksr.Env, n string) lua.LValue { return m.pvAdd(e, n, 1) }},
		{Name: "shtdec", Named: true, Get: func(e *ksr.Env, n string) lua.LValue { return m.pvAdd(e, n, -1) }},
		{Name: "shtitkey", Named: true, Get: func(e *ksr.Env, n string) lua.LValue { return m.pvIt(e, n, true) }},
		{Name: "shtitval", Named: true, Get: func(e *ksr.Env, n string) lua.LValue { return m.pvIt(e, n, false) }},
	}
}

// pvGet is pv_get_ht_cell.
func (m *Module) pvGet(e *ksr.Env, name string) lua.LValue {
	t, key, ok := m.resolve(e, name)
	if !ok || t == nil {
		return lua.LNil
	}
	it, found := t.Get(key, m.nowFor(e, t), e)
	switch {
	case !found && t.HasInit:
		return ksr.BoxInt(int(t.InitVal))
	case !found:
		return lua.LNil
	case it.IsStr:
		return lua.LString(it.Str)
	}
	return ksr.BoxInt(int(it.Int))
}

// pvSet is pv_set_ht_cell: nil deletes, a number sets an integer, anything
// else a string.
func (m *Module) pvSet(e *ksr.Env, name string, v lua.LValue) bool {
	t, key, ok := m.resolve(e, name)
	if !ok || t == nil {
		return false
	}
	switch x := v.(type) {
	case *lua.LNilType:
		t.Delete(key, e)
	case lua.LNumber:
		t.Set(key, false, "", int32(int64(x)), 0, m.nowFor(e, t), e)
	default:
		t.Set(key, true, v.String(), 0, 0, m.nowFor(e, t), e)
	}
	return true
}

// pvGetEx is pv_get_ht_cell_expire: seconds left (0 without autoexpire or
// item).
func (m *Module) pvGetEx(e *ksr.Env, name string) lua.LValue {
	t, key, ok := m.resolve(e, name)
	if !ok || t == nil {
		return lua.LNil
	}
	return ksr.BoxInt(int(t.ExpiresIn(key, m.now(e), e)))
}

// pvSetEx is pv_set_ht_cell_expire: an integer sets the expiry, anything
// else clears it.
func (m *Module) pvSetEx(e *ksr.Env, name string, v lua.LValue) bool {
	t, key, ok := m.resolve(e, name)
	if !ok || t == nil {
		return false
	}
	exp := 0
	if n, isNum := v.(lua.LNumber); isNum {
		exp = int(int32(int64(n)))
	}
	t.SetExpire(key, exp, m.now(e), e)
	return true
}

// pvCount is pv_get_ht_cn / pv_get_ht_cv: items whose name (value) match
// the evaluated expression.
func (m *Module) pvCount(e *ksr.Env, name string, byValue bool) lua.LValue {
	t, expr, ok := m.resolve(e, name)
	if !ok || t == nil {
		return lua.LNil
	}
	return ksr.BoxInt(t.Count(byValue, expr, e))
}

// pvAdd is pv_get_ht_add ($shtinc, $shtdec): the new value, or nil.
func (m *Module) pvAdd(e *ksr.Env, name string, delta int32) lua.LValue {
	t, key, ok := m.resolve(e, name)
	if !ok || t == nil {
		return lua.LNil
	}
	n, ok := t.Add(key, delta, m.nowFor(e, t), e)
	if !ok {
		return lua.LNil
	}
	return ksr.BoxInt(int(n))
}

// pvIt is $shtitkey / $shtitval: the iterator's current item.
func (m *Module) pvIt(e *ksr.Env, iname string, key bool) lua.LValue {
	it := m.state(e).find(iname)
	if it == nil || it.name == "" || it.cur == nil {
		return lua.LNil
	}
	switch c := it.cur; {
	case key:
		return lua.LString(c.name)
	case c.isStr:
		return lua.LString(c.s)
	default:
		return ksr.BoxInt(int(c.n))
	}
}
