package htable

import (
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"kemi/queues"
)

// A Table is one named hash table: 2^size slots (Kamailio's ht_entry_t),
// each with its own mutex, so workers touching different keys rarely wait
// on each other. Items live in the slot Kamailio's core_case_hash picks, so
// htable.dump numbers the slots as Kamailio does and lists a slot's items in
// Kamailio's order (by hash, then insertion).
//
// Times are Unix seconds, as Kamailio's time(NULL): an item whose expire is
// not 0 is expired once expire < now, and only in a table with autoexpire
// (Kamailio ignores expiry elsewhere).
type Table struct {
	Spec
	slots []slot
	seq   atomic.Uint64 // insertion order within a slot

	// rep replicates the table's changes (dmqreplicate with NATS, cluster.go);
	// nil for a local table. Set before traffic starts.
	rep       replicator
	replica   *queues.Replica
	repFail   func(key string, err error) // a change that could not be sent
	repErrors atomic.Int64                // changes that could not be sent
}

// Spec is a table's definition, from modparam("htable", "htable", ...).
type Spec struct {
	Name         string
	Size         int // number of slots (a power of two), not the size= exponent
	AutoExpire   int // seconds; 0: items never expire
	UpdateExpire bool
	HasInit      bool // initval= given: absent keys read as InitVal
	InitVal      int32
	DBTable      string
	DBMode       int
	DMQReplicate int // accepted, no DMQ in kemi
}

// slot is one of a table's buckets with its lock. Like Kamailio's
// ht_slot_lock the lock is re-entrant for the VM holding it through
// sht_lock or an iterator (owner), so that VM's own $sht operations on the
// slot do not deadlock.
type slot struct {
	mu    sync.Mutex
	owner atomic.Pointer[any] // the VM holding mu across calls, or nil
	depth int                 // re-entries by owner (guarded by mu)
	cells map[string]*cell
	// pending counts, per key, this node's changes sent to the cluster
	// and not yet come back from it (replicated tables, cluster.go).
	pending map[string]*pend
	// dirty holds the keys whose last change could not be sent: sent again
	// when the connection is back (cluster.go).
	dirty map[string]struct{}
	_     [8]byte // keep slots on separate cache lines
}

// cell is one item (ht_cell_t). Its fields are guarded by its slot's mutex.
type cell struct {
	name   string
	hid    uint32
	seq    uint64
	isStr  bool
	s      string
	n      int32
	expire int64
	rev    uint64 // the cluster's revision of this value (replicated tables)
}

// Item is a copy of a cell, for readers outside the lock.
type Item struct {
	Name   string
	IsStr  bool
	Str    string
	Int    int32
	Expire int64 // Unix seconds; 0 = none
}

func (c *cell) item() Item {
	return Item{Name: c.name, IsStr: c.isStr, Str: c.s, Int: c.n, Expire: c.expire}
}

// newTable builds an empty table.
func newTable(s Spec) *Table {
	return &Table{Spec: s, slots: make([]slot, s.Size)}
}

// hash is Kamailio's core_case_hash(name, NULL, 0) (core/hashes.h), with
// C's signed char: bytes >= 0x80 are sign-extended, as on x86.
func hash(s string) uint32 {
	icase := func(b byte) uint32 {
		if b >= 'A' && b <= 'Z' {
			b |= 0x20
		}
		return uint32(int32(int8(b)))
	}
	var h, v uint32
	i := 0
	for ; i+4 <= len(s); i += 4 {
		v = icase(s[i])<<24 + icase(s[i+1])<<16 + icase(s[i+2])<<8 + icase(s[i+3])
		h += v ^ (v >> 3)
	}
	v = 0
	for ; i < len(s); i++ {
		v <<= 8
		v += icase(s[i])
	}
	h += v ^ (v >> 3)
	return (h + (h >> 11)) + ((h >> 13) + (h >> 23))
}

// expired tells whether c is expired at now, as Kamailio's readers test it.
func (t *Table) expired(c *cell, now int64) bool {
	return t.AutoExpire > 0 && c.expire != 0 && c.expire < now
}

// lock takes slot i's mutex unless who already holds it (sht_lock or an
// iterator of the same VM); it reports whether unlock must release it.
// who is nil for callers outside any VM (RPC, timer, database).
func (t *Table) lock(i uint32, who any) (*slot, bool) {
	s := &t.slots[i]
	if who != nil {
		if o := s.owner.Load(); o != nil && *o == who {
			return s, false
		}
	}
	s.mu.Lock()
	return s, true
}

// tryLock is lock without waiting: nil when another holder has the slot.
func (t *Table) tryLock(i uint32, who any) (*slot, bool) {
	s := &t.slots[i]
	if o := s.owner.Load(); o != nil && *o == who {
		return s, false
	}
	if !s.mu.TryLock() {
		return nil, false
	}
	return s, true
}

