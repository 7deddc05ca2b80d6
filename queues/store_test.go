package queues_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"kemi/queues"
	"kemi/queues/queuestest"
)

func TestMemStore(t *testing.T) {
	queuestest.Run(t, func(*testing.T) queues.Store { return queues.NewMemStore() })
}

func TestSQLStore(t *testing.T) {
	queuestest.Run(t, func(t *testing.T) queues.Store {
		return openSQLite(t, filepath.Join(t.TempDir(), "q.db"))
	})
}

func TestSQLStoreInMemory(t *testing.T) {
	queuestest.Run(t, func(t *testing.T) queues.Store { return openSQLite(t, ":memory:") })
}

func openSQLite(t testing.TB, url string) *queues.SQLStore {
	t.Helper()
	s, err := queues.OpenSQLite(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawDB opens the file with database/sql, as the sqlite3 CLI or Kamailio would write it.
func rawDB(t testing.TB, path string, stmts ...string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", path) // registered by the driver queues imports
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return db
}

func TestOpenSQLiteURLs(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	tests := []struct{ url, file string }{
		{"sqlite://" + filepath.Join(dir, "abs.db"), "abs.db"},
		{"sqlite://relative.db", "relative.db"},
		{"SQLite://upper.db", "upper.db"},
		{filepath.Join(dir, "plain.db"), "plain.db"},
		{"plain-relative.db", "plain-relative.db"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s := openSQLite(t, tt.url)
			if err := s.Append(t.Context(), "q", []queues.Item{{Key: "k", Val: "v"}}); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, tt.file)); err != nil {
				t.Fatal(err)
			}
			var mode string
			if err := rawDB(t, filepath.Join(dir, tt.file)).QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
				t.Fatalf("journal_mode %q, %v; want wal", mode, err)
			}
		})
	}
}

func TestOpenSQLiteErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("this is not a database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url  string
		want []string
		not  string
	}{
		{garbage, []string{`open sqlite "` + garbage + `"`, "not a database"}, ""},
		{"sqlite://" + filepath.Join(dir, "no", "such", "dir.db"), []string{"open sqlite", "unable to open"}, ""},
		{"mysql://kamailio:secretpw@localhost/kamailio", []string{`unsupported url scheme "mysql"`}, "secretpw"},
		{"sqlite://", []string{"empty sqlite path"}, ""},
		{"", []string{"empty sqlite path"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			s, err := queues.OpenSQLite(tt.url)
			if err == nil {
				_ = s.Close()
				t.Fatal("OpenSQLite succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.not != "" && strings.Contains(err.Error(), tt.not) {
				t.Errorf("error %q leaks %q", err, tt.not)
			}
		})
	}
}

