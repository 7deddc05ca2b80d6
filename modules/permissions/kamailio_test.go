package permissions_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kemi/jsonrpc"
	"kemi/kdb"
	"kemi/modules/internal/kamtest"
)

func sp(s string) *string { return &s }

// seedAddresses are address rows covering Kamailio's cases: hosts and
// subnets of both families, port 0 (any) and a fixed port, mask 0 (a
// host), one address in two groups, a domain name, tags and NULL tags.
var seedAddresses = []kdb.Address{
	{Grp: 1, IPAddr: "127.0.0.1", Mask: 32, Port: 0, Tag: sp("local")},
	{Grp: 2, IPAddr: "10.0.0.0", Mask: 8, Port: 5060},
	{Grp: 3, IPAddr: "192.168.1.0", Mask: 24, Port: 0, Tag: sp("lan")},
	{Grp: 2, IPAddr: "192.168.0.0", Mask: 16, Port: 0, Tag: sp("")},
	{Grp: 4, IPAddr: "2001:db8::", Mask: 32, Port: 0, Tag: sp("v6net")},
	{Grp: 5, IPAddr: "2001:db8::1", Mask: 0, Port: 5060, Tag: sp("v6host")},
	{Grp: 6, IPAddr: "example.com", Mask: 0, Port: 0, Tag: sp("dom")},
	{Grp: 7, IPAddr: "127.0.0.1", Mask: 0, Port: 0, Tag: sp("seven")},
	{Grp: 1, IPAddr: "203.0.113.5", Mask: 32, Port: 5070},
	{Grp: 8, IPAddr: "0.0.0.0", Mask: 1, Port: 0},
	{Grp: 9, IPAddr: "[2001:db8::2]", Mask: 128, Port: 0, Tag: sp("bracket")},
	{Grp: 6, IPAddr: "sip.example.org", Mask: 0, Port: 5061},
}

