package htable_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"kemi/modules/htable"
)

// dbFixture is htable with db_url on a fresh SQLite file holding rows.
func dbFixture(t *testing.T, path string, dbExpires bool, specs ...string) *fixture {
	t.Helper()
	m := htable.New()
	m.Settings().DBURL = "sqlite://" + path
	m.Settings().DBExpires = dbExpires
	for _, s := range specs {
		sp, err := htable.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Settings().Tables = append(m.Settings().Tables, sp)
	}
	return provision(t, m)
}

// kamailioDB creates path with Kamailio's sqlite htable layout and rows.
func kamailioDB(t *testing.T, path, table string, rows ...string) {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	stmts := append([]string{`CREATE TABLE ` + table + ` (id INTEGER PRIMARY KEY NOT NULL, key_name VARCHAR(64) DEFAULT '' NOT NULL,
		key_type INTEGER DEFAULT 0 NOT NULL, value_type INTEGER DEFAULT 0 NOT NULL, key_value VARCHAR(128) DEFAULT '' NOT NULL,
		expires INTEGER DEFAULT 0 NOT NULL)`}, rows...)
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func rowsOf(t *testing.T, path, table string) []string {
	t.Helper()
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.Query(`SELECT key_name, key_type, value_type, key_value, expires FROM ` + table + ` ORDER BY key_name`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var k, v string
		var kt, vt, ex int64
		if err := r.Scan(&k, &kt, &vt, &v, &ex); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join([]string{k, itoa(int(kt)), itoa(int(vt)), v, itoa(int(ex))}, "|"))
	}
	return out
}

// TestDBLoadSave loads Kamailio's rows (strings, integers, an array) at
// start and writes the table back at stop (dbmode=1).
func TestDBLoadSave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ht.db")
	kamailioDB(t, path, "htable",
		`INSERT INTO htable (key_name, key_type, value_type, key_value) VALUES ('s', 0, 0, 'str'), ('n', 0, 1, '42'),
			('arr', 1, 0, 'a0'), ('arr', 1, 1, '7'), ('z', 0, 1, '-3x')`)
	f := dbFixture(t, path, false, "h=>dbtable=htable;dbmode=1", "ro=>dbtable=htable")
	ctx := context.Background()
	if err := f.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	v := f.vm("w", "")
	got := v.run(`local H = KSR.htable
		return H.sht_get("h","s"), H.sht_get("h","n"), H.sht_get("h","arr[0]"), H.sht_get("h","arr[1]"), H.sht_get("h","arr::size"), H.sht_get("h","z"), H.sht_get("ro","s")`)
	if want := vals("str", 42, "a0", 7, 2, -3, "str"); !same(got, want) {
		t.Fatalf("loaded %v, want %v", got, want)
	}
	v.run(`KSR.htable.sht_sets("h","new","v"); KSR.htable.sht_rm("h","s"); KSR.htable.sht_sets("ro","x","y")`)
	if err := f.m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// h (dbmode=1) is saved; ro (dbmode=0) is not: its change is lost.
	want := []string{"arr::size|0|1|2|0", "arr[0]|0|0|a0|0", "arr[1]|0|1|7|0", "n|0|1|42|0", "new|0|0|v|0", "z|0|1|-3|0"}
	if got := rowsOf(t, path, "htable"); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("saved rows\n %v\nwant\n %v", got, want)
	}
}

// TestDBExpires: with db_expires, rows keep their expiry, expired ones are
// skipped at load and not saved.
func TestDBExpires(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ht.db")
	now := t0.Unix()
	kamailioDB(t, path, "ban",
		`INSERT INTO ban (key_name, key_type, value_type, key_value, expires) VALUES
			('old', 0, 1, '1', `+itoa(int(now-1))+`), ('soon', 0, 1, '1', `+itoa(int(now+5))+`), ('noexp', 0, 1, '1', 0)`)
	f := dbFixture(t, path, true, "ban=>dbtable=ban;dbmode=1;autoexpire=60")
	ctx := context.Background()
	if err := f.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	v := f.vm("w", "")
	if got := v.run(`local H = KSR.htable; return H.sht_get("ban","old"), H.sht_get("ban","soon"), H.sht_get("ban","noexp")`); !same(got, vals(nil, 1, 1)) {
		t.Fatalf("loaded %v", got)
	}
	f.clock.Advance(6 * time.Second)
	if got := v.run(`local H = KSR.htable; return H.sht_get("ban","soon"), H.sht_get("ban","noexp")`); !same(got, vals(nil, 1)) {
		t.Fatalf("after 6s %v", got)
	}
	if err := f.m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// noexp got autoexpire from the load time (t0+60); soon is expired.
	want := "noexp|0|1|1|" + itoa(int(now+60))
	if got := rowsOf(t, path, "ban"); strings.Join(got, ",") != want {
		t.Fatalf("saved %v, want %v", got, want)
	}
}

// TestDBReadOnly: a database that cannot be written fails the start, naming
// the file.
func TestDBReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	kamailioDB(t, path, "htable")
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	f := dbFixture(t, path, false, "h=>dbtable=htable;dbmode=1")
	if os.Geteuid() == 0 {
		// root writes a 0444 file: open it read-only instead.
		f.m.Settings().DBURL = "file:" + path + "?mode=ro"
	}
	err := f.m.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("start: %v", err)
	}
}

// TestDBMissingTable: a missing table is created (Kamailio fails instead).
func TestDBMissingTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	f := dbFixture(t, path, false, "h=>dbtable=htable;dbmode=1")
	ctx := context.Background()
	if err := f.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	f.vm("w", "").run(`KSR.htable.sht_seti("h","k",1)`)
	if err := f.m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rowsOf(t, path, "htable"); strings.Join(got, ",") != "k|0|1|1|0" {
		t.Fatalf("saved %v", got)
	}
}

// TestDBRPC: htable.reload replaces the content with the rows; htable.store
// writes them.
func TestDBRPC(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ht.db")
	kamailioDB(t, path, "htable", `INSERT INTO htable (key_name, key_type, value_type, key_value) VALUES ('a', 0, 0, 'x')`)
	f := dbFixture(t, path, false, "h=>dbtable=htable", "plain=>size=2")
	ctx := context.Background()
	if err := f.m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer f.m.Stop(ctx)
	steps := []struct {
		method string
		params []any
		want   string
	}{
		{"htable.sets", []any{"h", "b", "y"}, `"Ok. Key set to new value."`},
		{"htable.store", []any{"h"}, `"Ok. Htable successfully stored to DB."`},
		{"htable.delete", []any{"h", "a"}, `"Ok. Key deleted."`},
		{"htable.reload", []any{"h"}, `"Ok. Htable reloaded."`},
		{"htable.get", []any{"h", "a"}, `{"item":{"name":"a","value":"x","flags":2,"expire":"NEVER"}}`},
		{"htable.get", []any{"h", "b"}, `{"item":{"name":"b","value":"y","flags":2,"expire":"NEVER"}}`},
		{"htable.reload", []any{"plain"}, `fault 500 No database htable`},
		{"htable.store", []any{"nope"}, `fault 500 No such htable`},
		{"htable.reload", []any{}, `fault 500 No htable name given`},
	}
	for i, s := range steps {
		if got := f.call(s.method, s.params...); got != s.want {
			t.Errorf("step %d %s%v:\n got %s\nwant %s", i, s.method, s.params, got, s.want)
		}
	}
}
