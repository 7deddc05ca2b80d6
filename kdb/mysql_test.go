package kdb_test

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"kemi/kdb"
	"kemi/kdb/kdbtest"
)

func TestMySQL(t *testing.T) {
	url := kdbtest.MySQL(t)
	if _, err := kdb.Open(strings.Replace(url, "kamailiorw", "wrong", 1)); err == nil || strings.Contains(err.Error(), "kamailiorw") || strings.Contains(err.Error(), "wrong") || !strings.Contains(err.Error(), "xxxxx") {
		t.Errorf("a wrong password: %v, want an error naming the url with its password redacted", err)
	}
	db, err := kdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	made, err := db.Init()
	if err != nil {
		t.Fatal(err)
	}
	if len(made) != len(kdb.Tables()) {
		t.Fatalf("made %v", made)
	}
	if made, err := db.Init(); err != nil || len(made) != 0 {
		t.Fatalf("second init made %v, %v", made, err)
	}
	if err := db.CheckVersion("location", 9); err != nil {
		t.Fatal(err)
	}
	exp := time.Unix(1_900_000_000, 0)
	if err := db.G.Create(&kdb.Location{Ruid: "r", Username: "alice", Contact: "sip:a@192.0.2.1", Expires: kdb.Time{exp},
		LastModified: kdb.Time{exp.Add(-time.Hour)}, Q: 0.5, Callid: "c", Cseq: 1, Partition: 3}).Error; err != nil {
		t.Fatal(err)
	}
	var back kdb.Location
	if err := db.G.Take(&back).Error; err != nil {
		t.Fatal(err)
	}
	if !back.Expires.Equal(exp) || back.Q != 0.5 || back.Domain != nil || back.Partition != 3 {
		t.Fatalf("read back %+v", back)
	}
	var text string
	db.G.Raw("SELECT DATE_FORMAT(expires, '%Y-%m-%d %H:%i:%s') FROM location").Row().Scan(&text)
	if want := exp.Local().Format(kdb.TimeLayout); text != want {
		t.Errorf("expires stored as %q, want local time %q", text, want)
	}
	if err := db.G.Create(&kdb.Subscriber{Username: "alice", Domain: "example.com", Password: "pw"}).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.G.Create(&kdb.Subscriber{Username: "alice", Domain: "example.com"}).Error; err == nil {
		t.Error("account_idx did not refuse a duplicate")
	}
}

// TestMySQLLayoutIsKamailios creates the tables once with kemi and once
// with Kamailio 5.6's own SQL files (as kamdbctl create loads them) and
// compares what MariaDB says of each table and of the version rows.
func TestMySQLLayoutIsKamailios(t *testing.T) {
	ours, theirs := kdbtest.MySQL(t), kdbtest.MySQL(t)
	db := initialized(t)(kdb.Create(ours))
	kdbtest.LoadKamailioSQL(t, theirs, "standard", "usrloc", "auth_db", "acc", "permissions")
	kdbs, err := kdb.Open(theirs)
	if err != nil {
		t.Fatal(err)
	}
	defer kdbs.Close()
	show := func(d *kdb.DB, table string) string {
		var name, ddl string
		if err := d.G.Raw("SHOW CREATE TABLE `"+table+"`").Row().Scan(&name, &ddl); err != nil {
			t.Fatalf("%s: show create table %s: %v", d.Path, table, err)
		}
		// The AUTO_INCREMENT counter differs with the rows inserted.
		if i := strings.Index(ddl, " AUTO_INCREMENT="); i >= 0 {
			j := strings.IndexByte(ddl[i+1:], ' ')
			if j < 0 {
				ddl = ddl[:i]
			} else {
				ddl = ddl[:i] + ddl[i+1+j:]
			}
		}
		return ddl
	}
	for _, tb := range kdb.Tables() {
		if tb.Name != "version" {
			if err := kdbs.CheckVersion(tb.Name, tb.Version); err != nil {
				t.Errorf("Kamailio's files: %v", err)
			}
		}
		if a, b := show(db, tb.Name), show(kdbs, tb.Name); a != b {
			t.Errorf("table %s:\nkemi:\n%s\nKamailio:\n%s", tb.Name, a, b)
		}
	}
	versions := func(d *kdb.DB) map[string]int {
		var rows []kdb.Version
		if err := d.G.Find(&rows).Error; err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, r := range rows {
			m[r.Name] = r.TableVersion
		}
		return m
	}
	a, b := versions(db), versions(kdbs)
	for _, tb := range kdb.Tables() {
		if a[tb.Name] != b[tb.Name] || a[tb.Name] != tb.Version {
			t.Errorf("version of %s: kemi %d, Kamailio %d, want %d", tb.Name, a[tb.Name], b[tb.Name], tb.Version)
		}
	}
}

