package registrar_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/kdb"
	"kemi/kdb/kdbtest"
	"kemi/modules/internal/kamtest"
)

// outageScript authenticates REGISTERs against auth_db (unless X-NoAuth)
// and saves them (usrloc db_mode 2); other requests are looked up.
const outageScript = `
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_REGISTER() then
		if not KSR.hdr.get("X-NoAuth") then
			local rc = KSR.auth_db.auth_check("example.com", "subscriber", 1)
			if rc == -5 then
				KSR.auth.auth_challenge("example.com", 0)
				return
			end
			if rc < 0 then
				KSR.sl.send_reply(500, "Auth " .. rc)
				return
			end
		end
		KSR.registrar.save("location", 0)
		return
	end
	if KSR.registrar.lookup("location") == 1 then
		KSR.hdr.append_to_reply("X-Ru: " .. KSR.pv.get("$ru") .. "\r\n")
		KSR.sl.send_reply(200, "Found")
		return
	end
	KSR.sl.send_reply(404, "Not Found")
end
`

const outageCfg = `loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "db_mysql.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "app_lua.so"
modparam("usrloc", "db_url", "%DBURL%")
modparam("usrloc", "preload", "location")
modparam("usrloc", "db_mode", %DBMODE%)
modparam("usrloc", "timer_interval", 1)
modparam("auth_db", "db_url", "%DBURL%")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("app_lua", "load", "%DIR%/outage.lua")
`

var nonceRe = regexp.MustCompile(`nonce="([^"]*)"`)

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestDatabaseOutageWithKamailio runs Kamailio 5.6 (db_mysql) and kemi
// on one private MariaDB that the test stops and restarts: before, an
// authenticated REGISTER works and its contact reaches the location
// table (db_mode 2); while the server is down, auth_check fails (-1) on
// both, a REGISTER without authentication and lookups work from memory,
// and kemi logs one error naming the database (password redacted) and
// what failed; after the restart both authenticate again and write the
// contacts saved during the outage.
//
// With db_mode 1 (write-through) a REGISTER of a new AOR during the
// outage fails (500) as its write fails, and the record is dropped from
// memory, as Kamailio's registrar does.
func TestDatabaseOutageWithKamailio(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kamailio and MariaDB")
	}
	t.Run("db_mode=2", func(t *testing.T) { outage(t, 2, "200 OK", "200 Found sip:bob@192.0.2.2") })
	t.Run("db_mode=1", func(t *testing.T) { outage(t, 1, "500 Server Internal Error", "404 Not Found") })
}

