package kdb_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"kemi/kdb"
	"kemi/kdb/kdbtest"
)

// checkRead runs a Read of the subscriber table on db (made by Init)
// and compares it with gorm's Pluck of the same query.
// initialized returns a function that takes what kdb's Create or Open
// returned and gives the database with its tables made (Init), closed when
// the test ends; an error fails t.
func initialized(t *testing.T) func(*kdb.DB, error) *kdb.DB {
	t.Helper()
	return func(db *kdb.DB, err error) *kdb.DB {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Init(); err != nil {
			t.Fatal(err)
		}
		return db
	}
}

func checkRead(t *testing.T, db *kdb.DB) {
	t.Helper()
	if err := db.G.Create(&kdb.Subscriber{Username: "alice", Domain: "example.com", Password: "pw1"}).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.G.Create(&kdb.Subscriber{Username: "alice", Domain: "other.org", Password: "pw2"}).Error; err != nil {
		t.Fatal(err)
	}
	byUser, err := db.PrepareRead("subscriber", "password", func(q *gorm.DB) *gorm.DB {
		return q.Where(clause.Eq{Column: clause.Column{Name: "username"}, Value: kdb.Arg(0)}).
			Where(clause.Eq{Column: clause.Column{Name: "domain"}, Value: kdb.Arg(1)}).Limit(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer byUser.Close()
	pluck := func(user, domain string) (string, bool, error) {
		var pws []string
		err := db.G.Table("subscriber").Where(clause.Eq{Column: clause.Column{Name: "username"}, Value: user}).
			Where(clause.Eq{Column: clause.Column{Name: "domain"}, Value: domain}).Limit(1).Pluck("password", &pws).Error
		if err != nil || len(pws) == 0 {
			return "", false, err
		}
		return pws[0], true, nil
	}
	for _, c := range [][2]string{{"alice", "example.com"}, {"alice", "other.org"}, {"bob", "example.com"}, {"alice", "x"}} {
		v, found, err := byUser.String(c[0], c[1])
		gv, gfound, gerr := pluck(c[0], c[1])
		if v != gv || found != gfound || (err == nil) != (gerr == nil) {
			t.Errorf("%v: Read %q %v %v, gorm's Pluck %q %v %v", c, v, found, err, gv, gfound, gerr)
		}
	}
	// Every call reads the table: a changed password is seen at once.
	if err := db.G.Model(&kdb.Subscriber{}).Where("username = ? AND domain = ?", "alice", "example.com").Update("password", "new").Error; err != nil {
		t.Fatal(err)
	}
	if v, found, err := byUser.String("alice", "example.com"); v != "new" || !found || err != nil {
		t.Errorf("after the update: %q %v %v, want new", v, found, err)
	}
	if _, _, err := byUser.String("alice"); err == nil {
		t.Error("one argument for two: no error")
	}
	// A table that does not exist fails the call, not the preparation.
	bad, err := db.PrepareRead("nosuch", "password", func(q *gorm.DB) *gorm.DB {
		return q.Where(clause.Eq{Column: clause.Column{Name: "username"}, Value: kdb.Arg(0)}).Limit(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := bad.String("alice"); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("a missing table: %v, want an error naming it", err)
	}
	if db.Down() {
		t.Error("a statement error counted as a lost connection")
	}
}

func TestReadSQLite(t *testing.T) {
	db, err := kdb.Create("sqlite://" + filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	checkRead(t, db)
}

func TestReadMySQL(t *testing.T) {
	db := initialized(t)(kdb.Open(kdbtest.MySQL(t)))
	checkRead(t, db)
}

func TestReadPostgres(t *testing.T) {
	db := initialized(t)(kdb.Open(kdbtest.Postgres(t)))
	checkRead(t, db)
}

// TestReadReconnect: a Read through an outage reports it once, as
// gorm's statements do, and works again when the server is back.
func TestReadReconnect(t *testing.T) {
	srv := kdbtest.StartPostgres(t)
	var log strings.Builder
	db := initialized(t)(kdb.OpenWith(srv.URL(), kdb.Options{Log: newLogger(&log)}))
	if err := db.G.Create(&kdb.Subscriber{Username: "alice", Domain: "example.com", Password: "pw"}).Error; err != nil {
		t.Fatal(err)
	}
	r, err := db.PrepareRead("subscriber", "password", func(q *gorm.DB) *gorm.DB {
		return q.Where(clause.Eq{Column: clause.Column{Name: "username"}, Value: kdb.Arg(0)}).Limit(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for i := 0; i < 2; i++ {
		_, _, err := r.String("alice")
		var rep interface{ Reported() bool }
		if err == nil || !kdb.IsConnError(err) || !errors.As(err, &rep) {
			t.Fatalf("read with the server down: %v, want a reported connection error", err)
		}
	}
	if n := strings.Count(log.String(), "database connection lost"); n != 1 || !strings.Contains(log.String(), "select from subscriber") {
		t.Errorf("%d lost lines, want 1 naming the select:\n%s", n, log.String())
	}
	srv.Start()
	if v, found, err := r.String("alice"); v != "pw" || !found || err != nil {
		t.Fatalf("read after the restart: %q %v %v", v, found, err)
	}
	if db.Down() || !strings.Contains(log.String(), "database connection restored") {
		t.Errorf("not restored:\n%s", log.String())
	}
}