func (s *slot) unlock(locked bool) {
	if locked {
		s.mu.Unlock()
	}
}

// find returns the cell named name in t and its slot, locked for who.
func (t *Table) find(name string, who any) (*slot, bool, *cell, uint32) {
	hid := hash(name)
	s, locked := t.lock(hid&uint32(t.Size-1), who)
	return s, locked, s.cells[name], hid
}

func (t *Table) insert(s *slot, c *cell) {
	if s.cells == nil {
		s.cells = map[string]*cell{}
	}
	c.seq = t.seq.Add(1)
	s.cells[c.name] = c
}

// Get returns a copy of the item, or false when it is absent or expired
// (ht_cell_pkg_copy).
func (t *Table) Get(name string, now int64, who any) (Item, bool) {
	s, locked, c, _ := t.find(name, who)
	defer s.unlock(locked)
	if c == nil || t.expired(c, now) {
		return Item{}, false
	}
	return c.item(), true
}

// Exists is ht_cell_exists.
func (t *Table) Exists(name string, now int64, who any) bool {
	_, ok := t.Get(name, now, who)
	return ok
}

// Set is ht_set_cell_ex: it stores a string (isStr) or an integer value,
// with exv > 0 seconds of expiry, or else the table's autoexpire rules.
// Kamailio's quirks are kept: without autoexpire "now" is 0; when a value
// has to be reallocated (a longer string, or a string over an integer) and
// exv > 0, the new item gets no expiry at all (Kamailio sets it on the
// freed copy).
func (t *Table) Set(name string, isStr bool, sv string, nv int32, exv int, now int64, who any) {
	if t.AutoExpire <= 0 {
		now = 0
	}
	s, locked, c, hid := t.find(name, who)
	defer s.unlock(locked)
	if c == nil {
		c = &cell{name: name, hid: hid, isStr: isStr, s: sv, n: nv}
		if exv <= 0 {
			c.expire = now + int64(t.AutoExpire)
		} else {
			c.expire = now + int64(exv)
		}
		t.insert(s, c)
		t.sendSet(s, c)
		return
	}
	realloc := isStr && (!c.isStr || len(c.s) < len(sv))
	switch {
	case exv > 0 && realloc:
		c.expire = 0
	case exv > 0:
		c.expire = now + int64(exv)
	case t.UpdateExpire:
		c.expire = now + int64(t.AutoExpire)
	}
	c.isStr, c.s, c.n = isStr, "", nv
	if isStr {
		c.s, c.n = sv, 0
	}
	t.sendSet(s, c)
}

// Add is ht_cell_value_add: it adds delta to an integer item and returns
// the new value; an absent or expired key starts from initval when the
// table has one. It returns false for a string item, or an absent key in a
// table without initval.
func (t *Table) Add(name string, delta int32, now int64, who any) (int32, bool) {
	if t.AutoExpire <= 0 {
		now = 0
	}
	s, locked, c, hid := t.find(name, who)
	defer s.unlock(locked)
	if c != nil {
		if now > 0 && c.expire != 0 && c.expire < now {
			if !t.HasInit {
				return 0, false
			}
			c.isStr, c.s, c.n = false, "", t.InitVal
		}
		if c.isStr {
			return 0, false
		}
		c.n += delta
		if t.UpdateExpire {
			c.expire = now + int64(t.AutoExpire)
		}
		t.sendSet(s, c)
		return c.n, true
	}
	if !t.HasInit {
		return 0, false
	}
	c = &cell{name: name, hid: hid, n: t.InitVal + delta, expire: now + int64(t.AutoExpire)}
	t.insert(s, c)
	t.sendSet(s, c)
	return c.n, true
}

// Delete removes the item; it reports whether it was there
// (ht_del_cell_confirm).
func (t *Table) Delete(name string, who any) bool {
	s, locked, c, _ := t.find(name, who)
	defer s.unlock(locked)
	t.sendDel(s, name) // also when absent here: the cluster may have it
	if c == nil {
		return false
	}
	delete(s.cells, name)
	return true
}

// SetExpire is ht_set_cell_expire: exv > 0 seconds from now, else no
// expiry; nothing happens in a table without autoexpire.
func (t *Table) SetExpire(name string, exv int, now int64, who any) {
	if t.AutoExpire == 0 {
		return
	}
	var at int64
	if exv > 0 {
		at = now + int64(exv)
	}
	s, locked, c, _ := t.find(name, who)
	defer s.unlock(locked)
	if c != nil {
		c.expire = at
		t.sendSet(s, c)
	}
}

