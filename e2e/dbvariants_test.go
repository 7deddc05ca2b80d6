package e2e

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"kemi/kdb"
	"kemi/kdb/kdbtest"
)

// exampleDB is the database one run of the example uses.
type exampleDB interface {
	// prepare creates Kamailio's tables, the example's acc columns and the
	// subscribers, in an empty database.
	prepare(t *testing.T, cfg []byte)
	// rows is what the run left in it (see dbRows).
	rows(t *testing.T, n *normalizer) []string
	// defines are the -A arguments that point the example at it ("" for
	// the cfg's own DBURL, MariaDB's database kamailio).
	defines() []string
}

// mariaDB is database kamailio on the local MariaDB, as the example's
// DBURL names it, prepared as kamdbctl create does.
type mariaDB struct{}

func (mariaDB) prepare(t *testing.T, cfg []byte)          { prepareDB(t, cfg) }
func (mariaDB) rows(t *testing.T, n *normalizer) []string { return dbRows(t, n) }
func (mariaDB) defines() []string                         { return nil }

// kdbDB is a database kemi creates itself (`kemi db init`): SQLite or
// PostgreSQL, given to the unchanged example with one -A DBURL=... (the
// cfg takes DBURL from outside when it is defined, #!ifndef DBURL).
type kdbDB struct{ url string }

func (d kdbDB) defines() []string { return []string{"-A", fmt.Sprintf("DBURL=%q", d.url)} }

func (d kdbDB) prepare(t *testing.T, _ []byte) {
	t.Helper()
	db, err := kdb.Create(d.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	if err := db.AddAccExtra(); err != nil {
		t.Fatal(err)
	}
	for _, s := range subscribers {
		if err := db.G.Exec("INSERT INTO subscriber (username, domain, password) VALUES (?, '127.0.0.1', ?)", s[0], s[1]).Error; err != nil {
			t.Fatal(err)
		}
	}
}

// rows reads the columns dbRows reads from MariaDB and prints them as the
// mariadb client does (NULL, q with two decimals), so the runs compare.
func (d kdbDB) rows(t *testing.T, n *normalizer) []string {
	t.Helper()
	db, err := kdb.Open(d.url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	acc := "method, from_tag, to_tag, callid, sip_code, sip_reason, src_user, src_domain, src_ip, dst_ouser, dst_user, dst_domain"
	q := map[string]string{
		"location": "SELECT username, domain, contact, received, path, q, cseq, flags, cflags, user_agent, socket, methods, " +
			"instance, reg_id, server_id, connection_id, keepalive, last_modified, expires FROM location",
		"acc":          "SELECT " + acc + " FROM acc",
		"missed_calls": "SELECT " + acc + " FROM missed_calls",
	}
	var out []string
	for _, tb := range []string{"location", "acc", "missed_calls"} {
		rs, err := db.G.Raw(q[tb]).Rows()
		if err != nil {
			t.Fatalf("%s: %v", tb, err)
		}
		cols, _ := rs.Columns()
		var rows []string
		for rs.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rs.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var fields []string
			for i, v := range vals {
				if cols[i] == "q" {
					fields = append(fields, fmt.Sprintf("%.2f", toFloat(v)))
					continue
				}
				fields = append(fields, cell(v))
			}
			if tb == "location" { // last_modified, expires -> expires as seconds after last_modified
				lm, ex := toTime(t, vals[len(vals)-2]), toTime(t, vals[len(vals)-1])
				fields = append(fields[:len(fields)-2], fmt.Sprint(int(ex.Sub(lm).Seconds())))
			}
			rows = append(rows, tb+": "+n.norm(strings.Join(fields, " | ")))
		}
		rs.Close()
		sort.Strings(rows)
		out = append(out, rows...)
	}
	return out
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return string(x)
	case time.Time:
		return x.Format(kdb.TimeLayout)
	}
	return fmt.Sprint(v)
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case float32:
		return float64(x)
	case int64:
		return float64(x)
	case []byte:
		var f float64
		fmt.Sscan(string(x), &f)
		return f
	case string:
		var f float64
		fmt.Sscan(x, &f)
		return f
	}
	return 0
}

// toTime reads a DATETIME as kdb does (a Julian day in SQLite, as
// db_sqlite writes it; a time elsewhere).
func toTime(t *testing.T, v any) time.Time {
	t.Helper()
	var tm kdb.Time
	if err := tm.Scan(v); err != nil {
		t.Fatalf("not a time: %#v: %v", v, err)
	}
	return tm.Time
}

// sqliteDB is a fresh SQLite file in dir.
func sqliteDB(t *testing.T) kdbDB {
	return kdbDB{url: "sqlite://" + filepath.Join(t.TempDir(), "kamailio.db")}
}

// postgresDB is a private PostgreSQL cluster for the test (skipped
// without initdb; tests/run installs postgresql).
func postgresDB(t *testing.T) kdbDB {
	return kdbDB{url: kdbtest.StartPostgres(t).URL()}
}
