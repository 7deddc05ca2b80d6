package auth_db_test

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"kemi/engine/enginetest"
	"kemi/kdb"
	"kemi/kdb/kdbtest"
	"kemi/modules/internal/kamtest"
)

// sideBySideScript challenges (X-Op: challenge, with X-Realm and
// X-Flags) or checks the request's credentials and answers with
// has_credentials, auth_check and consume_credentials in X-Result.
const sideBySideScript = `
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	local op = KSR.hdr.get("X-Op") or ""
	local realm = KSR.hdr.get("X-Realm") or ""
	local flags = tonumber(KSR.hdr.get("X-Flags") or "0")
	if op == "challenge" then
		KSR.hdr.append_to_reply("X-Result: challenge\r\n")
		KSR.auth.auth_challenge(realm, flags)
		return
	end
	local r = {}
	if op == "subscriber" then
		for _, u in ipairs({"sip:alice@example.com", "sip:alice@other.org", "sip:carol@example.com", "", "junk"}) do
			for f = 0, 3 do
				r[#r + 1] = KSR.auth_db.is_subscriber(u, "subscriber", f)
			end
		end
		KSR.hdr.append_to_reply("X-Result: " .. table.concat(r, " ") .. "\r\n")
		KSR.sl.send_reply(200, "OK")
		return
	end
	r[#r + 1] = KSR.auth.has_credentials(realm)
	r[#r + 1] = KSR.auth.pv_auth_check(realm, "alice-pw", 0, flags)
	r[#r + 1] = KSR.auth.pv_auth_check(realm, "` + "0a2f1b4c4f2f0e0c7a5d0c0a0b0c0d0e" + `", 1, 0)
	r[#r + 1] = KSR.auth_db.auth_check(realm, "subscriber", flags)
	r[#r + 1] = KSR.auth.consume_credentials()
	KSR.hdr.append_to_reply("X-Result: " .. table.concat(r, " ") .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end
`

const sideBySideCfg = `loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "%DBMOD%"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "app_lua.so"
modparam("auth_db", "db_url", "%DBURL%")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("app_lua", "load", "%DIR%/auth.lua")
`

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

var nonceRe = regexp.MustCompile(`nonce="([^"]*)"`)

// TestSideBySideWithKamailio challenges Kamailio 5.6 and kemi, answers
// each one's challenge the same ways (right and wrong password, unknown
// user, other realm, forged nonce, qop=auth, a user other than To's),
// and compares the challenges (nonces aside) and the return codes, both
// reading one subscriber table made by kdb.
func TestSideBySideWithKamailio(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	seed := filepath.Join(t.TempDir(), "seed.db")
	subscribers(t, seed)
	raw, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	sideBySide(t, "db_sqlite.so", "sqlite:///%DIR%/kamailio.db", map[string]string{"kamailio.db": string(raw)})
}

// TestSideBySideWithKamailioMySQL is the same on MariaDB with db_mysql,
// the subscriber table made by kemi (kemi db init) and read by Kamailio.
func TestSideBySideWithKamailioMySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	url := kdbtest.MySQL(t)
	subscribers(t, url)
	sideBySide(t, "db_mysql.so", url, nil)
}