// ExpiresIn is ht_get_cell_expire: seconds left, as Kamailio's unsigned
// int (a past expiry wraps around); 0 without autoexpire or item.
func (t *Table) ExpiresIn(name string, now int64, who any) uint32 {
	if t.AutoExpire == 0 {
		return 0
	}
	s, locked, c, _ := t.find(name, who)
	defer s.unlock(locked)
	if c == nil {
		return 0
	}
	return uint32(c.expire - now)
}

// each calls f for every slot that has items, locked, with its items in
// Kamailio's order; f may delete items from s.cells.
func (t *Table) each(who any, f func(i int, s *slot, cells []*cell) bool) {
	for i := range t.slots {
		s, locked := t.lock(uint32(i), who)
		if len(s.cells) > 0 {
			if !f(i, s, sorted(s)) {
				s.unlock(locked)
				return
			}
		}
		s.unlock(locked)
	}
}

// sorted lists a slot's cells in Kamailio's list order.
func sorted(s *slot) []*cell {
	cs := make([]*cell, 0, len(s.cells))
	for _, c := range s.cells {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(a, b *cell) int {
		switch {
		case a.hid != b.hid:
			if a.hid < b.hid {
				return -1
			}
			return 1
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return cs
}

// Match operators of sht_match_name and friends (HT_RM_OP_*).
const (
	opEQ = iota + 1
	opNE
	opSW
	opRE
)

// compileRE compiles a POSIX extended expression as Kamailio does
// (REG_EXTENDED|REG_ICASE|REG_NEWLINE), with Go's RE2 syntax.
func compileRE(re string) (*regexp.Regexp, error) {
	return regexp.Compile("(?im)" + re)
}

// matches tells whether the cell's name (byValue false) or string value
// matches val under op. Integer values never match.
func matches(c *cell, byValue bool, op int, val string, re *regexp.Regexp) bool {
	sm := c.name
	if byValue {
		if !c.isStr {
			return false
		}
		sm = c.s
	}
	switch op {
	case opEQ:
		return sm == val
	case opNE:
		return sm != val
	case opSW:
		return len(val) <= len(sm) && sm[:len(val)] == val
	case opRE:
		return re.MatchString(sm)
	}
	return false
}

// Remove deletes every item whose name (byValue false) or string value
// matches (ht_rm_cell_re for opRE, ht_rm_cell_op for opSW), expired or
// not, and returns how many went.
func (t *Table) Remove(byValue bool, op int, val string, re *regexp.Regexp, who any) int {
	n := 0
	t.each(who, func(_ int, s *slot, cells []*cell) bool {
		for _, c := range cells {
			if matches(c, byValue, op, val, re) {
				delete(s.cells, c.name)
				t.sendDel(s, c.name)
				n++
			}
		}
		return true
	})
	return n
}

// Match reports whether any item matches (ht_match_cell_op_str), expired
// or not.
func (t *Table) Match(byValue bool, op int, val string, re *regexp.Regexp, who any) bool {
	found := false
	t.each(who, func(_ int, _ *slot, cells []*cell) bool {
		for _, c := range cells {
			if matches(c, byValue, op, val, re) {
				found = true
				return false
			}
		}
		return true
	})
	return found
}

// Reset removes every item (ht_reset_content).
func (t *Table) Reset(who any) {
	for i := range t.slots {
		s, locked := t.lock(uint32(i), who)
		for name := range s.cells {
			t.sendDel(s, name)
		}
		clear(s.cells)
		s.unlock(locked)
	}
}

// Sweep removes the items expired at now (ht_timer) and returns how many
// went. It does nothing in a table without autoexpire. A worker (who not
// nil) sweeping skips the slots other workers hold, as it may hold slots
// itself (sht_lock, an iterator): waiting could deadlock with a worker that
// waits for one of them, which Kamailio's separate timer process cannot.
func (t *Table) Sweep(now int64, who any) int {
	if t.AutoExpire <= 0 {
		return 0
	}
	n := 0
	for i := range t.slots {
		var s *slot
		var locked bool
		if who == nil {
			s, locked = t.lock(uint32(i), nil)
		} else if s, locked = t.tryLock(uint32(i), who); s == nil {
			continue // held by another worker: swept next time
		}
		for k, c := range s.cells {
			if c.expire != 0 && c.expire < now {
				delete(s.cells, k)
				t.sendExpire(s, c)
				n++
			}
		}
		s.unlock(locked)
	}
	return n
}

// Len counts the items, expired ones not yet swept included.
func (t *Table) Len() int {
	n := 0
	for i := range t.slots {
		s, locked := t.lock(uint32(i), nil)
		n += len(s.cells)
		s.unlock(locked)
	}
	return n
}

// SlotItems is one slot's items, for htable.dump and the database.
type SlotItems struct {
	Slot  int
	Items []Item
}

// Snapshot copies the table's items, slot by slot, in Kamailio's order.
func (t *Table) Snapshot() []SlotItems {
	var out []SlotItems
	t.each(nil, func(i int, _ *slot, cells []*cell) bool {
		si := SlotItems{Slot: i, Items: make([]Item, len(cells))}
		for k, c := range cells {
			si.Items[k] = c.item()
		}
		out = append(out, si)
		return true
	})
	return out
}

// Replace swaps the table's content for items (htable.reload), slot by
// slot, as Kamailio does.
func (t *Table) Replace(items []Item, now int64) {
	fresh := newTable(t.Spec)
	for _, it := range items {
		fresh.load(it, now)
	}
	for i := range t.slots {
		s, locked := t.lock(uint32(i), nil)
		s.cells = fresh.slots[i].cells
		s.unlock(locked)
	}
}

// load stores a database row as ht_set_cell then ht_set_cell_expire do:
// the row's expiry if it has one, else autoexpire from now.
func (t *Table) load(it Item, now int64) {
	if it.Expire == 0 && t.AutoExpire > 0 {
		it.Expire = now + int64(t.AutoExpire)
	}
	hid := hash(it.Name)
	s, locked := t.lock(hid&uint32(t.Size-1), nil)
	defer s.unlock(locked)
	c := s.cells[it.Name]
	if c == nil {
		c = &cell{name: it.Name, hid: hid}
		t.insert(s, c)
	}
	c.isStr, c.s, c.n, c.expire = it.IsStr, it.Str, it.Int, it.Expire
}

// SlotStats are htable.stats' figures: item counts per slot.
func (t *Table) SlotStats() (all, min, max int) {
	min = 1<<32 - 1
	for i := range t.slots {
		s, locked := t.lock(uint32(i), nil)
		n := len(s.cells)
		s.unlock(locked)
		all += n
		if n < min {
			min = n
		}
		if n > max {
			max = n
		}
	}
	return all, min, max
}

// LockSlot is sht_lock: it takes the slot of key for who, re-entrantly.
func (t *Table) LockSlot(key string, who any) {
	t.lockIdx(int(hash(key)&uint32(t.Size-1)), who)
}

// lockIdx takes slot i for who across calls, re-entrantly (ht_slot_lock).
func (t *Table) lockIdx(i int, who any) {
	s := &t.slots[i]
	if o := s.owner.Load(); o != nil && *o == who {
		s.depth++
		return
	}
	s.mu.Lock()
	s.owner.Store(&who)
	s.depth = 0
}

// UnlockSlot is sht_unlock. Unlike Kamailio, which releases the slot
// whoever holds it, it refuses (false) to release a slot who does not hold.
func (t *Table) UnlockSlot(key string, who any) bool {
	return t.unlockSlot(&t.slots[hash(key)&uint32(t.Size-1)], who)
}

func (t *Table) unlockSlot(s *slot, who any) bool {
	if o := s.owner.Load(); o == nil || *o != who {
		return false
	}
	if s.depth > 0 {
		s.depth--
		return true
	}
	s.owner.Store(nil)
	s.mu.Unlock()
	return true
}

// Count is ht_count_cells_re for $shtcn (byValue false) and $shtcv: expr
// is "~~re" (regular expression, also the meaning of an expression without
// a prefix), "~%s" (ends with s), "%~s" (starts with s), "==s" (equal),
// "eqN" (integer value N; names never match) or "**" (every item). Expired
// items not yet swept count, as in Kamailio.
func (t *Table) Count(byValue bool, expr string, who any) int {
	if expr == "" {
		return 0
	}
	op, val := 1, expr
	if len(expr) >= 2 {
		switch expr[:2] {
		case "~~":
			op = 1
		case "~%":
			op = 2
		case "%~":
			op = 3
		case "==":
			op = 4
		case "eq":
			op = 5
		case "**":
			return t.Len()
		default:
			op = 0
		}
		if op > 0 {
			if len(expr) <= 2 {
				return 0
			}
			val = expr[2:]
		} else {
			op = 1
		}
	}
	if op == 5 && !byValue {
		return 0
	}
	var re *regexp.Regexp
	if op == 1 {
		var err error
		if re, err = compileRE(val); err != nil {
			return 0
		}
	}
	n := 0
	ival := str2sint(val)
	t.each(who, func(_ int, _ *slot, cells []*cell) bool {
		for _, c := range cells {
			if op == 5 {
				if !c.isStr && c.n == ival {
					n++
				}
				continue
			}
			s := c.name
			if byValue {
				if !c.isStr {
					continue
				}
				s = c.s
			}
			switch {
			case op == 1 && re.MatchString(s),
				op == 2 && strings.HasSuffix(s, val),
				op == 3 && strings.HasPrefix(s, val),
				op == 4 && s == val:
				n++
			}
		}
		return true
	})
	return n
}
