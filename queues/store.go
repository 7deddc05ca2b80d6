package queues

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// Store persists queues, one table per queue named after it. Implementations are safe for
// concurrent use. Rows have an id that grows with insertion order; Load returns them in id
// order. Deleting an id that is not in the table is not an error. A store may fold the case of
// queue names (SQLite folds ASCII case in table names); SQLStore then reports an error for the
// second of two names that differ only in case.
type Store interface {
	// Load returns the rows of the queue's table, ordered by id; none if there is no table.
	Load(ctx context.Context, queue string) ([]Record, error)
	// Replace deletes every row and inserts items in order, in one transaction.
	Replace(ctx context.Context, queue string, items []Item) error
	// Append inserts items in order without deleting anything.
	Append(ctx context.Context, queue string, items []Item) error
	// DeleteIDs deletes the rows with these ids.
	DeleteIDs(ctx context.Context, queue string, ids []int64) error
	// Insert inserts one row and returns its id (durable mode).
	Insert(ctx context.Context, queue string, it Item) (int64, error)
	// Delete deletes one row (durable mode).
	Delete(ctx context.Context, queue string, id int64) error
	// CheckWrite proves that the queue's table can be written now, creating it if missing: a
	// write that is undone, taking the same locks and permissions as a real one. Registry.Load
	// calls it for every queue that writes later, so that a store that cannot be written fails
	// the start instead of losing acknowledged items at the stop.
	CheckWrite(ctx context.Context, queue string) error
	// Close releases the store.
	Close() error
}

// Record is a stored item with its row id.
type Record struct {
	ID int64
	Item
}

var (
	_ Store = (*MemStore)(nil)
	_ Store = (*SQLStore)(nil)
)

// MemStore is an in-memory Store, for tests and `kemi test`: it outlives a Registry, so a new
// Registry loading from the same MemStore simulates a restart. Safe for concurrent use.
type MemStore struct {
	mu     sync.Mutex
	tables map[string]*memTable
	closed bool
}

type memTable struct {
	lastID int64
	recs   []Record // ascending ID
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{tables: map[string]*memTable{}} }

// do runs fn on the queue's table, creating it, with m.mu held.
func (m *MemStore) do(ctx context.Context, queue string, fn func(*memTable)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t := m.tables[queue]
	if t == nil {
		t = &memTable{}
		m.tables[queue] = t
	}
	fn(t)
	return nil
}

func (t *memTable) insert(items ...Item) int64 {
	for _, it := range items {
		t.lastID++
		t.recs = append(t.recs, Record{t.lastID, it})
	}
	return t.lastID
}

// Load implements Store.
func (m *MemStore) Load(ctx context.Context, queue string) (recs []Record, err error) {
	err = m.do(ctx, queue, func(t *memTable) { recs = slices.Clone(t.recs) })
	return recs, err
}

// Replace implements Store.
func (m *MemStore) Replace(ctx context.Context, queue string, items []Item) error {
	return m.do(ctx, queue, func(t *memTable) {
		t.recs = t.recs[:0]
		t.insert(items...)
	})
}

// Append implements Store.
func (m *MemStore) Append(ctx context.Context, queue string, items []Item) error {
	return m.do(ctx, queue, func(t *memTable) { t.insert(items...) })
}

// DeleteIDs implements Store.
func (m *MemStore) DeleteIDs(ctx context.Context, queue string, ids []int64) error {
	return m.do(ctx, queue, func(t *memTable) {
		for _, id := range ids {
			t.delete(id)
		}
	})
}

// Insert implements Store.
func (m *MemStore) Insert(ctx context.Context, queue string, it Item) (id int64, err error) {
	err = m.do(ctx, queue, func(t *memTable) { id = t.insert(it) })
	return id, err
}

// Delete implements Store.
func (m *MemStore) Delete(ctx context.Context, queue string, id int64) error {
	return m.do(ctx, queue, func(t *memTable) { t.delete(id) })
}

func (t *memTable) delete(id int64) {
	if i, ok := slices.BinarySearchFunc(t.recs, id, func(r Record, id int64) int {
		return cmp.Compare(r.ID, id)
	}); ok {
		t.recs = slices.Delete(t.recs, i, i+1)
	}
}

// CheckWrite implements Store; it fails only after Close or with a done context.
func (m *MemStore) CheckWrite(ctx context.Context, queue string) error {
	return m.do(ctx, queue, func(*memTable) {})
}

// Close implements Store; later calls fail with ErrClosed.
func (m *MemStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
