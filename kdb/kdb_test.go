package kdb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitCreatesKamailioTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := Open("sqlite://" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	made, err := db.Init()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(made, ","); got != "version,location,location_attrs,subscriber" {
		t.Fatalf("made %s", got)
	}
	for tbl, v := range map[string]int{"version": 1, "location": 9, "subscriber": 7} {
		if err := db.CheckVersion(tbl, v); err != nil {
			t.Error(err)
		}
	}
	if made, err := db.Init(); err != nil || len(made) != 0 {
		t.Fatalf("second init: %v %v", made, err)
	}
	if err := db.G.Create(&Subscriber{Username: "alice", Domain: "example.org", Password: "pw"}).Error; err != nil {
		t.Fatal(err)
	}
	var s Subscriber
	if err := db.G.Where("username = ?", "alice").Take(&s).Error; err != nil || s.Password != "pw" || s.HA1 != "" {
		t.Fatalf("%+v %v", s, err)
	}
	l := Location{Ruid: "r1", Username: "alice", Contact: "sip:a@1.2.3.4", Expires: "2030-01-01 00:00:00", Q: 1, Callid: "c", Cseq: 1, LastModified: "2030-01-01 00:00:00"}
	if err := db.G.Create(&l).Error; err != nil {
		t.Fatal(err)
	}
	var n int64
	db.G.Model(&Location{}).Where("domain IS NULL").Count(&n)
	if n != 1 {
		t.Fatalf("domain NULL rows: %d", n)
	}
}

func TestOpenReadOnlyFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	// root writes a 0444 file anyway: SQLite's read-only mode stands in.
	if _, err := Open("file:" + path + "?mode=ro"); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("want a read-only error naming %s, got %v", path, err)
	}
	if os.Geteuid() != 0 {
		os.Chmod(path, 0o444)
		if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("want an error naming %s, got %v", path, err)
		}
	}
}

func TestOpenUnusableFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(path, []byte(strings.Repeat("not a database ", 100)), 0o644)
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("want an error naming %s, got %v", path, err)
	}
	if _, err := Open("mysql://u:p@localhost/kamailio"); err == nil {
		t.Fatal("mysql accepted")
	}
}
