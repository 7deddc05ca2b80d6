package sipnet

import (
	"hash/maphash"
	"sync"
)

// shardMap is a map split into 64 locked shards by key hash, so that
// lookups on the hot path do not contend on one lock. It holds the server
// transaction table and the client branch table.
type shardMap[K comparable, V comparable] struct {
	seed   maphash.Seed
	hash   func(K) string
	shards [64]mapShard[K, V]
}

type mapShard[K comparable, V comparable] struct {
	mu sync.Mutex
	m  map[K]V
}

func (t *shardMap[K, V]) init(hash func(K) string) {
	t.seed, t.hash = maphash.MakeSeed(), hash
	for i := range t.shards {
		t.shards[i].m = make(map[K]V)
	}
}

func (t *shardMap[K, V]) shard(k K) *mapShard[K, V] {
	return &t.shards[maphash.String(t.seed, t.hash(k))%uint64(len(t.shards))]
}

func (t *shardMap[K, V]) get(k K) V {
	sh := t.shard(k)
	sh.mu.Lock()
	v := sh.m[k]
	sh.mu.Unlock()
	return v
}

func (t *shardMap[K, V]) put(k K, v V) {
	sh := t.shard(k)
	sh.mu.Lock()
	sh.m[k] = v
	sh.mu.Unlock()
}

// dropIf deletes k when it maps to v.
func (t *shardMap[K, V]) dropIf(k K, v V) {
	sh := t.shard(k)
	sh.mu.Lock()
	if cur, ok := sh.m[k]; ok && cur == v {
		delete(sh.m, k)
	}
	sh.mu.Unlock()
}

// values returns the non-zero values, a snapshot.
func (t *shardMap[K, V]) values() []V {
	var zero V
	var out []V
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, v := range sh.m {
			if v != zero {
				out = append(out, v)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// len counts every entry, zero values included.
func (t *shardMap[K, V]) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// txShards is the server transaction table: transaction keys to in-flight
// markers (a nil *Tx) and transactions, in 64 locked shards. Each shard is
// an open-addressed table (linear probing, backward-shift deletion) indexed
// by the key's hash, which is computed once per operation and also picks
// the shard: claiming a key is one probe sequence (find or insert), and
// releasing it another (find and delete), where a Go map needs two map
// operations, each hashing the key again.
type txShards struct {
	seed   maphash.Seed
	shards [64]txShard
}

type txShard struct {
	mu    sync.Mutex
	slots []txSlot // a power of two long; key "" is an empty slot
	n     int
}

type txSlot struct {
	h   uint64
	key string
	tx  *Tx
}

func (t *txShards) init() {
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].slots = make([]txSlot, 8)
	}
}

// locate hashes key and returns its shard, locked; the low bits of the
// hash index the slots, the top six pick the shard.
func (t *txShards) locate(key string) (*txShard, uint64) {
	h := maphash.String(t.seed, key)
	sh := &t.shards[h>>58]
	sh.mu.Lock()
	return sh, h
}

// find returns the slot of key, or the empty slot where it would go.
func (sh *txShard) find(h uint64, key string) (int, bool) {
	mask := uint64(len(sh.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &sh.slots[i]
		if s.key == "" {
			return int(i), false
		}
		if s.h == h && s.key == key {
			return int(i), true
		}
	}
}

// insert puts key in the empty slot i found by find, growing the table
// to keep it at most half full.
func (sh *txShard) insert(i int, h uint64, key string, tx *Tx) {
	if 2*(sh.n+1) > len(sh.slots) {
		old := sh.slots
		sh.slots = make([]txSlot, 2*len(old))
		for _, s := range old {
			if s.key != "" {
				j, _ := sh.find(s.h, s.key)
				sh.slots[j] = s
			}
		}
		i, _ = sh.find(h, key)
	}
	sh.slots[i] = txSlot{h: h, key: key, tx: tx}
	sh.n++
}

// remove empties slot i and shifts back the entries of the probe sequence
// after it, so that no lookup stops early at the hole.
func (sh *txShard) remove(i int) {
	mask := len(sh.slots) - 1
	for j := (i + 1) & mask; sh.slots[j].key != ""; j = (j + 1) & mask {
		home := int(sh.slots[j].h) & mask
		// Move slot j into the hole at i unless its home lies cyclically
		// in (i, j]: then it must stay after the hole.
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			sh.slots[i] = sh.slots[j]
			i = j
		}
	}
	sh.slots[i] = txSlot{}
	sh.n--
}

// claim marks key in flight. It returns the existing transaction, or
// fresh=true when the key was unknown and is now in flight.
func (t *txShards) claim(key string) (tx *Tx, fresh bool) {
	sh, h := t.locate(key)
	i, ok := sh.find(h, key)
	if ok {
		tx = sh.slots[i].tx
	} else {
		sh.insert(i, h, key, nil)
	}
	sh.mu.Unlock()
	return tx, !ok
}

func (t *txShards) get(key string) *Tx {
	sh, h := t.locate(key)
	var tx *Tx
	if i, ok := sh.find(h, key); ok {
		tx = sh.slots[i].tx
	}
	sh.mu.Unlock()
	return tx
}

func (t *txShards) put(key string, tx *Tx) {
	sh, h := t.locate(key)
	if i, ok := sh.find(h, key); ok {
		sh.slots[i].tx = tx
	} else {
		sh.insert(i, h, key, tx)
	}
	sh.mu.Unlock()
}

// dropIf deletes key when it maps to tx (nil: an in-flight marker).
func (t *txShards) dropIf(key string, tx *Tx) {
	sh, h := t.locate(key)
	if i, ok := sh.find(h, key); ok && sh.slots[i].tx == tx {
		sh.remove(i)
	}
	sh.mu.Unlock()
}

// values returns the transactions (not the in-flight markers), a snapshot.
func (t *txShards) values() []*Tx {
	var out []*Tx
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		for _, s := range sh.slots {
			if s.key != "" && s.tx != nil {
				out = append(out, s.tx)
			}
		}
		sh.mu.Unlock()
	}
	return out
}

// len counts every entry, in-flight markers included.
func (t *txShards) len() int {
	n := 0
	for i := range t.shards {
		sh := &t.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}