// TestMySQLReconnect stops a private MariaDB under an open DB: the first
// statement that fails is logged once, naming the database without its
// password, and the next statements after the restart work again.
func TestMySQLReconnect(t *testing.T) {
	srv := kdbtest.StartMariaDB(t)
	var log strings.Builder
	db := initialized(t)(kdb.OpenWith(srv.URL(), kdb.Options{Log: newLogger(&log)}))
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
	if !db.Down() {
		t.Error("Down() is false with the server stopped")
	}
	if n := strings.Count(log.String(), "database connection lost"); n != 1 {
		t.Errorf("%d lost lines, want 1:\n%s", n, log.String())
	}
	if !strings.Contains(log.String(), "mysql://kamailio:xxxxx@127.0.0.1") || strings.Contains(log.String(), "kamailiorw") ||
		!strings.Contains(log.String(), "insert into subscriber") {
		t.Errorf("the lost line does not name the database (password redacted) and the statement:\n%s", log.String())
	}
	srv.Start()
	if err := add("dave"); err != nil {
		t.Fatalf("insert after the restart: %v", err)
	}
	if db.Down() || !strings.Contains(log.String(), "database connection restored") {
		t.Errorf("not restored:\n%s", log.String())
	}
	var n int64
	db.G.Model(&kdb.Subscriber{}).Count(&n)
	if n != 2 {
		t.Errorf("%d subscribers, want alice and dave", n)
	}
}

// TestMySQLNoReconnect: with auto_reconnect 0 a lost connection stays
// lost.
func TestMySQLNoReconnect(t *testing.T) {
	srv := kdbtest.StartMariaDB(t)
	var log strings.Builder
	db, err := kdb.OpenWith(srv.URL(), kdb.Options{Log: newLogger(&log), NoReconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv.Stop()
	var v []kdb.Version
	if err := db.G.Find(&v).Error; err == nil {
		t.Fatal("query with the server down worked")
	}
	srv.Start()
	if err := db.G.Find(&v).Error; !errors.Is(err, kdb.ErrNoReconnect) {
		t.Fatalf("query after the restart: %v, want ErrNoReconnect", err)
	}
	if !strings.Contains(log.String(), "auto_reconnect is 0") {
		t.Errorf("log:\n%s", log.String())
	}
}

// syncWriter is a strings.Builder safe for the logger's goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func newLogger(b *strings.Builder) *slog.Logger {
	return slog.New(slog.NewTextHandler(&syncWriter{b: b}, nil))
}

// TestMySQLPing: with a ping interval, an outage and the server's return
// are noticed without any query.
func TestMySQLPing(t *testing.T) {
	srv := kdbtest.StartMariaDB(t)
	var log strings.Builder
	w := &syncWriter{b: &log}
	db, err := kdb.OpenWith(srv.URL(), kdb.Options{Log: slog.New(slog.NewTextHandler(w, nil)), PingInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitLog := func(s string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			w.mu.Lock()
			got := log.String()
			w.mu.Unlock()
			if strings.Contains(got, s) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", s, got)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	srv.Stop()
	waitLog("failed=ping")
	srv.Start()
	waitLog("database connection restored")
}
