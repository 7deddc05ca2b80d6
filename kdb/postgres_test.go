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
	if len(made) != len(kdb.Tables()) {
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
	// permissions' address table and acc's tables with the example's
	// extra columns.
	tag := "t"
	if err := db.G.Create(&kdb.Address{Grp: 1, IPAddr: "10.0.0.0", Mask: 8, Tag: &tag}).Error; err != nil {
		t.Fatal(err)
	}
	rows, err := db.Addresses("address", kdb.AddressColumns{Grp: "grp", IPAddr: "ip_addr", Mask: "mask", Port: "port", Tag: "tag"})
	if err != nil || len(rows) != 1 || rows[0].Mask.Int64 != 8 || rows[0].Tag.String != "t" {
		t.Fatalf("addresses %+v %v", rows, err)
	}
	for _, r := range []kdb.Trusted{{SrcIP: "10.0.0.1", Proto: "any", Priority: 5}, {SrcIP: "10.0.0.1", Proto: "udp", Tag: &tag, Priority: 1}} {
		if err := db.G.Create(&r).Error; err != nil {
			t.Fatal(err)
		}
	}
	src := "10.0.0.1"
	tr, err := db.TrustedRows("trusted", kdb.TrustedColumns{Src: "src_ip", Proto: "proto", From: "from_pattern", Ruri: "ruri_pattern", Tag: "tag", Priority: "priority"}, &src)
	if err != nil || len(tr) != 2 || tr[0].Proto.String != "udp" || tr[1].From.Valid {
		t.Fatalf("trusted %+v %v", tr, err)
	}
	if err := db.AddAccExtra(); err != nil {
		t.Fatal(err)
	}
	if err := db.InsertAcc("missed_calls", []string{"method", "sip_code", "src_user"}, []any{"INVITE", "486", "alice"}, "time", exp); err != nil {
		t.Fatal(err)
	}
	var mc kdb.MissedCall
	if err := db.G.Take(&mc).Error; err != nil || mc.SipCode != "486" || !mc.Time.Equal(exp) {
		t.Fatalf("missed call %+v %v", mc, err)
	}
}

// TestPostgresReconnect: a stopped PostgreSQL is one logged outage, and
// the pool reconnects after the restart.
func TestPostgresReconnect(t *testing.T) {
	srv := kdbtest.StartPostgres(t)
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