// subscribers makes Kamailio's tables in url and adds alice and bob.
func subscribers(t *testing.T, url string) {
	db, err := kdb.Create(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	for _, u := range []kdb.Subscriber{{Username: "alice", Domain: "example.com", Password: "alice-pw"}, {Username: "bob", Domain: "example.com", Password: "bob-pw"}} {
		if err := db.G.Create(&u).Error; err != nil {
			t.Fatal(err)
		}
	}
}

func sideBySide(t *testing.T, dbmod, url string, files map[string]string) {
	if files == nil {
		files = map[string]string{}
	}
	files["auth.lua"] = sideBySideScript
	cfg := strings.NewReplacer("%DBMOD%", dbmod, "%DBURL%", url).Replace(sideBySideCfg)
	p := kamtest.Start(t, []string{"sl.so", "pv.so", dbmod, "auth.so", "auth_db.so", "app_lua.so"}, cfg, files)

	challenge := func(c *enginetest.Client, method, uri string, flags int) (string, string) {
		hdr := "WWW-Authenticate"
		if method != "REGISTER" {
			hdr = "Proxy-Authenticate"
		}
		s := kamtest.Exchange(t, c, enginetest.Req{Method: method, URI: uri,
			Headers: []string{"X-Op: challenge", "X-Realm: example.com", fmt.Sprintf("X-Flags: %d", flags)}}, nil, hdr)
		m := nonceRe.FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("no nonce in %s", s)
		}
		return m[1], nonceRe.ReplaceAllString(s, `nonce="..."`)
	}
	type answer struct {
		method, uri, user, pw, realm, qop string
		flags                             int
		forge                             bool
	}
	check := func(c *enginetest.Client, a answer) string {
		nonce, _ := challenge(c, a.method, a.uri, 0)
		if a.forge {
			nonce = "A" + nonce[1:]
		}
		ha1 := md5hex(a.user + ":" + a.realm + ":" + a.pw)
		ha2 := md5hex(a.method + ":" + a.uri)
		cred := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5`, a.user, a.realm, nonce, a.uri)
		if a.qop != "" {
			cred += fmt.Sprintf(`, qop=%s, nc=00000001, cnonce="c0ffee", response="%s"`, a.qop,
				md5hex(ha1+":"+nonce+":00000001:c0ffee:"+a.qop+":"+ha2))
		} else {
			cred += fmt.Sprintf(`, response="%s"`, md5hex(ha1+":"+nonce+":"+ha2))
		}
		hdr := "Authorization"
		if a.method != "REGISTER" {
			hdr = "Proxy-Authorization"
		}
		return kamtest.Exchange(t, c, enginetest.Req{Method: a.method, URI: a.uri,
			Headers: []string{hdr + ": " + cred, "X-Realm: example.com", fmt.Sprintf("X-Flags: %d", a.flags)}}, nil)
	}
	alice := "sip:alice@example.com"
	for _, ch := range []struct {
		method string
		flags  int
	}{{"REGISTER", 0}, {"REGISTER", 1}, {"REGISTER", 16}, {"INVITE", 0}, {"MESSAGE", 2}} {
		_, kam := challenge(p.Kam, ch.method, alice, ch.flags)
		_, kemi := challenge(p.Kemi, ch.method, alice, ch.flags)
		if kam != kemi {
			t.Errorf("challenge %s %d:\n kamailio: %s\n     kemi: %s", ch.method, ch.flags, kam, kemi)
		}
	}
	for _, a := range []answer{
		{method: "REGISTER", uri: alice, user: "alice", pw: "alice-pw", realm: "example.com"},
		{method: "REGISTER", uri: alice, user: "alice", pw: "alice-pw", realm: "example.com", flags: 1},
		{method: "REGISTER", uri: alice, user: "alice", pw: "wrong", realm: "example.com"},
		{method: "REGISTER", uri: alice, user: "mallory", pw: "x", realm: "example.com"},
		{method: "REGISTER", uri: alice, user: "alice", pw: "alice-pw", realm: "other.org"},
		{method: "REGISTER", uri: alice, user: "alice", pw: "alice-pw", realm: "example.com", forge: true},
		{method: "REGISTER", uri: alice, user: "alice", pw: "alice-pw", realm: "example.com", qop: "auth"},
		{method: "REGISTER", uri: "sip:bob@example.com", user: "alice", pw: "alice-pw", realm: "example.com", flags: 1},
		{method: "REGISTER", uri: "sip:bob@example.com", user: "bob", pw: "bob-pw", realm: "example.com", flags: 1},
		{method: "INVITE", uri: "sip:bob@example.com", user: "alice", pw: "alice-pw", realm: "example.com", flags: 1},
		{method: "INVITE", uri: "sip:bob@example.com", user: "bob", pw: "bob-pw", realm: "example.com", flags: 1},
		{method: "MESSAGE", uri: "sip:bob@example.com", user: "bob", pw: "wrong", realm: "example.com"},
	} {
		kam, kemi := check(p.Kam, a), check(p.Kemi, a)
		if kam != kemi {
			t.Errorf("%+v:\n kamailio: %s\n     kemi: %s", a, kam, kemi)
		} else {
			t.Logf("%+v: %s", a, strings.TrimSpace(kemi))
		}
	}
	r := enginetest.Req{Method: "MESSAGE", URI: alice, Headers: []string{"X-Op: subscriber"}}
	if kam, kemi := kamtest.Exchange(t, p.Kam, r, nil), kamtest.Exchange(t, p.Kemi, r, nil); kam != kemi {
		t.Errorf("is_subscriber:\n kamailio: %s\n     kemi: %s", kam, kemi)
	} else {
		t.Logf("is_subscriber: %s", kemi)
	}
	// No credentials at all.
	for _, m := range []string{"REGISTER", "INVITE"} {
		r := enginetest.Req{Method: m, URI: alice, Headers: []string{"X-Realm: example.com"}}
		if kam, kemi := kamtest.Exchange(t, p.Kam, r, nil), kamtest.Exchange(t, p.Kemi, r, nil); kam != kemi {
			t.Errorf("%s without credentials:\n kamailio: %s\n     kemi: %s", m, kam, kemi)
		}
	}
}