// TestSideBySideWithKamailio loads one address table (made by kdb) into
// Kamailio 5.6 and kemi and compares the address functions, the tag AVP,
// and the RPC dumps and reload.
func TestSideBySideWithKamailio(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	script, err := os.ReadFile("../../tests/lua/eval.lua")
	if err != nil {
		t.Fatal(err)
	}
	seed := filepath.Join(t.TempDir(), "seed.db")
	db, err := kdb.Create(seed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	for _, a := range seedAddresses {
		if err := db.G.Create(&a).Error; err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.StartKam(t, []string{"sl.so", "pv.so", "db_sqlite.so", "permissions.so", "jsonrpcs.so", "app_lua.so"}, `
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "db_sqlite.so"
loadmodule "permissions.so"
loadmodule "app_lua.so"
modparam("permissions", "db_url", "sqlite:///%DIR%/kamailio.db")
modparam("permissions", "db_mode", 1)
modparam("permissions", "peer_tag_avp", "$avp(s:ptag)")
modparam("permissions", "reload_delta", 0)
modparam("app_lua", "load", "%DIR%/eval.lua")
`, `loadmodule "jsonrpcs.so"
modparam("jsonrpcs", "transport", 0)
`, map[string]string{"eval.lua": string(script), "kamailio.db": string(raw)})

	// with runs f and appends the tag AVP's value.
	with := func(f string) string {
		return "(function() local r = " + f + " return tostring(r) .. '/' .. tostring(KSR.pv.get('$avp(ptag)')) end)()"
	}
	var cases []kamtest.Case
	for _, g := range []string{"0", "1", "2", "7", "8", "-1"} {
		cases = append(cases, kamtest.Eval("MESSAGE", "sip:a@example.com", with("KSR.permissions.allow_source_address("+g+")")))
	}
	cases = append(cases, kamtest.Eval("MESSAGE", "sip:a@example.com", with("KSR.permissions.allow_source_address_group()")))
	for _, c := range []struct{ addr, port string }{
		{"127.0.0.1", "5060"}, {"10.1.2.3", "5060"}, {"10.1.2.3", "5061"}, {"192.168.1.7", "0"}, {"192.168.2.7", "9"},
		{"192.169.0.1", "1"}, {"2001:db8::1", "5060"}, {"2001:db8::1", "5061"}, {"[2001:db8::1]", "5060"},
		{"2001:db8:0:0:0:0:0:1", "5060"}, {"2001:db8:ffff::9", "1"}, {"2001:db9::1", "1"}, {"2001:db8::2", "7"},
		{"example.com", "5"}, {"EXAMPLE.com", "5"}, {"sip.example.org", "5061"}, {"sip.example.org", "5060"},
		{"203.0.113.5", "5070"}, {"203.0.113.5", "5071"}, {"100.1.1.1", "1"}, {"200.1.1.1", "1"}, {"", "0"},
		{"300.0.0.1", "1"}, {"1.2.3", "1"}, {"::ffff:127.0.0.1", "1"},
	} {
		a := "'" + c.addr + "', " + c.port
		for _, g := range []string{"1", "2", "3", "4", "5", "6", "8", "9"} {
			cases = append(cases, kamtest.Eval("MESSAGE", "sip:a@example.com", with("KSR.permissions.allow_address("+g+", "+a+")")))
		}
		cases = append(cases, kamtest.Eval("MESSAGE", "sip:a@example.com", with("KSR.permissions.allow_address_group("+a+")")))
	}
	p.Compare(t, cases)

	rpc := func(method string) (kam, kemi string) {
		req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "id": 1})
		kamExpr := "(function() KSR.jsonrpcs.exec('" + string(req) + "') return KSR.pv.get('$jsonrpl(body)') end)()"
		r := kamtest.Exchange(t, p.Kam, kamtest.Eval("MESSAGE", "sip:a@example.com", kamExpr).Req, nil)
		_, body, _ := strings.Cut(r, "X-Result: string:")
		var k struct {
			Result any
			Error  *struct {
				Code    int
				Message string
			}
		}
		if err := json.Unmarshal([]byte(body), &k); err != nil {
			t.Fatalf("%s: kamailio replied %q: %v", method, r, err)
		}
		kam = norm(k.Result, k.Error)
		res, err := jsonrpc.Call(context.Background(), p.KemiRPC, method, nil)
		var f *jsonrpc.Fault
		switch {
		case errors.As(err, &f):
			kemi = norm(nil, &struct {
				Code    int
				Message string
			}{f.Code, f.Message})
		case err != nil:
			t.Fatalf("%s: kemi: %v", method, err)
		default:
			var v any
			json.Unmarshal(res, &v)
			kemi = norm(v, nil)
		}
		return kam, kemi
	}
	check := func(method string) {
		kam, kemi := rpc(method)
		if kam != kemi {
			t.Errorf("%s:\n kamailio: %s\n     kemi: %s", method, kam, kemi)
		} else {
			t.Logf("%s: %s", method, kemi)
		}
	}
	for _, m := range []string{"permissions.addressDump", "permissions.subnetDump", "permissions.domainDump"} {
		check(m)
	}
	// A row added, then reloaded by both.
	db, err = kdb.Open(filepath.Join(p.Dir, "kamailio.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.G.Create(&kdb.Address{Grp: 3, IPAddr: "198.51.100.0", Mask: 25, Port: 0, Tag: sp("new")}).Error; err != nil {
		t.Fatal(err)
	}
	check("permissions.addressReload")
	check("permissions.subnetDump")
	p.Compare(t, []kamtest.Case{
		kamtest.Eval("MESSAGE", "sip:a@example.com", with("KSR.permissions.allow_address(3, '198.51.100.100', 1)")),
		kamtest.Eval("MESSAGE", "sip:a@example.com", with("KSR.permissions.allow_address(3, '198.51.100.200', 1)")),
	})
	// An invalid row (group 0) fails the reload; the loaded table stays.
	if err := db.G.Create(&kdb.Address{Grp: 0, IPAddr: "198.51.100.9", Mask: 32}).Error; err != nil {
		t.Fatal(err)
	}
	db.Close()
	check("permissions.addressReload")
	check("permissions.addressDump")
}

// norm is a result or fault as comparable text (maps marshal with sorted
// keys).
func norm(result any, fault *struct {
	Code    int
	Message string
}) string {
	if fault != nil {
		return fmt.Sprintf("fault %d: %s", fault.Code, fault.Message)
	}
	b, _ := json.Marshal(result)
	return string(b)
}

// seedTrusted are trusted rows: protocols (any, upper case, none),
// POSIX basic regular expressions on the From URI and the R-URI (\|
// alternation, a literal +, a bracket class with \{\}), priorities and
// NULL tags.
var seedTrusted = []kdb.Trusted{
	{SrcIP: "127.0.0.1", Proto: "udp", FromPattern: sp("^sip:alice@"), Tag: sp("t-alice")},
	{SrcIP: "127.0.0.1", Proto: "tcp", Tag: sp("t-tcp"), Priority: 10},
	{SrcIP: "127.0.0.1", Proto: "any", FromPattern: sp("bob"), RuriPattern: sp("example\\.org$"), Tag: sp("t-bob"), Priority: 5},
	{SrcIP: "127.0.0.1", Proto: "UDP", FromPattern: sp("carol\\|dave"), Tag: sp("t-cd"), Priority: 1},
	{SrcIP: "10.0.0.1", Proto: "any"},
	{SrcIP: "127.0.0.1", Proto: "none", Tag: sp("never")},
	{SrcIP: "127.0.0.1", Proto: "any", FromPattern: sp("^sip:x+y@"), Tag: sp("t-plus")},
	{SrcIP: "127.0.0.1", Proto: "udp", RuriPattern: sp("^sip:[[:digit:]]\\{3\\}@"), Tag: sp("t-digits"), Priority: 2},
	{SrcIP: "127.0.0.1", Proto: "any", FromPattern: sp("(grp)"), Tag: sp("t-paren"), Priority: 3},
}

// TestTrustedSideBySide compares allow_trusted with Kamailio 5.6 on one
// trusted table: cached (db_mode 1, first match) and queried (db_mode 0,
// peer_tag_mode 1: every match counted and tagged).
func TestTrustedSideBySide(t *testing.T) {
	for _, mode := range []struct{ db, tagMode int }{{1, 0}, {0, 1}} {
		t.Run(fmt.Sprintf("db_mode=%d,peer_tag_mode=%d", mode.db, mode.tagMode), func(t *testing.T) {
			trustedSideBySide(t, mode.db, mode.tagMode)
		})
	}
}

func trustedSideBySide(t *testing.T, dbMode, tagMode int) {
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	script, err := os.ReadFile("../../tests/lua/eval.lua")
	if err != nil {
		t.Fatal(err)
	}
	seed := filepath.Join(t.TempDir(), "seed.db")
	db, err := kdb.Create(seed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	for _, r := range seedTrusted {
		if err := db.G.Create(&r).Error; err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.StartKam(t, []string{"sl.so", "pv.so", "db_sqlite.so", "permissions.so", "jsonrpcs.so", "app_lua.so"}, fmt.Sprintf(`
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "db_sqlite.so"
loadmodule "permissions.so"
loadmodule "app_lua.so"
modparam("permissions", "db_url", "sqlite:///%%DIR%%/kamailio.db")
modparam("permissions", "db_mode", %d)
modparam("permissions", "peer_tag_mode", %d)
modparam("permissions", "peer_tag_avp", "$avp(s:ptag)")
modparam("permissions", "reload_delta", 0)
modparam("app_lua", "load", "%%DIR%%/eval.lua")
`, dbMode, tagMode), `loadmodule "jsonrpcs.so"
modparam("jsonrpcs", "transport", 0)
`, map[string]string{"eval.lua": string(script), "kamailio.db": string(raw)})
	expr := "(function() local r = KSR.permissions.allow_trusted() return tostring(r) .. '/' .. tostring(KSR.pv.get('$(avp(ptag)[*])')) end)()"
	var cases []kamtest.Case
	for _, c := range []struct{ from, ruri string }{
		{"alice", "sip:bob@example.com"}, {"bob", "sip:x@example.org"}, {"bob", "sip:x@example.com"},
		{"carol", "sip:x@example.com"}, {"dave", "sip:x@example.com"}, {"x+y", "sip:x@example.com"},
		{"xxy", "sip:x@example.com"}, {"nobody", "sip:123@example.com"}, {"nobody", "sip:12@example.com"},
		{"(grp)", "sip:x@example.com"}, {"grp", "sip:x@example.com"}, {"nobody", "sip:x@example.com"},
		{"alice", "sip:123@example.com"}, {"carolbob", "sip:456@example.org"}, {"(grp)x+y", "sip:789@example.org"},
	} {
		from := c.from
		k := kamtest.Eval("MESSAGE", c.ruri, expr, "X-From: "+from)
		k.Mangle = func(s string) string {
			return strings.Replace(s, "From: <sip:alice@example.com>", "From: <sip:"+from+"@example.com>", 1)
		}
		cases = append(cases, k)
	}
	p.Compare(t, cases)
	for _, m := range []string{"permissions.trustedDump", "permissions.trustedReload"} {
		req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": m, "id": 1})
		kamExpr := "(function() KSR.jsonrpcs.exec('" + string(req) + "') return KSR.pv.get('$jsonrpl(body)') end)()"
		r := kamtest.Exchange(t, p.Kam, kamtest.Eval("MESSAGE", "sip:a@example.com", kamExpr).Req, nil)
		_, body, _ := strings.Cut(r, "X-Result: string:")
		var k struct {
			Result any
			Error  *struct {
				Code    int
				Message string
			}
		}
		if err := json.Unmarshal([]byte(body), &k); err != nil {
			t.Fatalf("%s: kamailio replied %q: %v", m, r, err)
		}
		kam := norm(k.Result, k.Error)
		var kemi string
		res, err := jsonrpc.Call(context.Background(), p.KemiRPC, m, nil)
		var f *jsonrpc.Fault
		switch {
		case errors.As(err, &f):
			kemi = norm(nil, &struct {
				Code    int
				Message string
			}{f.Code, f.Message})
		case err != nil:
			t.Fatalf("%s: kemi: %v", m, err)
		default:
			var v any
			json.Unmarshal(res, &v)
			kemi = norm(v, nil)
		}
		if kam != kemi {
			t.Errorf("%s:\n kamailio: %s\n     kemi: %s", m, kam, kemi)
		} else {
			t.Logf("%s: %s", m, kemi)
		}
	}
}
