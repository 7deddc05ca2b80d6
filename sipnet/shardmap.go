package sipnet

import (
	"hash/maphash"
	"sync"
)

// openTable is a hash table split into 64 locked shards, so that lookups on
// the hot path do not contend on one lock. Each shard is an open-addressed
// table (linear probing, backward-shift deletion) indexed by the key's
// hash, which is computed once per operation and also picks the shard:
// claiming a key is one probe sequence (find or insert), and releasing it
// another (find and delete), where a Go map needs two map operations, each
// hashing the key again. The zero key marks an empty slot and is never
// stored. It holds the server transaction table (txShards) and the client
// branch table (branchTable).
type openTable[K comparable, V comparable] struct {
	seed   maphash.Seed
	hash   func(maphash.Seed, K) uint64
	shards [64]openShard[K, V]
}

type openShard[K comparable, V comparable] struct {
	mu    sync.Mutex
	slots []openSlot[K, V] // a power of two long
	n     int
}

type openSlot[K comparable, V comparable] struct {
	h   uint64
	key K
	v   V
}

func (t *openTable[K, V]) init(hash func(maphash.Seed, K) uint64) {
	t.seed, t.hash = maphash.MakeSeed(), hash
	for i := range t.shards {
		t.shards[i].slots = make([]openSlot[K, V], 8)
	}
}

// locate hashes key and returns its shard, locked; the low bits of the
// hash index the slots, the top six pick the shard.
func (t *openTable[K, V]) locate(key K) (*openShard[K, V], uint64) {
	h := t.hash(t.seed, key)
	sh := &t.shards[h>>58]
	sh.mu.Lock()
	return sh, h
}

// find returns the slot of key, or the empty slot where it would go.
func (sh *openShard[K, V]) find(h uint64, key K) (int, bool) {
	var zero K
	mask := uint64(len(sh.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &sh.slots[i]
		if s.key == zero {
			return int(i), false
		}
		if s.h == h && s.key == key {
			return int(i), true
		}
	}
}

// insert puts key in the empty slot i found by find, growing the table
// to keep it at most half full.
func (sh *openShard[K, V]) insert(i int, h uint64, key K, v V) {
	if 2*(sh.n+1) > len(sh.slots) {
		var zero K
		old := sh.slots
		sh.slots = make([]openSlot[K, V], 2*len(old))
		for _, s := range old {
			if s.key != zero {
				j, _ := sh.find(s.h, s.key)
				sh.slots[j] = s
			}
		}
		i, _ = sh.find(h, key)
	}
	sh.slots[i] = openSlot[K, V]{h: h, key: key, v: v}
	sh.n++
}

// remove empties slot i and shifts back the entries of the probe sequence
// after it, so that no lookup stops early at the hole.
func (sh *openShard[K, V]) remove(i int) {
	var zero K
	mask := len(sh.slots) - 1
	for j := (i + 1) & mask; sh.slots[j].key != zero; j = (j + 1) & mask {
		home := int(sh.slots[j].h) & mask
		// Move slot j into the hole at i unless its home lies cyclically
		// in (i, j]: then it must stay after the hole.
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			sh.slots[i] = sh.slots[j]
			i = j
		}
	}
	sh.slots[i] = openSlot[K, V]{}
	sh.n--
}

// claim puts key with the zero value unless it is there. It returns the
// value key had, and fresh=true when key was unknown and is now there.
func (t *openTable[K, V]) claim(key K) (v V, fresh bool) {
	sh, h := t.locate(key)
	i, ok := sh.find(h, key)
	if ok {
		v = sh.slots[i].v
	} else {
		sh.insert(i, h, key, v)
	}
	sh.mu.Unlock()
	return v, !ok
}

func (t *openTable[K, V]) get(key K) V {
	sh, h := t.locate(key)
	var v V
	if i, ok := sh.find(h, key); ok {
		v = sh.slots[i].v
	}
	sh.mu.Unlock()
	return v
}

func (t *openTable[K, V]) put(key K, v V) {
	sh, h := t.locate(key)
	if i, ok := sh.find(h, key); ok {
		sh.slots[i].v = v
	} else {
		sh.insert(i, h, key, v)
	}
	sh.mu.Unlock()
}

// dropIf deletes key when it maps to v.
func (t *openTable[K, V]) dropIf(key K, v V) {
	sh, h := t.locate(key)
	if i, ok := sh.find(h, key); ok && sh.slots[i].v == v {
		sh.remove(i)
	}
	sh.mu.Unlock()
}

// values returns the non-zero values, a snapshot.
func (t *openTable[K, V]) values() []V {
	var zeroK K
	var zeroV V
	var out []V
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, s := range sh.slots {
			if s.key != zeroK && s.v != zeroV {
				out = append(out, s.v)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// len counts every entry, zero values included.
func (t *openTable[K, V]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// txShards is the server transaction table: transaction keys to in-flight
// markers (a nil *Tx) and transactions.
type txShards struct{ openTable[string, *Tx] }

func (t *txShards) init() { t.openTable.init(maphash.String) }
