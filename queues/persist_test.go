package queues_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"kemi/queues"
)

// node is one run of the engine: a registry loaded from a store on path.
type node struct {
	t     *testing.T
	path  string
	store *queues.SQLStore
	reg   *queues.Registry
}

// start simulates an engine start: open the store, build the registry, Load.
func start(t *testing.T, path string, opts ...queues.Options) *node {
	t.Helper()
	n := &node{t: t, path: path, store: openSQLite(t, path)}
	var err error
	if n.reg, err = queues.NewRegistry(opts...); err != nil {
		t.Fatal(err)
	}
	if err := n.reg.Load(t.Context(), n.store); err != nil {
		t.Fatal(err)
	}
	return n
}

// stop simulates a graceful stop: Save, then close the store.
func (n *node) stop() {
	n.t.Helper()
	if err := n.reg.Save(context.WithoutCancel(n.t.Context()), n.store); err != nil {
		n.t.Fatal(err)
	}
	n.crash()
}

// crash drops the registry without saving; only what is in the file survives.
func (n *node) crash() {
	n.t.Helper()
	if err := n.store.Close(); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) q(name string) *queues.Queue { return n.reg.Get(name) }

func (n *node) add(name string, its []queues.Item) {
	n.t.Helper()
	for _, it := range its {
		if err := n.q(name).Add(it.Key, it.Val); err != nil {
			n.t.Fatal(err)
		}
	}
}

func (n *node) fetch(name string, count int) []queues.Item {
	n.t.Helper()
	var out []queues.Item
	for range count {
		it, err := n.q(name).Fetch()
		if err != nil {
			n.t.Fatal(err)
		}
		out = append(out, it)
	}
	return out
}

func (n *node) wantQueue(name string, want []queues.Item) {
	n.t.Helper()
	if got := n.q(name).Snapshot(); !slices.Equal(got, want) {
		n.t.Fatalf("queue %q holds %v, want %v", name, got, want)
	}
}

