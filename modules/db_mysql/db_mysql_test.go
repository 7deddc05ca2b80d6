package db_mysql_test

import (
	"strings"
	"testing"
	"time"

	"kemi/config"
	"kemi/engine"
	"kemi/engine/enginetest"
	"kemi/kdb"
	"kemi/kdb/kdbtest"
	"kemi/modules/db_mysql"
)

func load(lines ...string) (*engine.Settings, error) {
	src := "loadmodule \"db_mysql.so\"\nloadmodule \"app_lua.so\"\n" + strings.Join(lines, "\n") + "\nmodparam(\"app_lua\", \"load\", \"s.lua\")\n"
	c, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
	if err != nil {
		return nil, err
	}
	return engine.FromConfig(c, "kemi.cfg")
}

func options(t *testing.T, s *engine.Settings) kdb.Options {
	t.Helper()
	for _, m := range s.Mods {
		if d, ok := m.(*db_mysql.Module); ok {
			return d.Options()
		}
	}
	t.Fatal("no db_mysql module")
	return kdb.Options{}
}

// TestParams: Kamailio's defaults, the three parameters kemi honours,
// the ignored ones with a notice, and file:line errors.
func TestParams(t *testing.T) {
	s, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if o := options(t, s); o.Timeout != 2*time.Second || o.PingInterval != 300*time.Second || o.NoReconnect {
		t.Errorf("defaults: %+v", o)
	}
	s, err = load(`modparam("db_mysql", "timeout_interval", 5)`, `modparam("db_mysql", "ping_interval", 0)`,
		`modparam("db_mysql", "auto_reconnect", 0)`, `modparam("db_mysql", "opt_ssl_mode", 1)`, `modparam("db_mysql", "insert_delayed", 1)`)
	if err != nil {
		t.Fatal(err)
	}
	if o := options(t, s); o.Timeout != 5*time.Second || o.PingInterval != 0 || !o.NoReconnect {
		t.Errorf("set: %+v", o)
	}
	notices := strings.Join(s.Notices, "\n")
	if !strings.Contains(notices, "kemi.cfg:6") || !strings.Contains(notices, "opt_ssl_mode") || !strings.Contains(notices, "insert_delayed") {
		t.Errorf("notices: %s", notices)
	}
	for _, bad := range []string{`modparam("db_mysql", "timeout_interval", -1)`, `modparam("db_mysql", "ping_interval", "x")`,
		`modparam("db_mysql", "no_such", 1)`} {
		if _, err := load(bad); err == nil || !strings.Contains(err.Error(), "kemi.cfg:3") {
			t.Errorf("%s: %v, want an error at kemi.cfg:3", bad, err)
		}
	}
}

// TestAutoReconnectOff runs kemi with auth_db on a private MariaDB and
// db_mysql's auto_reconnect 0: after the server's restart the lost
// connection stays lost, as in Kamailio, which proves the module's
// settings reach the modules that open mysql:// URLs.
func TestAutoReconnectOff(t *testing.T) {
	srv := kdbtest.StartMariaDB(t)
	db, err := kdb.Create(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	db.G.Create(&kdb.Subscriber{Username: "alice", Domain: "example.com", Password: "pw"})
	db.Close()
	cfg := enginetest.Config(`loadmodule "db_mysql.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
modparam("db_mysql", "auto_reconnect", 0)
modparam("auth_db", "db_url", "` + srv.URL() + `")`)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": `
function ksr_request_route()
	KSR.hdr.append_to_reply("X-Result: " .. KSR.auth_db.is_subscriber("sip:alice@example.com", "subscriber", 2) .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end
`})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	result := func() string {
		return c.Do(enginetest.Req{Method: "MESSAGE"}, 30*time.Second).GetHeader("X-Result").Value()
	}
	if r := result(); r != "1" {
		t.Fatalf("is_subscriber with the server up: %s", r)
	}
	srv.Stop()
	if r := result(); r != "-1" {
		t.Fatalf("is_subscriber with the server down: %s", r)
	}
	srv.Start()
	if r := result(); r != "-1" {
		t.Fatalf("is_subscriber after the restart with auto_reconnect 0: %s, want -1", r)
	}
	if !e.Log.Contains("auto_reconnect is 0") {
		t.Errorf("log:\n%s", e.Log.String())
	}
}