// TestSQLStoreCaseFold: SQLite table names ignore ASCII case, so "Q" and "q" would share a table.
func TestSQLStoreCaseFold(t *testing.T) {
	s := openSQLite(t, filepath.Join(t.TempDir(), "q.db"))
	ctx := t.Context()
	if err := s.Append(ctx, "Queue", []queues.Item{{Key: "k", Val: "v"}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Load(ctx, "queue")
	if err == nil || !strings.Contains(err.Error(), `table "queue" is already queue "Queue"'s`) {
		t.Fatalf("Load(queue) after Queue: %v", err)
	}
	// Non-ASCII letters are not folded by SQLite: distinct tables.
	if err := s.Append(ctx, "É", []queues.Item{{Key: "1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, "é", []queues.Item{{Key: "2"}}); err != nil {
		t.Fatal(err)
	}
	if recs, err := s.Load(ctx, "é"); err != nil || len(recs) != 1 || recs[0].Key != "2" {
		t.Fatalf("Load(é) = %v, %v", recs, err)
	}
}

func TestSQLStoreTableLayouts(t *testing.T) {
	tests := []struct {
		name   string
		create string
		insert []string
		want   []queues.Item
	}{
		{
			name:   "kamailio sqlite3 layout, ordered by id not by insertion",
			create: `CREATE TABLE q (id INTEGER PRIMARY KEY AUTOINCREMENT, key VARCHAR(64) NOT NULL DEFAULT '', val VARCHAR(4096) NOT NULL DEFAULT '')`,
			insert: []string{
				`INSERT INTO q (id, key, val) VALUES (30, 'c', '3')`,
				`INSERT INTO q (id, key, val) VALUES (10, 'a', '1')`,
				`INSERT INTO q (id, key, val) VALUES (20, 'b', '2')`,
			},
			want: []queues.Item{{Key: "a", Val: "1"}, {Key: "b", Val: "2"}, {Key: "c", Val: "3"}},
		},
		{
			name:   "admin guide layout without id, ordered by rowid",
			create: `CREATE TABLE q (key character varying(64) DEFAULT "" NOT NULL, val character varying(4096) DEFAULT "" NOT NULL)`,
			insert: []string{
				`INSERT INTO q (key, val) VALUES ('a', '1')`,
				`INSERT INTO q (key) VALUES ('b')`,
				`INSERT INTO q (val, key) VALUES ('3', 'c')`,
			},
			want: []queues.Item{{Key: "a", Val: "1"}, {Key: "b", Val: ""}, {Key: "c", Val: "3"}},
		},
		{
			name:   "id column that is not the rowid",
			create: `CREATE TABLE q (id INT, key TEXT NOT NULL, val TEXT NOT NULL, extra TEXT)`,
			insert: []string{
				`INSERT INTO q VALUES (2, 'b', '2', 'x')`,
				`INSERT INTO q VALUES (1, 'a', '1', 'y')`,
			},
			want: []queues.Item{{Key: "a", Val: "1"}, {Key: "b", Val: "2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.db")
			rawDB(t, path, append([]string{tt.create}, tt.insert...)...)
			s := openSQLite(t, path)
			ctx := t.Context()
			recs, err := s.Load(ctx, "q")
			if err != nil {
				t.Fatal(err)
			}
			if got := itemsOf(recs); !slices.Equal(got, tt.want) {
				t.Fatalf("Load = %v, want %v", got, tt.want)
			}
			// Ids identify rows: delete the first loaded, then insert one that comes last.
			if err := s.Delete(ctx, "q", recs[0].ID); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteIDs(ctx, "q", []int64{recs[1].ID}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Insert(ctx, "q", queues.Item{Key: "z", Val: "26"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Append(ctx, "q", []queues.Item{{Key: "zz"}}); err != nil {
				t.Fatal(err)
			}
			want := append(slices.Clone(tt.want[2:]), queues.Item{Key: "z", Val: "26"}, queues.Item{Key: "zz"})
			if recs, err := s.Load(ctx, "q"); err != nil || !slices.Equal(itemsOf(recs), want) {
				t.Fatalf("Load = %v, %v; want %v", itemsOf(recs), err, want)
			}
		})
	}
}

func TestSQLStoreBadTables(t *testing.T) {
	tests := []struct {
		name  string
		setup []string
		want  string
	}{
		{"null key", []string{`CREATE TABLE q (id INTEGER PRIMARY KEY, key TEXT, val TEXT)`,
			`INSERT INTO q VALUES (1, 'a', 'b')`, `INSERT INTO q VALUES (2, NULL, 'b')`}, "row 2: key or val is NULL"},
		{"null val", []string{`CREATE TABLE q (key TEXT, val TEXT)`,
			`INSERT INTO q VALUES ('a', NULL)`}, "row 1: key or val is NULL"},
		{"no val column", []string{`CREATE TABLE q (id INTEGER PRIMARY KEY, key TEXT)`}, `table lacks a "key" or "val" column`},
		{"a view", []string{`CREATE TABLE t (key TEXT, val TEXT)`, `CREATE VIEW q AS SELECT key, val FROM t`}, "q because it is a view"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "k.db")
			rawDB(t, path, tt.setup...)
			s := openSQLite(t, path)
			_, err := s.Load(t.Context(), "q")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func itemsOf(recs []queues.Record) []queues.Item {
	out := make([]queues.Item, len(recs))
	for i, r := range recs {
		out[i] = r.Item
	}
	return out
}

func TestMemStoreClosed(t *testing.T) {
	s := queues.NewMemStore()
	_ = s.Close()
	if _, err := s.Insert(t.Context(), "q", queues.Item{}); !errors.Is(err, queues.ErrClosed) {
		t.Fatalf("Insert after Close: %v, want ErrClosed", err)
	}
}
