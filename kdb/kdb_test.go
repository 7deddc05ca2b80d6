package kdb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInitCreatesKamailioTables(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := Create("sqlite://" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	made, err := db.Init()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(made, ","); got != "version,location,location_attrs,subscriber,acc,acc_cdrs,missed_calls,trusted,address" {
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
	l := Location{Ruid: "r1", Username: "alice", Contact: "sip:a@1.2.3.4", Expires: Time{time.Unix(1900000000, 0)}, Q: 1, Callid: "c", Cseq: 1, LastModified: Time{time.Unix(1800000000, 0)}}
	if err := db.G.Create(&l).Error; err != nil {
		t.Fatal(err)
	}
	var n int64
	db.G.Model(&Location{}).Where("domain IS NULL").Count(&n)
	if n != 1 {
		t.Fatalf("domain NULL rows: %d", n)
	}
	// Kamailio's db_sqlite writes Julian days; kamdbctl's defaults are text.
	var jd float64
	db.G.Raw("SELECT expires FROM location").Row().Scan(&jd)
	if want := 2440587.5 + 1900000000.0/86400; jd != want {
		t.Errorf("expires stored as %v, want the Julian day %v", jd, want)
	}
	var back Location
	db.G.Take(&back)
	if back.Expires.Unix() != 1900000000 || back.LastModified.Unix() != 1800000000 {
		t.Errorf("read back %v %v", back.Expires, back.LastModified)
	}
	db.G.Exec("UPDATE location SET expires = '2030-05-28 21:32:15'")
	db.G.Take(&back)
	if want, _ := time.ParseInLocation(TimeLayout, "2030-05-28 21:32:15", time.Local); !back.Expires.Equal(want) {
		t.Errorf("text expires read as %v", back.Expires)
	}
}

func TestOpenReadOnlyFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ro.db")
	if _, err := Open(path); err == nil {
		t.Fatal("a missing database opened")
	}
	db, err := Create(path)
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

func TestTimeScanText(t *testing.T) {
	for in, want := range map[string]time.Time{
		"2030-05-28 21:32:15":     time.Date(2030, 5, 28, 21, 32, 15, 0, time.Local),
		"2030-05-28 21:32:15.500": time.Date(2030, 5, 28, 21, 32, 15, 5e8, time.Local),
		"0000-00-00 00:00:00":     {},
	} {
		var got Time
		if err := got.Scan([]byte(in)); err != nil || !got.Equal(want) {
			t.Errorf("Scan(%q) = %v, %v; want %v", in, got.Time, err, want)
		}
	}
	var bad Time
	if err := bad.Scan("yesterday"); err == nil {
		t.Error("Scan(yesterday) worked")
	}
}
