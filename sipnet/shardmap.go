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
