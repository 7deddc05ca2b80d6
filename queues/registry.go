package queues

import (
	"context"
	"errors"
	"fmt"
)

// Sentinel errors; test them with errors.Is, as most come wrapped with the queue name.
var (
	// ErrNoQueue is for callers that turn an unknown name (Registry.Get returning nil) into an
	// error; this package never returns it.
	ErrNoQueue = errors.New("no such queue")
	// ErrEmpty is returned by Fetch as is, unwrapped, so that the hot path does not allocate.
	ErrEmpty = errors.New("queue is empty")
	// ErrDuplicate: NewRegistry got two queues with the same name.
	ErrDuplicate = errors.New("duplicate queue name")
	// ErrNoStore: a DB mode needs a store and none was given, or a durable queue was used
	// before Registry.Load armed it.
	ErrNoStore = errors.New("no store")
	// ErrClosed: MemStore used after Close.
	ErrClosed = errors.New("store closed")
)

// Registry holds the queues of one configuration. Its name map is built by NewRegistry and
// read-only afterwards, so Get and Queues take no lock.
type Registry struct {
	byName map[string]*Queue
	list   []*Queue
}

// NewRegistry creates one queue per Options, in that order. Names compare case-sensitively and
// exactly; a repeated name is ErrDuplicate wrapped with the name.
func NewRegistry(opts ...Options) (*Registry, error) {
	r := &Registry{byName: make(map[string]*Queue, len(opts)), list: make([]*Queue, 0, len(opts))}
	for _, o := range opts {
		if err := o.validate(); err != nil {
			return nil, fmt.Errorf("queue %q: %w", o.Name, err)
		}
		if _, ok := r.byName[o.Name]; ok {
			return nil, fmt.Errorf("queue %q: %w", o.Name, ErrDuplicate)
		}
		q := newQueue(o)
		r.byName[o.Name] = q
		r.list = append(r.list, q)
	}
	return r, nil
}

// Get returns the named queue, or nil.
func (r *Registry) Get(name string) *Queue { return r.byName[name] }

// Queues returns the queues in definition order.
func (r *Registry) Queues() []*Queue { return append([]*Queue(nil), r.list...) }

// Load fills the queues from s at start, each as its DBMode says, in definition order, and
// arms the journal of durable queues. For every queue that writes later (DBMode 1, 3 and 4) it
// first proves with Store.CheckWrite that its table can be written. It stops at the first
// error. Call it once, before traffic starts; s may be nil when every queue has DBMode 0.
func (r *Registry) Load(ctx context.Context, s Store) error {
	for _, q := range r.list {
		if err := q.load(ctx, s); err != nil {
			return fmt.Errorf("load queue %q: %w", q.opts.Name, err)
		}
	}
	return nil
}

// Save writes the queues to s at stop, each as its DBMode says. It tries every queue and joins
// the errors. Call it once traffic has stopped, with a context that is not cancelled by the
// shutdown itself (context.WithoutCancel); s may be nil when no queue has DBMode 1 or 3.
func (r *Registry) Save(ctx context.Context, s Store) error {
	var errs []error
	for _, q := range r.list {
		if err := q.save(ctx, s); err != nil {
			errs = append(errs, fmt.Errorf("save queue %q: %w", q.opts.Name, err))
		}
	}
	return errors.Join(errs...)
}

func (q *Queue) load(ctx context.Context, s Store) error {
	mode := q.opts.DBMode
	if mode == DBModeNone {
		return nil
	}
	if s == nil {
		return ErrNoStore
	}
	if mode != DBModeLoadOnly {
		// Modes 1 and 3 write at the stop, 4 at every add: a store that cannot be written
		// must fail the start, not lose what was acknowledged. (Mode 2 writes only here, at
		// the start, when it deletes the rows it loaded, and fails the start if it cannot.)
		if err := s.CheckWrite(ctx, q.opts.Name); err != nil {
			return err
		}
	}
	if mode == DBModeSaveOnly {
		return nil
	}
	recs, err := s.Load(ctx, q.opts.Name)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	var gone []int64 // rows of items the add rules dropped while loading
	for _, rec := range recs {
		if !q.accepts(rec.Key) {
			gone = append(gone, rec.ID)
			continue
		}
		if e, dropped := q.push(entry{rec.Key, rec.Val, rec.ID}); dropped {
			gone = append(gone, e.id)
		}
	}
	switch mode {
	case DBModeLoadOnly:
		// Nothing saves these rows back: keeping them would deliver them again at every start.
		ids := make([]int64, len(recs))
		for i, rec := range recs {
			ids[i] = rec.ID
		}
		return s.DeleteIDs(ctx, q.opts.Name, ids)
	case DBModeDurable:
		if err := s.DeleteIDs(ctx, q.opts.Name, gone); err != nil {
			return err
		}
		q.journal = s
	}
	// DBModeLoadSave keeps its rows until Save replaces them, so a crash loses nothing.
	return nil
}

func (q *Queue) save(ctx context.Context, s Store) error {
	mode := q.opts.DBMode
	if mode != DBModeLoadSave && mode != DBModeSaveOnly {
		return nil
	}
	if s == nil {
		return ErrNoStore
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	items := q.snapshot()
	if mode == DBModeLoadSave {
		return s.Replace(ctx, q.opts.Name, items)
	}
	if err := s.Append(ctx, q.opts.Name, items); err != nil {
		return err
	}
	// As Kamailio drains the queue into the table, so a second Save cannot append them again.
	clear(q.ring)
	clear(q.index)
	q.head, q.n = 0, 0
	return nil
}
