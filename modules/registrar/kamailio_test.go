package registrar_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/kdb"
	"kemi/kdb/kdbtest"
	"kemi/modules/internal/kamtest"
)

// sideBySideScript runs one KSR.registrar function per request, named by
// X-Op, and answers with its return code, $ru and $du in X-Result (save
// with flags 0 sends registrar's own reply, carrying X-Result added
// before it).
const sideBySideScript = `
-- the destination set: uri|dst_uri|q|flags|path of each branch
local function branches()
	local n = KSR.pv.get("$branch(count)")
	if n == nil then return "-" end
	local out = {}
	for i = 0, n - 1 do
		local function b(a) return tostring(KSR.pv.get("$(branch(" .. a .. ")[" .. i .. "])")) end
		out[#out + 1] = b("uri") .. "|" .. b("dst_uri") .. "|" .. b("q") .. "|" .. b("flags") .. "|" .. b("path")
	end
	return n .. ":" .. table.concat(out, ",")
end

function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	local op = KSR.hdr.get("X-Op") or ""
	local rc
	local tbl = KSR.hdr.get("X-Table") or "location"
	if KSR.hdr.get("X-Received") then
		KSR.pv.sets("$avp(RECEIVED)", KSR.hdr.get("X-Received"))
	end
	if op == "save" then
		KSR.hdr.append_to_reply("X-Result: registrar's reply\r\n")
		KSR.registrar.save("location", 0)
		return
	elseif op == "save-q" then
		KSR.hdr.append_to_reply("X-Result: " .. KSR.registrar.set_q_override(KSR.hdr.get("X-Q")) .. "\r\n")
		KSR.registrar.save("location", 0)
		return
	elseif op == "save-noreply" then
		rc = KSR.registrar.save(tbl, 2)
	elseif op == "save_uri" then
		rc = KSR.registrar.save_uri(tbl, 2, KSR.hdr.get("X-URI"))
	elseif op == "save-other" then
		rc = KSR.registrar.save(tbl, 0)
	elseif op == "lookup" then
		rc = KSR.registrar.lookup(tbl)
	elseif op == "lookup_branches" then
		rc = KSR.registrar.lookup_branches(tbl)
	elseif op == "lookup_uri" then
		rc = KSR.registrar.lookup_uri("location", KSR.hdr.get("X-URI"))
	elseif op == "registered_uri" then
		rc = KSR.registrar.registered_uri("location", KSR.hdr.get("X-URI"))
	elseif op == "registered" then
		rc = KSR.registrar.registered("location")
	elseif op == "unregister" then
		rc = KSR.registrar.unregister(tbl, KSR.pv.get("$ru"))
	elseif op == "lookup_to_dset" then
		rc = KSR.registrar.lookup_to_dset(tbl, KSR.hdr.get("X-URI") or "")
	elseif op == "registered_flags" then
		rc = KSR.registrar.registered_flags(tbl, KSR.hdr.get("X-URI") or "", 7)
	elseif op == "registered_action" then
		rc = KSR.registrar.registered_action(tbl, KSR.hdr.get("X-URI") or "", 1, 3)
	elseif op == "unregister_ruid" then
		-- the second contact's ruid, from the branch lookup appended
		KSR.registrar.lookup(tbl)
		local r = KSR.pv.get("$(branch(ruid)[0])") or "none"
		rc = KSR.registrar.unregister_ruid(tbl, KSR.hdr.get("X-URI"), r) .. " " ..
			KSR.registrar.unregister_ruid(tbl, KSR.hdr.get("X-URI"), "no-such-ruid")
	elseif op == "append_branch" then
		KSR.setbflag(3)
		KSR.pv.sets("$du", "sip:192.0.2.77:5070")
		rc = KSR.corex.append_branch() .. " " .. KSR.corex.append_branch_uri("sip:x1@192.0.2.78") .. " " ..
			KSR.corex.append_branch_uri_q("sip:x2@192.0.2.79", "0.25") .. " " ..
			KSR.corex.append_branch_uri_q("sip:x3@192.0.2.80", "2") .. " " ..
			tostring(KSR.isbflagset(3)) .. " " .. tostring(KSR.setbiflag(4, 2)) .. " " .. tostring(KSR.isbiflagset(4, 2)) ..
			" " .. tostring(KSR.isbiflagset(3, 0)) .. " " .. tostring(KSR.isbiflagset(4, 9)) .. " " .. tostring(KSR.setbiflag(4, 9))
	end
	KSR.hdr.append_to_reply("X-Result: " .. tostring(rc) .. " " .. tostring(KSR.pv.get("$ru")) .. " " .. tostring(KSR.pv.get("$du")) ..
		" " .. branches() .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end
`

