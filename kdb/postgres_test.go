package kdb_test

import (
	"strings"
	"testing"
	"time"

	"kemi/kdb"
	"kemi/kdb/kdbtest"
)

func TestPostgres(t *testing.T) {
	url := kdbtest.Postgres(t)
	db, err := kdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	made, err := db.Init()
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != 4 {
		t.Fatalf("made %v", made)
	}
	if err := db.CheckVersion("location", 9); err != nil {
		t.Fatal(err)
	}
	exp := time.Unix(1_900_000_000, 0)
	if err := db.G.Create(&kdb.Location{Ruid: "r", Username: "alice", Contact: "sip:a@192.0.2.1", Expires: kdb.Time{exp},
		LastModified: kdb.Time{exp.Add(-time.Hour)}, Q: 0.5, Callid: "c", Cseq: 1}).Error; err != nil {
		t.Fatal(err)
	}
	var back kdb.Location
	if err := db.G.Take(&back).Error; err != nil {
		t.Fatal(err)
	}
	if !back.Expires.Equal(exp) || back.Q != 0.5 || back.Domain != nil {
		t.Fatalf("read back %+v", back)
	}
	var text string
	db.G.Raw("SELECT to_char(expires, 'YYYY-MM-DD HH24:MI:SS') FROM location").Row().Scan(&text)
	if want := exp.Local().Format(kdb.TimeLayout); text != want {
		t.Errorf("expires stored as %q, want local time %q", text, want)
	}
	if err := db.G.Create(&kdb.Subscriber{Username: "alice", Domain: "example.com", Password: "pw"}).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.G.Create(&kdb.Subscriber{Username: "alice", Domain: "example.com"}).Error; err == nil {
		t.Error("subscriber_account_idx did not refuse a duplicate")
	}
}

// TestPostgresReconnect: a stopped PostgreSQL is one logged outage, and
// the pool reconnects after the restart.
func TestPostgresReconnect(t *testing.T) {
	srv := kdbtest.StartPostgres(t)
	var log strings.Builder
	db, err := kdb.OpenWith(srv.URL(), kdb.Options{Log: newLogger(&log)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	add := func(user string) error {
		return db.G.Create(&kdb.Subscriber{Username: user, Domain: "example.com", Password: "pw"}).Error
	}
	if err := add("alice"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for _, u := range []string{"bob", "carol"} {
		if err := add(u); err == nil || !kdb.IsConnError(err) {
			t.Fatalf("insert with the server down: %v, want a connection error", err)
		}
	}
	if n := strings.Count(log.String(), "database connection lost"); n != 1 || !strings.Contains(log.String(), "insert into subscriber") {
		t.Errorf("%d lost lines, want 1 naming the insert:\n%s", n, log.String())
	}
	srv.Start()
	if err := add("dave"); err != nil {
		t.Fatalf("insert after the restart: %v", err)
	}
	if db.Down() || !strings.Contains(log.String(), "database connection restored") {
		t.Errorf("not restored:\n%s", log.String())
	}
}
