package queues

import (
	"context"
	"fmt"
	"sync"
)

// Item is one queued key/value pair.
type Item struct{ Key, Val string }

// entry is a ring slot: the item and, for a durable queue, the id of its row.
type entry struct {
	key, val string
	id       int64
}

const (
	minRing = 16
	// maxPrealloc caps the slots allocated up front for a bounded queue, so that a huge size
	// (Kamailio accepts any int) does not reserve gigabytes at start. Queues up to this size are
	// fully preallocated; larger ones grow by doubling up to Size.
	maxPrealloc = 1 << 16
)

// Queue is a named FIFO with Kamailio mqueue semantics: one mutex and a ring buffer.
// Its methods are safe for concurrent use.
type Queue struct {
	opts Options

	mu    sync.Mutex
	ring  []entry
	head  int            // index of the oldest item in ring
	n     int            // number of items
	index map[string]int // key -> items queued with it; nil when AddMode is AddModeAppend
	// journal is the store of a durable queue (DBModeDurable), set by Registry.Load before
	// traffic starts; nil otherwise, so Add and Fetch never touch a store for other modes.
	journal Store
	// remote is the JetStream stream of a durable queue when Registry.Connect chose NATS; set
	// before traffic starts, nil otherwise. Add, Fetch, Len and Snapshot go to it.
	remote *jsQueue
}

func newQueue(o Options) *Queue {
	q := &Queue{opts: o}
	c := minRing
	if o.Size > 0 {
		c = min(o.Size, maxPrealloc)
	}
	q.ring = make([]entry, c)
	if o.AddMode != AddModeAppend {
		q.index = make(map[string]int, c)
	}
	return q
}

// Name returns the queue name.
func (q *Queue) Name() string { return q.opts.Name }

// Options returns the options the queue was defined with.
func (q *Queue) Options() Options { return q.opts }

// Add queues key/val with Kamailio's mq_item_add rule: the addmode rule, then append at the
// tail, then, when Size > 0 and the count exceeds Size, drop exactly one item from the head.
// Adding a key that is already queued under AddModeKeepOldest adds nothing and returns nil.
//
// A durable queue first inserts the row and appends only if that succeeded; the error is
// returned and nothing is added otherwise (ErrNoStore before Registry.Load has run).
// Rows of items dropped by the add are then deleted; a failed delete there leaves the row in
// the table (delivered again after a restart, never lost) and does not fail the add.
func (q *Queue) Add(key, val string) error {
	if q.remote != nil {
		return q.remote.add(key, val)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.accepts(key) {
		return nil
	}
	e := entry{key: key, val: val}
	if q.opts.DBMode == DBModeDurable {
		if q.journal == nil {
			return fmt.Errorf("add to queue %q: %w", q.opts.Name, ErrNoStore)
		}
		id, err := q.journal.Insert(context.Background(), q.opts.Name, Item{key, val})
		if err != nil {
			return fmt.Errorf("add to queue %q: %w", q.opts.Name, err)
		}
		e.id = id
	}
	if gone, dropped := q.push(e); dropped && q.journal != nil {
		_ = q.journal.Delete(context.Background(), q.opts.Name, gone.id) // see the doc comment
	}
	return nil
}

// Fetch removes and returns the oldest item, or ErrEmpty. A durable queue deletes the item's
// row first; if that fails, the item stays at the head and the error is returned.
func (q *Queue) Fetch() (Item, error) {
	if q.remote != nil {
		return q.remote.fetch()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return Item{}, ErrEmpty
	}
	if q.journal != nil {
		if err := q.journal.Delete(context.Background(), q.opts.Name, q.ring[q.head].id); err != nil {
			return Item{}, fmt.Errorf("fetch from queue %q: %w", q.opts.Name, err)
		}
	}
	e := q.remove(0)
	return Item{e.key, e.val}, nil
}

// Len returns the number of queued items; -1 when a JetStream queue's size cannot be read
// (Size gives the error).
func (q *Queue) Len() int {
	if q.remote != nil {
		n, err := q.remote.size()
		if err != nil {
			return -1
		}
		return n
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Snapshot returns a copy of the queued items, oldest first.
func (q *Queue) Snapshot() []Item {
	if q.remote != nil {
		items, _ := q.remote.snapshot()
		return items
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.snapshot()
}

func (q *Queue) snapshot() []Item {
	items := make([]Item, q.n)
	for i := range items {
		e := q.at(i)
		items[i] = Item{e.key, e.val}
	}
	return items
}

// accepts applies AddModeKeepOldest: false when key is already queued. q.mu is held.
func (q *Queue) accepts(key string) bool {
	return q.opts.AddMode != AddModeKeepOldest || q.index[key] == 0
}

// push appends e after the keep-newest rule and enforces Size; q.mu is held and accepts(e.key)
// is true. It returns the entry that left the queue, if any: at most one, because a keep-newest
// replacement frees the slot that eviction would otherwise free.
//
// Kamailio appends, then drops the head when count > Size. Dropping the head first when the
// queue is full gives the same content (the head is never the new item, since Size >= 1) and
// lets a bounded ring hold exactly Size slots.
func (q *Queue) push(e entry) (gone entry, dropped bool) {
	if q.opts.AddMode == AddModeKeepNewest && q.index[e.key] > 0 {
		gone, dropped = q.remove(q.find(e.key)), true
	}
	if q.opts.Size > 0 && q.n >= q.opts.Size {
		gone, dropped = q.remove(0), true
	}
	if q.n == len(q.ring) {
		q.grow()
	}
	*q.at(q.n) = e
	q.n++
	if q.index != nil {
		q.index[e.key]++
	}
	return gone, dropped
}

// at returns the slot of the i-th item from the head, 0 <= i < len(q.ring).
func (q *Queue) at(i int) *entry {
	j := q.head + i
	if j >= len(q.ring) {
		j -= len(q.ring)
	}
	return &q.ring[j]
}

// find returns the position of the first (oldest) item with key; the key is queued.
func (q *Queue) find(key string) int {
	for i := range q.n {
		if q.at(i).key == key {
			return i
		}
	}
	panic("queues: index out of sync with ring") // unreachable while index is maintained
}

// remove takes out the i-th item from the head, moving the shorter side of the ring over it.
func (q *Queue) remove(i int) entry {
	e := *q.at(i)
	if i < q.n/2 {
		for j := i; j > 0; j-- {
			*q.at(j) = *q.at(j - 1)
		}
		*q.at(0) = entry{} // release the strings
		q.head++
		if q.head == len(q.ring) {
			q.head = 0
		}
	} else {
		for j := i; j < q.n-1; j++ {
			*q.at(j) = *q.at(j + 1)
		}
		*q.at(q.n - 1) = entry{}
	}
	q.n--
	if q.index != nil {
		if c := q.index[e.key] - 1; c > 0 {
			q.index[e.key] = c
		} else {
			delete(q.index, e.key)
		}
	}
	return e
}

// grow doubles the ring (up to Size for a bounded queue) and unwraps it.
func (q *Queue) grow() {
	c := 2 * len(q.ring)
	if q.opts.Size > 0 {
		c = min(c, q.opts.Size)
	}
	ring := make([]entry, c)
	k := copy(ring, q.ring[q.head:])
	copy(ring[k:], q.ring[:q.head])
	q.ring, q.head = ring, 0
}