// outage runs the scenario with usrloc's db_mode; saved is the reply to
// a REGISTER without authentication while the server is down, found the
// reply to a lookup of that contact then.
func outage(t *testing.T, dbMode int, saved, found string) {
	srv := kdbtest.StartMariaDB(t)
	url := srv.URL()
	db, err := kdb.Create(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	if err := db.G.Create(&kdb.Subscriber{Username: "alice", Domain: "example.com", Password: "alice-pw"}).Error; err != nil {
		t.Fatal(err)
	}
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "db_mysql.so", "usrloc.so", "registrar.so", "auth.so", "auth_db.so", "app_lua.so"},
		strings.NewReplacer("%DBURL%", url, "%DBMODE%", fmt.Sprint(dbMode)).Replace(outageCfg), map[string]string{"outage.lua": outageScript})
	alice := "sip:alice@example.com"

	// register sends a REGISTER for uri with contact, answering the
	// challenge with alice's password unless noauth; it returns the
	// final reply's status line.
	register := func(c *enginetest.Client, uri, contact string, noauth bool) string {
		t.Helper()
		hs := []string{"Contact: <" + contact + ">", "Expires: 600"}
		if noauth {
			r := c.Do(enginetest.Req{Method: "REGISTER", URI: uri, Headers: append(hs, "X-NoAuth: 1")}, 30*time.Second)
			return fmt.Sprint(r.StatusCode, " ", r.Reason)
		}
		r := c.Do(enginetest.Req{Method: "REGISTER", URI: uri, Headers: hs}, 30*time.Second)
		if r.StatusCode != 401 {
			return fmt.Sprint(r.StatusCode, " ", r.Reason)
		}
		h := r.GetHeader("WWW-Authenticate")
		m := nonceRe.FindStringSubmatch(h.Value())
		if m == nil {
			t.Fatalf("no nonce in %s", h.Value())
		}
		ha1 := md5hex("alice:example.com:alice-pw")
		resp := md5hex(ha1 + ":" + m[1] + ":" + md5hex("REGISTER:"+uri))
		cred := fmt.Sprintf(`Authorization: Digest username="alice", realm="example.com", nonce="%s", uri="%s", algorithm=MD5, response="%s"`, m[1], uri, resp)
		r = c.Do(enginetest.Req{Method: "REGISTER", URI: uri, Headers: append(hs, cred)}, 30*time.Second)
		return fmt.Sprint(r.StatusCode, " ", r.Reason)
	}
	lookup := func(c *enginetest.Client, uri string) string {
		r := c.Do(enginetest.Req{Method: "MESSAGE", URI: uri}, 30*time.Second)
		ru := ""
		if h := r.GetHeader("X-Ru"); h != nil {
			ru = " " + h.Value()
		}
		return fmt.Sprint(r.StatusCode, " ", r.Reason, ru)
	}
	both := func(what string, f func(c *enginetest.Client) string, want string) {
		t.Helper()
		kam, kemi := f(p.Kam), f(p.Kemi)
		if kam != kemi || kemi != want {
			t.Errorf("%s:\n kamailio: %s\n     kemi: %s\n     want: %s", what, kam, kemi, want)
		}
	}
	// waitRows waits until user has n location rows (one per server),
	// sending lookups meanwhile: kemi's usrloc timer runs at the first
	// operation once timer_interval has passed.
	waitRows := func(user string, n int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			var got int64
			err := db.G.Model(&kdb.Location{}).Where("username = ?", user).Count(&got).Error
			if err == nil && got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d location rows (%v), want %d", user, got, err, n)
			}
			lookup(p.Kemi, "sip:"+user+"@example.com")
			time.Sleep(50 * time.Millisecond)
		}
	}

	both("REGISTER before the outage", func(c *enginetest.Client) string {
		return register(c, alice, "sip:alice@192.0.2.1", false)
	}, "200 OK")
	both("lookup before the outage", func(c *enginetest.Client) string { return lookup(c, alice) }, "200 Found sip:alice@192.0.2.1")
	waitRows("alice", 2)

	srv.Stop()
	both("REGISTER with the database down", func(c *enginetest.Client) string {
		return register(c, alice, "sip:alice@192.0.2.1", false)
	}, "500 Auth -1")
	both("REGISTER without auth with the database down", func(c *enginetest.Client) string {
		return register(c, "sip:bob@example.com", "sip:bob@192.0.2.2", true)
	}, saved)
	both("lookup with the database down", func(c *enginetest.Client) string { return lookup(c, "sip:bob@example.com") }, found)
	both("REGISTER with the database down, again", func(c *enginetest.Client) string {
		return register(c, alice, "sip:alice@192.0.2.1", false)
	}, "500 Auth -1")
	log := p.KemiLog.String()
	if n := strings.Count(log, "database connection lost"); n != 1 {
		t.Errorf("kemi logged %d lost lines, want 1:\n%s", n, log)
	}
	if want := fmt.Sprintf("db=mysql://kamailio:xxxxx@127.0.0.1:%d/kamailio", srv.Port); !strings.Contains(log, want) ||
		!strings.Contains(log, `failed="select from subscriber"`) || strings.Contains(log, "kamailiorw") {
		t.Errorf("the lost line does not name %s and the failed select (password redacted):\n%s", want, log)
	}

	srv.Start()
	both("REGISTER after the restart", func(c *enginetest.Client) string {
		return register(c, alice, "sip:alice@192.0.2.1", false)
	}, "200 OK")
	if !p.KemiLog.WaitFor("database connection restored", 30*time.Second) {
		t.Errorf("kemi did not log the restored connection:\n%s", p.KemiLog.String())
	}
	if dbMode == 1 {
		// The failed REGISTER left nothing: bob registers again.
		both("REGISTER without auth after the restart", func(c *enginetest.Client) string {
			return register(c, "sip:bob@example.com", "sip:bob@192.0.2.2", true)
		}, "200 OK")
	}
	// bob, saved in memory during the outage (db_mode 2) or again now,
	// is written by both.
	waitRows("bob", 2)
	both("lookup after the restart", func(c *enginetest.Client) string { return lookup(c, "sip:bob@example.com") },
		"200 Found sip:bob@192.0.2.2")
}