// wantTable reads the table with database/sql, bypassing queues.
func wantTable(t *testing.T, path, table string, want []queues.Item) {
	t.Helper()
	rows, err := rawDB(t, path).Query(`SELECT key, val FROM "` + table + `" ORDER BY rowid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []queues.Item
	for rows.Next() {
		var it queues.Item
		if err := rows.Scan(&it.Key, &it.Val); err != nil {
			t.Fatal(err)
		}
		got = append(got, it)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("table %q holds %v, want %v", table, got, want)
	}
}

// seq returns n items k0=v0 ... starting at from.
func seq(from, n int) []queues.Item {
	out := make([]queues.Item, n)
	for i := range out {
		out[i] = queues.Item{Key: fmt.Sprint("k", from+i), Val: fmt.Sprint("v", from+i)}
	}
	return out
}

// seedTable writes rows into a table the way another producer would, before the engine starts.
func seedTable(t *testing.T, path, table string, rows []queues.Item) {
	t.Helper()
	s, err := queues.OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Append(t.Context(), table, rows); err != nil {
		t.Fatal(err)
	}
}

func cat(parts ...[]queues.Item) []queues.Item { return slices.Concat(parts...) }

func dbPath(t *testing.T) string { return filepath.Join(t.TempDir(), "kemi.db") }

func TestDBModeLoadSave(t *testing.T) {
	path := dbPath(t)
	o := queues.Options{Name: "q", DBMode: queues.DBModeLoadSave}

	n := start(t, path, o)
	n.add("q", seq(0, 3))
	n.stop()
	wantTable(t, path, "q", seq(0, 3))

	n = start(t, path, o)
	n.wantQueue("q", seq(0, 3))
	wantTable(t, path, "q", seq(0, 3)) // kept after load
	n.fetch("q", 1)
	n.add("q", seq(3, 1))
	n.crash()
	wantTable(t, path, "q", seq(0, 3)) // what was loaded, never less

	n = start(t, path, o)
	n.wantQueue("q", seq(0, 3))
	n.fetch("q", 1)
	n.add("q", seq(3, 2))
	n.stop()
	wantTable(t, path, "q", seq(1, 4)) // exactly the content, in order

	n = start(t, path, o)
	n.wantQueue("q", seq(1, 4))
	n.fetch("q", 4)
	n.stop()
	wantTable(t, path, "q", nil)
}

// TestLoadAppliesAddRules: rows go through the normal add path.
func TestLoadAppliesAddRules(t *testing.T) {
	rows := []queues.Item{{Key: "a", Val: "1"}, {Key: "b", Val: "1"}, {Key: "a", Val: "2"}, {Key: "c", Val: "1"}, {Key: "d", Val: "1"}}
	tests := []struct {
		opts queues.Options
		want []queues.Item
	}{
		{queues.Options{Size: 2}, rows[3:]},
		{queues.Options{AddMode: queues.AddModeKeepOldest}, []queues.Item{rows[0], rows[1], rows[3], rows[4]}},
		{queues.Options{AddMode: queues.AddModeKeepNewest}, rows[1:]},
		{queues.Options{AddMode: queues.AddModeKeepNewest, Size: 3}, rows[2:]},
	}
	for _, tt := range tests {
		for _, mode := range []int{queues.DBModeLoadSave, queues.DBModeLoadOnly, queues.DBModeDurable} {
			o := tt.opts
			o.Name, o.DBMode = "q", mode
			t.Run(fmt.Sprintf("%+v", o), func(t *testing.T) {
				path := dbPath(t)
				seedTable(t, path, "q", rows)
				n := start(t, path, o)
				n.wantQueue("q", tt.want)
				switch mode {
				case queues.DBModeLoadSave:
					wantTable(t, path, "q", rows) // untouched until Save
				case queues.DBModeLoadOnly:
					wantTable(t, path, "q", nil)
				case queues.DBModeDurable:
					wantTable(t, path, "q", tt.want) // rows of dropped items deleted
				}
			})
		}
	}
}

func TestDBModeLoadOnly(t *testing.T) {
	path := dbPath(t)
	o := queues.Options{Name: "q", DBMode: queues.DBModeLoadOnly}
	seedTable(t, path, "q", seq(0, 3))

	n := start(t, path, o)
	n.wantQueue("q", seq(0, 3))
	wantTable(t, path, "q", nil) // loaded rows deleted
	n.add("q", seq(3, 2))
	n.stop()
	wantTable(t, path, "q", nil) // no save

	n = start(t, path, o)
	n.wantQueue("q", nil)
}

// TestDBModeLoadOnlyDeletesOnlyLoadedRows: a row written between the read and the delete stays.
func TestDBModeLoadOnlyDeletesOnlyLoadedRows(t *testing.T) {
	mem := queues.NewMemStore()
	if err := mem.Append(t.Context(), "q", seq(0, 2)); err != nil {
		t.Fatal(err)
	}
	s := &hookStore{Store: mem, afterLoad: func() {
		_, _ = mem.Insert(context.Background(), "q", queues.Item{Key: "late"})
	}}
	r, err := queues.NewRegistry(queues.Options{Name: "q", DBMode: queues.DBModeLoadOnly})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Load(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if got := r.Get("q").Snapshot(); !slices.Equal(got, seq(0, 2)) {
		t.Fatalf("queue %v", got)
	}
	recs, _ := mem.Load(t.Context(), "q")
	if len(recs) != 1 || recs[0].Key != "late" {
		t.Fatalf("table %v, want only the late row", recs)
	}
}

func TestDBModeSaveOnly(t *testing.T) {
	path := dbPath(t)
	o := queues.Options{Name: "q", DBMode: queues.DBModeSaveOnly}
	seedTable(t, path, "q", seq(100, 1))

	n := start(t, path, o)
	n.wantQueue("q", nil) // no load
	n.add("q", seq(0, 2))
	if err := n.reg.Save(t.Context(), n.store); err != nil {
		t.Fatal(err)
	}
	n.wantQueue("q", nil) // drained
	n.stop()              // a second Save adds nothing
	wantTable(t, path, "q", cat(seq(100, 1), seq(0, 2)))

	n = start(t, path, o)
	n.wantQueue("q", nil)
	n.add("q", seq(2, 1))
	n.stop()
	wantTable(t, path, "q", cat(seq(100, 1), seq(0, 3))) // accumulates
}

func TestDBModeDurable(t *testing.T) {
	const total, fetched = 50, 20
	path := dbPath(t)
	o := queues.Options{Name: "q", DBMode: queues.DBModeDurable}

	n := start(t, path, o)
	n.add("q", seq(0, total))
	n.crash()
	wantTable(t, path, "q", seq(0, total))

	n = start(t, path, o)
	n.wantQueue("q", seq(0, total))
	if got := n.fetch("q", fetched); !slices.Equal(got, seq(0, fetched)) {
		t.Fatalf("fetched %v", got)
	}
	n.crash()
	wantTable(t, path, "q", seq(fetched, total-fetched))

	n = start(t, path, o)
	n.wantQueue("q", seq(fetched, total-fetched))
	n.add("q", seq(total, 1))
	n.stop() // Save writes nothing extra
	wantTable(t, path, "q", seq(fetched, total-fetched+1))

	n = start(t, path, o)
	n.wantQueue("q", seq(fetched, total-fetched+1))
}

func TestDBModeDurableDrops(t *testing.T) {
	tests := []struct {
		name string
		opts queues.Options
		add  []queues.Item
		want []queues.Item
	}{
		{"size eviction", queues.Options{Size: 10}, seq(0, 15), seq(5, 10)},
		{"keep newest", queues.Options{AddMode: queues.AddModeKeepNewest},
			[]queues.Item{{Key: "a", Val: "1"}, {Key: "b", Val: "1"}, {Key: "a", Val: "2"}},
			[]queues.Item{{Key: "b", Val: "1"}, {Key: "a", Val: "2"}}},
		{"keep oldest", queues.Options{AddMode: queues.AddModeKeepOldest},
			[]queues.Item{{Key: "a", Val: "1"}, {Key: "a", Val: "2"}},
			[]queues.Item{{Key: "a", Val: "1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := dbPath(t)
			o := tt.opts
			o.Name, o.DBMode = "q", queues.DBModeDurable
			n := start(t, path, o)
			n.add("q", tt.add)
			n.wantQueue("q", tt.want)
			n.crash()
			wantTable(t, path, "q", tt.want)
			n = start(t, path, o)
			n.wantQueue("q", tt.want)
		})
	}
}

// TestKamailioTable reads a table laid out and filled as Kamailio's sqlite3 setup does.
func TestKamailioTable(t *testing.T) {
	for _, mode := range []int{queues.DBModeLoadSave, queues.DBModeLoadOnly, queues.DBModeDurable} {
		t.Run(fmt.Sprint("dbmode=", mode), func(t *testing.T) {
			path := dbPath(t)
			rawDB(t, path,
				`CREATE TABLE q (id INTEGER PRIMARY KEY AUTOINCREMENT, key VARCHAR(64) NOT NULL DEFAULT '', val VARCHAR(4096) NOT NULL DEFAULT '')`,
				`INSERT INTO q (id, key, val) VALUES (7, 'second', 'b')`,
				`INSERT INTO q (id, key, val) VALUES (3, 'first', 'a')`,
				`INSERT INTO q (key, val) VALUES ('third', 'c')`,
			)
			want := []queues.Item{{Key: "first", Val: "a"}, {Key: "second", Val: "b"}, {Key: "third", Val: "c"}}
			n := start(t, path, queues.Options{Name: "q", DBMode: mode})
			n.wantQueue("q", want)
			if mode == queues.DBModeDurable {
				n.fetch("q", 1)
				n.add("q", seq(0, 1))
				n.crash()
				n = start(t, path, queues.Options{Name: "q", DBMode: mode})
				n.wantQueue("q", cat(want[1:], seq(0, 1)))
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	path := dbPath(t)
	rawDB(t, path,
		`CREATE TABLE bad (id INTEGER PRIMARY KEY, key TEXT, val TEXT)`,
		`INSERT INTO bad VALUES (1, 'k', 'v')`,
		`INSERT INTO bad VALUES (2, NULL, 'v')`,
	)
	s := openSQLite(t, path)
	r, err := queues.NewRegistry(
		queues.Options{Name: "bad", DBMode: queues.DBModeLoadSave},
		queues.Options{Name: "after", DBMode: queues.DBModeDurable},
	)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Load(t.Context(), s)
	if err == nil || err.Error() != `load queue "bad": row 2: key or val is NULL` {
		t.Fatalf("Load: %v", err)
	}
	// Load stopped there: the durable queue after it is not armed.
	if err := r.Get("after").Add("k", "v"); !errors.Is(err, queues.ErrNoStore) {
		t.Fatalf("Add to an unloaded durable queue: %v, want ErrNoStore", err)
	}

	// A database error.
	_ = s.Close()
	r, _ = queues.NewRegistry(queues.Options{Name: "q", DBMode: queues.DBModeLoadOnly})
	err = r.Load(t.Context(), s)
	if err == nil || !strings.HasPrefix(err.Error(), `load queue "q": `) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Load from a closed store: %v", err)
	}
}

// TestUnwritableStoreFailsLoad: a database that can be read but not written makes Load fail for
// every queue that writes later (dbmodes 1, 3 and 4), naming the file, before anything is
// acknowledged that the stop or the durable add could not save. Mode 2 writes only when it has
// loaded rows to delete; with an empty table it loads nothing and writes nothing.
// "file:...?mode=ro" opens the file read-only, which holds for root too (file permissions do
// not).
func TestUnwritableStoreFailsLoad(t *testing.T) {
	path := dbPath(t)
	seed := openSQLite(t, path)
	for _, q := range []string{"m1", "m2", "m3", "m4", "m2rows"} {
		if err := seed.CheckWrite(t.Context(), q); err != nil { // creates the tables
			t.Fatal(err)
		}
	}
	if err := seed.Append(t.Context(), "m2rows", seq(0, 2)); err != nil {
		t.Fatal(err)
	}
	seed.Close()
	ro := openSQLite(t, "file:"+path+"?mode=ro")
	for _, c := range []struct {
		queue string
		mode  int
		fails bool
	}{
		{"m0", queues.DBModeNone, false},
		{"m1", queues.DBModeLoadSave, true},
		{"m2", queues.DBModeLoadOnly, false},
		{"m2rows", queues.DBModeLoadOnly, true},
		{"m3", queues.DBModeSaveOnly, true},
		{"m4", queues.DBModeDurable, true},
	} {
		r, err := queues.NewRegistry(queues.Options{Name: c.queue, DBMode: c.mode})
		if err != nil {
			t.Fatal(err)
		}
		err = r.Load(t.Context(), ro)
		if (err != nil) != c.fails {
			t.Errorf("dbmode %d: Load = %v, want an error: %v", c.mode, err, c.fails)
			continue
		}
		if c.mode != queues.DBModeLoadOnly && err != nil {
			want := fmt.Sprintf(`load queue %q: sqlite "file:%s?mode=ro" is not writable: `, c.queue, path)
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "readonly database") {
				t.Errorf("dbmode %d: Load = %v, want %s...readonly database", c.mode, err, want)
			}
		}
	}
}

// TestCheckWriteRefusedInsert: a table kemi cannot insert into (a NOT NULL column without a
// default, as a hand-made table may have) fails CheckWrite, and so the start, rather than
// every add or the save at the stop.
func TestCheckWriteRefusedInsert(t *testing.T) {
	path := dbPath(t)
	rawDB(t, path, `CREATE TABLE q (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL DEFAULT '', val TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL)`)
	r, _ := queues.NewRegistry(queues.Options{Name: "q", DBMode: queues.DBModeLoadSave})
	err := r.Load(t.Context(), openSQLite(t, path))
	if err == nil || !strings.Contains(err.Error(), "is not writable: insert row: NOT NULL constraint failed: q.owner") {
		t.Fatalf("Load: %v", err)
	}
}

// TestCheckWriteKeepsSequence: the rolled-back probe leaves SQLite's AUTOINCREMENT sequence
// where it was.
func TestCheckWriteKeepsSequence(t *testing.T) {
	s := openSQLite(t, dbPath(t))
	a, err := s.Insert(t.Context(), "q", queues.Item{Key: "a"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := s.CheckWrite(t.Context(), "q"); err != nil {
			t.Fatal(err)
		}
	}
	b, err := s.Insert(t.Context(), "q", queues.Item{Key: "b"})
	if err != nil || b != a+1 {
		t.Fatalf("ids %d then %d (%v), want consecutive", a, b, err)
	}
}

func TestNilStore(t *testing.T) {
	ctx := t.Context()
	for mode, want := range map[int][2]bool{ // mode: Load fails, Save fails
		queues.DBModeNone:     {false, false},
		queues.DBModeLoadSave: {true, true},
		queues.DBModeLoadOnly: {true, false},
		queues.DBModeSaveOnly: {true, true}, // Load proves the store can be written
		queues.DBModeDurable:  {true, false},
	} {
		r, _ := queues.NewRegistry(queues.Options{Name: "q", DBMode: mode})
		if err := r.Load(ctx, nil); (err != nil) != want[0] || (err != nil && !errors.Is(err, queues.ErrNoStore)) {
			t.Errorf("dbmode %d: Load(nil) = %v", mode, err)
		}
		if err := r.Save(ctx, nil); (err != nil) != want[1] || (err != nil && !errors.Is(err, queues.ErrNoStore)) {
			t.Errorf("dbmode %d: Save(nil) = %v", mode, err)
		}
	}
}

func TestSaveTriesEveryQueue(t *testing.T) {
	s := queues.NewMemStore()
	r, _ := queues.NewRegistry(
		queues.Options{Name: "one", DBMode: queues.DBModeLoadSave},
		queues.Options{Name: "two", DBMode: queues.DBModeSaveOnly},
	)
	_ = s.Close()
	err := r.Save(t.Context(), s)
	for _, want := range []string{`save queue "one": store closed`, `save queue "two": store closed`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Save: %v, want %q", err, want)
		}
	}
	if !errors.Is(err, queues.ErrClosed) {
		t.Errorf("Save: %v is not ErrClosed", err)
	}
}

// hookStore wraps a Store to count journal calls and inject failures.
type hookStore struct {
	queues.Store
	afterLoad func()

	mu                     sync.Mutex
	failInsert, failDelete bool
	inserts, deletes       int
}

var errInjected = errors.New("injected")

func (h *hookStore) Load(ctx context.Context, q string) ([]queues.Record, error) {
	recs, err := h.Store.Load(ctx, q)
	if h.afterLoad != nil {
		h.afterLoad()
	}
	return recs, err
}

func (h *hookStore) Insert(ctx context.Context, q string, it queues.Item) (int64, error) {
	h.mu.Lock()
	h.inserts++
	fail := h.failInsert
	h.mu.Unlock()
	if fail {
		return 0, errInjected
	}
	return h.Store.Insert(ctx, q, it)
}

func (h *hookStore) Delete(ctx context.Context, q string, id int64) error {
	h.mu.Lock()
	h.deletes++
	fail := h.failDelete
	h.mu.Unlock()
	if fail {
		return errInjected
	}
	return h.Store.Delete(ctx, q, id)
}

func (h *hookStore) set(failInsert, failDelete bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failInsert, h.failDelete = failInsert, failDelete
}

func TestDurableStoreFailures(t *testing.T) {
	ctx := t.Context()
	mem := queues.NewMemStore()
	h := &hookStore{Store: mem}
	o := queues.Options{Name: "q", Size: 2, DBMode: queues.DBModeDurable}
	r, _ := queues.NewRegistry(o)
	if err := r.Load(ctx, h); err != nil {
		t.Fatal(err)
	}
	q := r.Get("q")
	table := func() []queues.Item {
		recs, err := mem.Load(ctx, "q")
		if err != nil {
			t.Fatal(err)
		}
		return itemsOf(recs)
	}

	// A failed insert adds nothing.
	h.set(true, false)
	if err := q.Add("a", "1"); !errors.Is(err, errInjected) || !strings.HasPrefix(err.Error(), `add to queue "q": `) {
		t.Fatalf("Add with a failing insert: %v", err)
	}
	if q.Len() != 0 || len(table()) != 0 {
		t.Fatalf("failed Add left %v in the queue, %v in the table", q.Snapshot(), table())
	}

	// A failed delete on Fetch keeps the item at the head.
	h.set(false, false)
	for _, k := range []string{"a", "b"} {
		if err := q.Add(k, "1"); err != nil {
			t.Fatal(err)
		}
	}
	h.set(false, true)
	if it, err := q.Fetch(); !errors.Is(err, errInjected) || it != (queues.Item{}) {
		t.Fatalf("Fetch with a failing delete: %v, %v", it, err)
	}
	if got := q.Snapshot(); !slices.Equal(got, items2("a", "b")) {
		t.Fatalf("queue %v after failed Fetch", got)
	}

	// A failed delete of an evicted item does not fail the Add; the row stays.
	if err := q.Add("c", "1"); err != nil {
		t.Fatalf("Add evicting with a failing delete: %v", err)
	}
	if got := q.Snapshot(); !slices.Equal(got, items2("b", "c")) {
		t.Fatalf("queue %v", got)
	}
	if got := table(); !slices.Equal(got, items2("a", "b", "c")) {
		t.Fatalf("table %v, want the stale row kept", got)
	}

	// The next start drops the stale row again by size eviction.
	h.set(false, false)
	r, _ = queues.NewRegistry(o)
	if err := r.Load(ctx, h); err != nil {
		t.Fatal(err)
	}
	if got := r.Get("q").Snapshot(); !slices.Equal(got, items2("b", "c")) {
		t.Fatalf("queue after restart %v", got)
	}
	if got := table(); !slices.Equal(got, items2("b", "c")) {
		t.Fatalf("table after restart %v", got)
	}
}

func items2(keys ...string) []queues.Item {
	out := make([]queues.Item, len(keys))
	for i, k := range keys {
		out[i] = queues.Item{Key: k, Val: "1"}
	}
	return out
}

// TestJournalOnlyWhenDurable: Add and Fetch never touch the store unless DBMode is 4.
func TestJournalOnlyWhenDurable(t *testing.T) {
	for mode := queues.DBModeNone; mode <= queues.DBModeDurable; mode++ {
		for addMode := range 3 {
			h := &hookStore{Store: queues.NewMemStore()}
			r, _ := queues.NewRegistry(queues.Options{Name: "q", Size: 3, AddMode: addMode, DBMode: mode})
			if err := r.Load(t.Context(), h); err != nil {
				t.Fatal(err)
			}
			q := r.Get("q")
			for i := range 10 {
				_ = q.Add(fmt.Sprint(i%4), "v")
				if i%3 == 0 {
					_, _ = q.Fetch()
				}
			}
			calls := h.inserts + h.deletes
			if mode == queues.DBModeDurable && calls == 0 {
				t.Errorf("dbmode %d addmode %d: durable queue never wrote its journal", mode, addMode)
			}
			if mode != queues.DBModeDurable && calls != 0 {
				t.Errorf("dbmode %d addmode %d: %d journal calls", mode, addMode, calls)
			}
		}
	}
}

// TestDurableConcurrent: concurrent adds and fetches keep the table equal to the queue.
func TestDurableConcurrent(t *testing.T) {
	path := dbPath(t)
	o := queues.Options{Name: "q", DBMode: queues.DBModeDurable}
	n := start(t, path, o)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				if err := n.q("q").Add(fmt.Sprint(w), fmt.Sprint(i)); err != nil {
					t.Error(err)
					return
				}
				if i%2 == 0 {
					if _, err := n.q("q").Fetch(); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	want := n.q("q").Snapshot()
	if len(want) != 100 {
		t.Fatalf("queue holds %d items, want 100", len(want))
	}
	n.crash()
	wantTable(t, path, "q", want)
}
