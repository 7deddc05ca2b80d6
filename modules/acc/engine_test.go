package acc_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/kdb"
)

// TestRelayedTransactions runs kemi alone (no Kamailio needed) with the
// example's acc parameters: an answered INVITE is a row of acc, a busy
// one with the missed flag a row of missed_calls, the extras read on the
// branch's R-URI; one without flags writes nothing.
func TestRelayedTransactions(t *testing.T) {
	seed := filepath.Join(t.TempDir(), "seed.db")
	db, err := kdb.Create(seed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	if err := db.AddAccExtra(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	// The side-by-side configuration without what enginetest.Config has.
	var lines []string
	for _, l := range strings.Split(accCfg, "\n") {
		switch {
		case strings.Contains(l, `"sl.so"`), strings.Contains(l, `"pv.so"`), strings.Contains(l, `"tm.so"`),
			strings.Contains(l, "app_lua"):
			continue
		}
		lines = append(lines, strings.Replace(l, "sqlite:///%DIR%/kamailio.db", "sqlite://acc.db", 1))
	}
	e := enginetest.Start(t, enginetest.Config(lines...), map[string]string{"script.lua": accScript, "acc.db": string(raw)})
	addr := uas(t)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	for _, x := range []struct{ id, user, flags string }{{"a1", "ok", "1"}, {"m1", "busy", "1 2"}, {"n1", "busy", ""}} {
		req := enginetest.Req{Method: "INVITE", URI: "sip:" + x.user + "@example.com", CallID: x.id,
			Headers: []string{"X-Flags: " + x.flags, "X-User: " + x.user, "X-UAS: " + addr}}
		call(t, c, req, "ft", "")
	}
	db, err = kdb.Open(filepath.Join(e.Dir, "acc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	want := map[string]string{
		"acc a1":          "method=INVITE from_tag=ft to_tag=uas-tag sip_code=200 sip_reason=OK src_user=alice src_domain=example.com src_ip=127.0.0.1 dst_ouser=ok dst_user=ok dst_domain=127.0.0.1",
		"missed_calls m1": "method=INVITE from_tag=ft to_tag=uas-tag sip_code=486 sip_reason=Busy Here src_user=alice src_domain=example.com src_ip=127.0.0.1 dst_ouser=busy dst_user=busy dst_domain=127.0.0.1",
	}
	for k, w := range want {
		table, id, _ := strings.Cut(k, " ")
		deadline := time.Now().Add(enginetest.Patience)
		for {
			got := strings.Join(rows(t, db, table, id), "|")
			if got == w {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s:\n got %s\nwant %s", k, got, w)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, table := range []string{"acc", "missed_calls"} {
		for _, id := range []string{"n1", "m1", "a1"} {
			if _, ok := want[table+" "+id]; !ok {
				if r := rows(t, db, table, id); len(r) != 0 {
					t.Errorf("%s %s: %v", table, id, r)
				}
			}
		}
	}
	if !strings.Contains(e.Log.String(), "ACC: call missed: timestamp=") {
		t.Errorf("no ACC log line:\n%s", e.Log.String())
	}
}