const sideBySideCfg = `loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "%DBMOD%"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "corex.so"
loadmodule "app_lua.so"
modparam("usrloc", "db_url", "%DBURL%")
modparam("usrloc", "preload", "location")
modparam("usrloc", "db_mode", 1)
modparam("registrar", "max_contacts", 2)
modparam("registrar", "max_expires", 600)
modparam("registrar", "received_avp", "$avp(RECEIVED)")
modparam("registrar", "use_path", 1)
modparam("registrar", "method_filtering", 1)
modparam("app_lua", "load", "%DIR%/registrar.lua")
`

// TestSideBySideWithKamailio sends the same REGISTERs and lookups to
// Kamailio 5.6 and to kemi, both on usrloc db_mode 1 in one SQLite
// database made by kdb (kemi db init): the replies, return codes and
// R-URIs must match, and every location row either wrote must have its
// twin from the other.
func TestSideBySideWithKamailio(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	seed := filepath.Join(t.TempDir(), "seed.db")
	db, err := kdb.Create(seed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Init(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := os.ReadFile(seed)
	if err != nil {
		t.Fatal(err)
	}
	sideBySide(t, "db_sqlite.so", "sqlite:///%DIR%/kamailio.db", map[string]string{"kamailio.db": string(raw)},
		func(dir string) string { return filepath.Join(dir, "kamailio.db") })
}

// TestSideBySideWithKamailioMySQL is the same on MariaDB with db_mysql,
// in a database prepared by Kamailio's own SQL files, as kamdbctl create
// does: kemi works on Kamailio's MySQL tables, and both write the same
// rows.
func TestSideBySideWithKamailioMySQL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	url := kdbtest.MySQL(t)
	kdbtest.LoadKamailioSQL(t, url, "standard", "usrloc")
	sideBySide(t, "db_mysql.so", url, nil, func(string) string { return url })
}

// sideBySide runs the cases with usrloc's db_url url (driver module
// dbmod) and checks the rows in the database dbOf(dir) names.
func sideBySide(t *testing.T, dbmod, url string, files map[string]string, dbOf func(dir string) string) {
	if files == nil {
		files = map[string]string{}
	}
	files["registrar.lua"] = sideBySideScript
	cfg := strings.NewReplacer("%DBMOD%", dbmod, "%DBURL%", url).Replace(sideBySideCfg)
	p := kamtest.Start(t, []string{"sl.so", "pv.so", dbmod, "usrloc.so", "registrar.so", "corex.so", "app_lua.so"}, cfg, files)
	op := func(op, uri string, show []string, headers ...string) kamtest.Case {
		return kamtest.Case{Req: enginetest.Req{Method: map[bool]string{true: "REGISTER", false: "MESSAGE"}[strings.HasPrefix(op, "save")],
			URI: uri, Headers: append([]string{"X-Op: " + op}, headers...)}, Show: show}
	}
	c := []string{"Contact", "P-Registrar-Error"}
	bob, carol := "sip:bob@kemi.test", "sip:carol@kemi.test"
	compare(t, p, []kamtest.Case{
		op("save", bob, c, "Contact: <sip:bob@192.0.2.1:5090>;expires=120", "User-Agent: side-by-side"),
		op("save", bob, c, "Contact: <sip:bob2@192.0.2.2>;q=0.5", "Expires: 30"),
		op("save-noreply", bob, nil, "Contact: <sip:bob@192.0.2.1:5090>;expires=300"),
		op("save-noreply", bob, nil),
		op("save", bob, c),
		op("save", bob, c, "Contact: <sip:bob3@192.0.2.3>"),
		op("save-noreply", bob, nil, "Contact: <sip:bob3@192.0.2.3>"),
		op("lookup", bob, nil),
		op("lookup", "sip:nobody@kemi.test", nil),
		op("registered", bob, nil),
		op("registered", "sip:nobody@kemi.test", nil),
		op("lookup_uri", "sip:x@kemi.test", nil, "X-URI: sip:bob@kemi.test"),
		op("lookup_uri", "sip:x@kemi.test", nil, "X-URI: sip:nobody@kemi.test"),
		op("registered_uri", "sip:x@kemi.test", nil, "X-URI: sip:BOB@kemi.test"),
		op("registered_uri", "sip:x@kemi.test", nil, "X-URI: sip:carol@kemi.test"),
		op("lookup", "sip:bob@other.test", nil),
		op("lookup", bob, nil, "X-Table: nope"),
		op("lookup_branches", bob, nil),
		op("lookup_branches", "sip:nobody@kemi.test", nil),
		op("lookup_branches", bob, nil, "X-Table: nope"),
		op("save-noreply", bob, nil, "X-Table: nope", "Contact: <sip:bob@192.0.2.1:5090>"),
		op("save-other", bob, nil, "X-Table: nope", "Contact: <sip:bob@192.0.2.1:5090>"),
		op("unregister", "sip:nobody@kemi.test", nil),
		op("unregister", bob, nil, "X-Table: nope"),
		op("save", bob, c, "Contact: <sip:bob@192.0.2.1:5090>;q=2"),
		op("save", carol, c, "Contact: *", "Expires: 5"),
		op("save", carol, c, "Contact: <sip:carol@192.0.2.9>;expires=7200"),
		op("save-noreply", carol, nil, "Contact: <sip:carol@192.0.2.9>;expires=0"),
		op("save-noreply", carol, nil, "Contact: <sip:carol@192.0.2.9>"),
		op("save-noreply", carol, nil, "Contact: *", "Expires: 0"),
		op("registered", carol, nil),
		op("unregister", bob, nil),
		op("lookup", bob, nil),
		op("save", "sip:dave@kemi.test", c, "Contact: <sip:dave@10.0.0.5:5060>", "X-Received: sip:198.51.100.7:40000"),
		op("lookup", "sip:dave@kemi.test", nil),
		op("save", "sip:erin@kemi.test", append(c, "Path"), "Contact: <sip:erin@10.0.0.6>", "Path: <sip:edge.example.net;lr>", "Supported: path"),
		op("lookup", "sip:erin@kemi.test", nil),
		op("save_uri", "sip:frank@kemi.test", nil, "X-URI: sip:Grace@kemi.test", "Contact: <sip:grace@10.0.0.7>"),
		op("lookup", "sip:grace@kemi.test", nil),
		op("lookup", "sip:frank@kemi.test", nil),
		op("unregister", "sip:grace@kemi.test", nil),
		op("unregister", "sip:dave@kemi.test", nil),
		op("unregister", "sip:erin@kemi.test", nil),
		// Several contacts: the best q rewrites the R-URI, the others
		// become branches (append_branches), skipping contacts whose
		// methods lack MESSAGE (method_filtering).
		op("save-noreply", "sip:heidi@kemi.test", nil, "Contact: <sip:heidi@192.0.2.21>;q=0.2, <sip:heidi@192.0.2.22>;q=0.9",
			"X-Received: sip:198.51.100.9:5062"),
		op("lookup", "sip:heidi@kemi.test", nil),
		op("lookup_branches", "sip:heidi@kemi.test", nil),
		op("unregister", "sip:heidi@kemi.test", nil),
		op("save-noreply", "sip:heidi@kemi.test", nil, "Contact: <sip:heidi@192.0.2.24>;q=0.5", "Allow: INVITE, ACK, BYE, CANCEL"),
		op("save-noreply", "sip:heidi@kemi.test", nil, "Contact: <sip:heidi@192.0.2.25>;q=0.4;methods=\"MESSAGE,INVITE\""),
		op("lookup", "sip:heidi@kemi.test", nil),
		op("lookup_to_dset", "sip:heidi@kemi.test", nil),
		op("save-noreply", "sip:heidi@kemi.test", nil, "Contact: <sip:heidi@192.0.2.25>;q=0.4", "Allow: MESSAGE"),
		op("lookup_to_dset", "sip:x@kemi.test", nil, "X-URI: sip:heidi@kemi.test"),
		op("unregister_ruid", "sip:heidi@kemi.test", nil, "X-URI: sip:heidi@kemi.test"),
		op("save-noreply", "sip:heidi@kemi.test", nil, "Contact: <sip:heidi@192.0.2.24>;q=0.5", "Allow: MESSAGE"),
		op("unregister_ruid", "sip:heidi@kemi.test", nil, "X-URI: "),
		op("lookup_to_dset", "sip:x@kemi.test", nil, "X-URI: sip:heidi@kemi.test"),
		op("lookup_to_dset", "sip:x@kemi.test", nil, "X-URI: sip:nobody@kemi.test"),
		op("registered_flags", "sip:heidi@kemi.test", nil),
		op("registered_flags", "sip:x@kemi.test", nil, "X-URI: sip:nobody@kemi.test"),
		op("registered_action", "sip:x@kemi.test", nil, "X-URI: sip:heidi@kemi.test"),
		op("save-noreply", "sip:ivan@kemi.test", nil, "Contact: <sip:ivan@192.0.2.31>", "Allow: INVITE, BYE"),
		op("lookup", "sip:ivan@kemi.test", nil),
		op("append_branch", "sip:judy@kemi.test", nil),
		op("unregister_ruid", "sip:heidi@kemi.test", nil, "X-URI: sip:heidi@kemi.test"),
		op("lookup", "sip:heidi@kemi.test", nil),
		op("unregister", "sip:heidi@kemi.test", nil),
		op("unregister", "sip:ivan@kemi.test", nil),
		op("save-q", "sip:judy@kemi.test", c, "X-Q: 0.3", "Contact: <sip:judy@192.0.2.41>;q=0.9"),
		op("save-q", "sip:judy@kemi.test", c, "X-Q: 1", "Contact: <sip:judy@192.0.2.42>;q=bad"),
		op("save-q", "sip:judy@kemi.test", c, "X-Q: 2", "Contact: <sip:judy@192.0.2.43>;q=0.2"),
		op("save-q", "sip:judy@kemi.test", c, "X-Q: junk", "Contact: <sip:judy@192.0.2.44>"),
		op("unregister", "sip:judy@kemi.test", nil),
		op("save", carol, c, "Contact: <sip:carol@192.0.2.9>, <sip:carol@192.0.2.10>;q=0.1", "Expires: 3600"),
	})

	// The location rows: each written by both, so each shape twice.
	db, err := kdb.Open(dbOf(p.Dir))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []kdb.Location
	if err := db.G.Order("contact").Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range rows {
		dom := "NULL"
		if r.Domain != nil {
			dom = *r.Domain
		}
		// Both write local time (db_sqlite a Julian day): carol's last
		// save asked for an hour, max_expires makes it ten minutes.
		if d := time.Until(r.Expires.Time); d < 9*time.Minute || d > 10*time.Minute+time.Second {
			t.Errorf("location row %s %s: expires %v, %v from now, want ten minutes", r.Contact, r.Callid, r.Expires, d)
		}
		k := fmt.Sprintf("%s|%s|%s|%s|%g|%d|%d|%v", r.Username, dom, r.Contact, r.UserAgent, r.Q, r.Cseq, r.ConnectionID,
			r.Expires.Sub(r.LastModified.Time).Round(time.Second))
		count[k]++
	}
	var keys []string
	for k, n := range count {
		keys = append(keys, k)
		if n != 2 {
			t.Errorf("location row %s: %d copies, want 2 (one from each)", k, n)
		}
	}
	sort.Strings(keys)
	if len(keys) != 2 {
		t.Errorf("location rows: %q, want carol's two contacts", keys)
	}
}

var expiresRe = regexp.MustCompile(`expires=(\d+)`)

// roundExpires rounds each expires=N to the nearest ten: a contact saved
// by an earlier request may be a second older on one side than on the
// other (each server has its own clock ticks between the exchanges), and
// the cases' expires are multiples of ten.
func roundExpires(s string) string {
	return expiresRe.ReplaceAllStringFunc(s, func(m string) string {
		n, _ := strconv.Atoi(m[len("expires="):])
		return "expires=" + strconv.Itoa((n+5)/10*10)
	})
}

// compare is kamtest.Pair.Compare allowing the one-second drift above.
func compare(t *testing.T, p *kamtest.Pair, cases []kamtest.Case) {
	t.Helper()
	for _, c := range cases {
		kam := kamtest.Exchange(t, p.Kam, c.Req, c.Mangle, c.Show...)
		kemi := kamtest.Exchange(t, p.Kemi, c.Req, c.Mangle, c.Show...)
		if kam != kemi && roundExpires(kam) != roundExpires(kemi) {
			t.Errorf("%s %s %q:\n kamailio: %s\n     kemi: %s", c.Req.Method, c.Req.URI, c.Req.Headers, kam, kemi)
		} else {
			t.Logf("%s %q: %s", c.Req.Method, c.Req.Headers, kemi)
		}
	}
}
