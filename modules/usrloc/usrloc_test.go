package usrloc

import (
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kemi/jsonrpc"
	"kemi/kdb"
	"kemi/kdb/kdbtest"
	"kemi/ksr/ksrtest"
	"kemi/timers"
)

// start provisions and starts a usrloc on a fake clock with set applied.
func start(t *testing.T, clk *timers.Fake, set func(*Settings)) *Module {
	t.Helper()
	m := New()
	m.set.Preload = []string{"location"}
	if set != nil {
		set(&m.set)
	}
	if err := m.Provision(ksrtest.Host{D: ksrtest.Deps(t, io.Discard), Clk: clk}); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return m
}

func newDB(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "ul.db")
	db, err := kdb.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	return "sqlite://" + path
}

func add(t *testing.T, m *Module, aor, uri string, expires int64) {
	t.Helper()
	d, err := m.Domain("location")
	if err != nil {
		t.Fatal(err)
	}
	err = m.Tx(d, aor, func(cs []*Contact) ([]*Contact, error) {
		return append(cs, &Contact{Ruid: m.NewRuid(), AOR: aor, Contact: uri, Expires: m.Now() + expires, Q: -1, CallID: "c", CSeq: 1, Methods: -1, Modified: m.Now()}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rows(t *testing.T, url string) int64 {
	db, err := kdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	db.G.Model(&kdb.Location{}).Count(&n)
	return n
}

func TestExpiryOnTheClock(t *testing.T) {
	clk := timers.NewFake(time.Unix(1_800_000_000, 0))
	m := start(t, clk, nil)
	d, _ := m.Domain("location")
	add(t, m, "alice", "sip:a@192.0.2.1", 60)
	if n := len(m.Contacts(d, "alice")); n != 1 {
		t.Fatalf("%d contacts", n)
	}
	clk.Advance(60 * time.Second)
	if n := len(m.Contacts(d, "alice")); n != 0 {
		t.Fatalf("%d contacts after expiry", n)
	}
	if _, err := m.Domain("other"); err == nil || !strings.Contains(err.Error(), "preload") {
		t.Fatalf("an unknown table: %v", err)
	}
}

// TestLiveIsASnapshot: the contacts Live shares stay as they were when
// the record changes or expires afterwards (the table replaces, never
// edits), and Live lists only valid contacts.
func TestLiveIsASnapshot(t *testing.T) {
	clk := timers.NewFake(time.Unix(1_800_000_000, 0))
	m := start(t, clk, nil)
	d, _ := m.Domain("location")
	add(t, m, "alice", "sip:a@192.0.2.1", 60)
	add(t, m, "alice", "sip:a@192.0.2.2", 600)
	before := m.Live(d, "alice")
	if len(before) != 2 || before[0].Contact != "sip:a@192.0.2.1" || before[1].Contact != "sip:a@192.0.2.2" {
		t.Fatalf("live %+v", before)
	}
	err := m.Tx(d, "alice", func(cs []*Contact) ([]*Contact, error) {
		c := *cs[1]
		c.Contact = "sip:changed@192.0.2.3"
		return []*Contact{&c}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 2 || before[0].Contact != "sip:a@192.0.2.1" || before[1].Contact != "sip:a@192.0.2.2" {
		t.Fatalf("a change edited the shared contacts: %+v", before)
	}
	add(t, m, "alice", "sip:a@192.0.2.4", 60)
	clk.Advance(61 * time.Second)
	after := m.Live(d, "alice")
	if len(after) != 1 || after[0].Contact != "sip:changed@192.0.2.3" {
		t.Fatalf("after the change and expiry: %+v", after)
	}
	if len(m.Live(d, "nobody")) != 0 {
		t.Fatal("contacts for an unknown AOR")
	}
}

func TestWriteThroughAndReload(t *testing.T) {
	url := newDB(t)
	clk := timers.NewFake(time.Unix(1_800_000_000, 0))
	m := start(t, clk, func(s *Settings) { s.DBURL, s.DBMode = url, 1 })
	add(t, m, "alice", "sip:a@192.0.2.1", 600)
	add(t, m, "bob", "sip:b@192.0.2.2", 30)
	if n := rows(t, url); n != 2 {
		t.Fatalf("db_mode 1: %d rows", n)
	}
	m.Stop(context.Background())
	clk.Advance(31 * time.Second)
	m2 := start(t, clk, func(s *Settings) { s.DBURL, s.DBMode = url, 1 })
	defer m2.Stop(context.Background())
	d, _ := m2.Domain("location")
	cs := m2.Contacts(d, "alice")
	if len(cs) != 1 || cs[0].Contact != "sip:a@192.0.2.1" || cs[0].Expires != 1_800_000_600 {
		t.Fatalf("reloaded %+v", cs)
	}
	if len(m2.Contacts(d, "bob")) != 0 {
		t.Fatal("an expired row was loaded")
	}
}

func TestWriteBackFlushesOnTimerAndStop(t *testing.T) {
	url := newDB(t)
	clk := timers.NewFake(time.Unix(1_800_000_000, 0))
	m := start(t, clk, func(s *Settings) { s.DBURL, s.DBMode, s.TimerInterval = url, 2, 10 })
	add(t, m, "alice", "sip:a@192.0.2.1", 600)
	if n := rows(t, url); n != 0 {
		t.Fatalf("db_mode 2 wrote at once: %d rows", n)
	}
	clk.Advance(10 * time.Second)
	add(t, m, "bob", "sip:b@192.0.2.2", 600)
	if n := rows(t, url); n != 2 {
		t.Fatalf("after timer_interval: %d rows", n)
	}
	add(t, m, "carol", "sip:c@192.0.2.3", 600)
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, url); n != 3 {
		t.Fatalf("after stop: %d rows", n)
	}
}

func TestStartFailsOnAReadOnlyOrMissingDB(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.db")
	m := New()
	m.set.DBURL, m.set.DBMode = "sqlite://"+missing, 1
	m.Provision(ksrtest.Host{D: ksrtest.Deps(t, io.Discard)})
	if err := m.Start(context.Background()); err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("want an error naming %s, got %v", missing, err)
	}
	url := newDB(t)
	m = New()
	m.set.DBURL, m.set.DBMode = "sqlite://file:"+strings.TrimPrefix(url, "sqlite://")+"?mode=ro", 1
	m.Provision(ksrtest.Host{D: ksrtest.Deps(t, io.Discard)})
	if err := m.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("want a read-only error, got %v", err)
	}
}

func TestRPCShapes(t *testing.T) {
	clk := timers.NewFake(time.Unix(1_800_000_000, 0))
	m := start(t, clk, nil)
	add(t, m, "alice", "sip:a@192.0.2.1", 60)
	call := func(name string, params ...any) (string, error) {
		for _, meth := range m.RPC() {
			if meth.Name == name {
				ps, err := jsonrpc.NewParams(params...)
				if err != nil {
					t.Fatal(err)
				}
				res, err := meth.Handler(context.Background(), ps)
				if err != nil {
					return "", err
				}
				b, _ := json.Marshal(res)
				return string(b), nil
			}
		}
		t.Fatalf("no %s", name)
		return "", nil
	}
	got, err := call("ul.lookup", "location", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, `{"AoR":"alice","Contacts":[{"Contact":{"Address":"sip:a@192.0.2.1","Expires":60,"Q":-1,"Call-ID":"c","CSeq":1,"User-Agent":"[not set]"`) {
		t.Fatalf("ul.lookup: %s", got)
	}
	got, _ = call("ul.dump", "brief")
	if got != `{"Domains":[{"Domain":{"Domain":"location","Size":1024,"AoRs":[{"AoR":"alice"}],"Stats":{"Records":1,"Max-Slots":1}}}]}` {
		t.Fatalf("ul.dump brief: %s", got)
	}
	if _, err := call("ul.lookup", "nope", "alice"); err == nil || err.Error() != "Domain table not found" && !strings.Contains(err.Error(), "Domain table not found") {
		t.Fatalf("unknown table: %v", err)
	}
	if _, err := call("ul.add", "location", "bob", "sip:b@192.0.2.2", 0, 0.5, "", 0, 0, 4294967295); err != nil {
		t.Fatal(err)
	}
	if got, _ := call("ul.lookup", "location", "bob"); !strings.Contains(got, `"Address":"sip:b@192.0.2.2","Expires":"permanent","Q":0.5,"Call-ID":"dfjrewr12386fd6-343@kamailio.rpc"`) {
		t.Fatalf("after ul.add: %s", got)
	}
	if _, err := call("ul.rm_contact", "location", "bob", "sip:x@192.0.2.9"); err == nil || !strings.Contains(err.Error(), "Contact not found") {
		t.Fatalf("ul.rm_contact of another contact: %v", err)
	}
	if _, err := call("ul.rm_contact", "location", "bob", "sip:b@192.0.2.2"); err != nil {
		t.Fatal(err)
	}
	if _, err := call("ul.add", "location", "bob"); err == nil || !strings.Contains(err.Error(), "Not enough parameters or wrong format") {
		t.Fatalf("ul.add without parameters: %v", err)
	}
	if _, err := call("ul.rm", "location", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := call("ul.lookup", "location", "alice"); err == nil || !strings.Contains(err.Error(), "AOR not found in location table") {
		t.Fatalf("after ul.rm: %v", err)
	}
}

func TestTimerDeletesExpiredRows(t *testing.T) {
	url := newDB(t)
	clk := timers.NewFake(time.Unix(1_800_000_000, 0))
	m := start(t, clk, func(s *Settings) { s.DBURL, s.DBMode, s.TimerInterval = url, 1, 10 })
	defer m.Stop(context.Background())
	add(t, m, "alice", "sip:a@192.0.2.1", 5)
	if n := rows(t, url); n != 1 {
		t.Fatalf("%d rows", n)
	}
	clk.Advance(10 * time.Second)
	add(t, m, "bob", "sip:b@192.0.2.2", 600) // any operation runs the due timer
	if n := rows(t, url); n != 1 {
		t.Fatalf("alice's expired row is still there: %d rows", n)
	}
}

func TestPostgresWriteThroughAndReload(t *testing.T) { writeThroughAndReload(t, kdbtest.Postgres(t)) }

func TestMySQLWriteThroughAndReload(t *testing.T) { writeThroughAndReload(t, kdbtest.MySQL(t)) }

// writeThroughAndReload writes alice through (db_mode 1) into the server
// database at url, reloads her (db_mode 2) and removes her.
func writeThroughAndReload(t *testing.T, url string) {
	db, err := kdb.Create(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	clk := timers.NewFake(time.Unix(1_800_000_000, 0))
	m := start(t, clk, func(s *Settings) { s.DBURL, s.DBMode = url, 1 })
	add(t, m, "alice", "sip:a@192.0.2.1", 600)
	if n := rows(t, url); n != 1 {
		t.Fatalf("%d rows", n)
	}
	m.Stop(context.Background())
	m2 := start(t, clk, func(s *Settings) { s.DBURL, s.DBMode = url, 2 })
	d, _ := m2.Domain("location")
	if cs := m2.Contacts(d, "alice"); len(cs) != 1 || cs[0].Expires != 1_800_000_600 {
		t.Fatalf("reloaded %+v", cs)
	}
	d2, _ := m2.Domain("location")
	m2.Tx(d2, "alice", func([]*Contact) ([]*Contact, error) { return nil, nil })
	if err := m2.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := rows(t, url); n != 0 {
		t.Fatalf("after removal and stop: %d rows", n)
	}
}

func TestWriteThroughUpdates(t *testing.T) {
	url := newDB(t)
	clk := timers.NewFake(time.Unix(1_800_000_000, 0))
	m := start(t, clk, func(s *Settings) { s.DBURL, s.DBMode = url, 1 })
	defer m.Stop(context.Background())
	add(t, m, "alice", "sip:a@192.0.2.1", 60)
	d, _ := m.Domain("location")
	err := m.Tx(d, "alice", func(cs []*Contact) ([]*Contact, error) {
		c := *cs[0]
		c.Expires, c.CSeq = m.Now()+3600, 2
		return []*Contact{&c}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := kdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []kdb.Location
	db.G.Find(&rows)
	if len(rows) != 1 || rows[0].Cseq != 2 || rows[0].Expires.Unix() != 1_800_003_600 {
		t.Fatalf("rows after an update: %+v", rows)
	}
}

func TestContactOrder(t *testing.T) {
	for _, byTime := range []bool{false, true} {
		clk := timers.NewFake(time.Unix(1_800_000_000, 0))
		m := start(t, clk, func(s *Settings) { s.DescTimeOrder = byTime })
		add(t, m, "alice", "sip:1@192.0.2.1", 60)
		add(t, m, "alice", "sip:2@192.0.2.1", 60)
		d, _ := m.Domain("location")
		m.Tx(d, "alice", func(cs []*Contact) ([]*Contact, error) {
			return append(cs, &Contact{Ruid: m.NewRuid(), AOR: "alice", Contact: "sip:3@192.0.2.1", Expires: m.Now() + 60, Q: 500}), nil
		})
		var got []string
		for _, c := range m.Contacts(d, "alice") {
			got = append(got, c.Contact[4:5])
		}
		want := "3 1 2" // by q, then oldest first (mem_insert_ucontact)
		if byTime {
			want = "3 2 1" // newest first
		}
		if strings.Join(got, " ") != want {
			t.Errorf("desc_time_order %v: %v, want %s", byTime, got, want)
		}
	}
}

// TestLiveWhileWriting reads the shared contacts while records change
// and db_mode 2 flushes mark them written (run with -race).
func TestLiveWhileWriting(t *testing.T) {
	url := newDB(t)
	clk := timers.NewFake(time.Unix(1_800_000_000, 0))
	m := start(t, clk, func(s *Settings) { s.DBURL, s.DBMode = url, 2 })
	defer m.Stop(context.Background())
	d, _ := m.Domain("location")
	add(t, m, "alice", "sip:a@192.0.2.1", 600)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			err := m.Tx(d, "alice", func(cs []*Contact) ([]*Contact, error) {
				c := *cs[0]
				c.CSeq++
				return []*Contact{&c}, nil
			})
			if err == nil {
				err = m.Flush()
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	n := 0
	for {
		select {
		case <-done:
			if n == 0 {
				t.Fatal("no contact read")
			}
			return
		default:
		}
		for _, c := range m.Live(d, "alice") {
			if c.Contact != "" && c.Expires > 0 && c.Ruid != "" {
				n++
			}
		}
	}
}
