package xhttp_prom_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/modules/internal/kamtest"
)

// sideBySideScript runs the X-Op operations of a request on the script
// metrics and answers their return codes in X-Result; the xhttp event
// callback serves /metrics with prom_dispatch, as Kamailio's examples do.
const sideBySideScript = `
function ksr_request_route()
	if KSR.is_OPTIONS() and KSR.hdr.get("X-Op") == nil then
		KSR.sl.send_reply(200, "OK")
		return
	end
	local r = {}
	local x = KSR.xhttp_prom
	local op = KSR.hdr.get("X-Op") or ""
	if op == "first" then
		r[#r+1] = x.counter_inc_l2("calls", 3, "INVITE", "200")
		r[#r+1] = x.counter_inc_l2("calls", 1, "BYE", "200")
		r[#r+1] = x.counter_inc_l0("plain", 2)
		r[#r+1] = x.counter_inc_l0("plain", -2)
		r[#r+1] = x.counter_inc_l1("calls", 1, "x")
		r[#r+1] = x.counter_inc_l2("calls", 1, "x", "")
		r[#r+1] = x.counter_inc_l0("", 1)
		r[#r+1] = x.gauge_set_l1("temp", "21.5abc", "kitchen")
		r[#r+1] = x.gauge_set_l1("temp", "", "hall")
		r[#r+1] = x.gauge_set_l1("temp", "x", "hall")
		r[#r+1] = x.gauge_set_l1("temp", -3.25, "cellar")
		r[#r+1] = x.gauge_set_l3("three", "1e3", "a", "b", "c")
		r[#r+1] = x.histogram_observe_l1("lat", "0.5", "main")
		r[#r+1] = x.histogram_observe_l1("lat", "20", "main")
		r[#r+1] = x.histogram_observe_l1("lat", "0.1", "other")
		r[#r+1] = x.histogram_observe_l0("dflt", "0.005")
		r[#r+1] = x.histogram_observe_l0("dflt", "7")
		r[#r+1] = x.histogram_observe_l0("calls", "7")
		r[#r+1] = x.counter_reset_l0("nope")
		r[#r+1] = x.gauge_reset_l1("calls", "a")
		r[#r+1] = x.counter_reset_l2("calls", "BYE", "")
		r[#r+1] = x.counter_reset_l2("calls", "CANCEL", "487")
		r[#r+1] = x.check_uri()
		r[#r+1] = x.dispatch()
	elseif op == "second" then
		r[#r+1] = x.counter_inc_l2("calls", 4, "INVITE", "200")
		r[#r+1] = x.counter_reset_l2("calls", "BYE", "200")
		r[#r+1] = x.gauge_reset_l1("temp", "kitchen")
		r[#r+1] = x.gauge_set_l1("temp", "0.000001", "hall")
		r[#r+1] = x.counter_inc_l3("calls", 1, "a", "b", "c")
		r[#r+1] = x.histogram_observe_l1("lat", "1", "main")
		r[#r+1] = x.histogram_observe_l1("lat", "10.5", "main")
		r[#r+1] = x.counter_reset_l1("c1", "a")
		r[#r+1] = x.counter_reset_l3("c3", "a", "b", "c")
		r[#r+1] = x.counter_inc_l3("c3", 7, "a", "b", "c")
		r[#r+1] = x.counter_reset_l3("c3", "a", "b", "")
		r[#r+1] = x.gauge_set_l0("g0", "-0.5e1")
		r[#r+1] = x.gauge_reset_l0("g0")
		r[#r+1] = x.gauge_set_l2("g2", "3", "a", "b")
		r[#r+1] = x.gauge_reset_l2("g2", "c", "d")
		r[#r+1] = x.gauge_reset_l3("three", "d", "e", "f")
		r[#r+1] = x.gauge_reset_l3("g2", "d", "e", "f")
		r[#r+1] = x.histogram_observe_l2("h2", "0.25", "a", "b")
		r[#r+1] = x.histogram_observe_l3("h3", "2", "a", "b", "c")
		r[#r+1] = x.histogram_observe_l3("h3", "1", "a", "b", "c")
		r[#r+1] = x.histogram_observe_l3("h3", "", "a", "b", "c")
	end
	KSR.hdr.append_to_reply("X-Result: " .. table.concat(r, " ") .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end

function ksr_xhttp_event(evname)
	local r = KSR.xhttp_prom.check_uri()
	if r == 1 then
		KSR.xhttp_prom.dispatch()
		return
	end
	KSR.xhttp.xhttp_reply(404, "Not Found", "text/plain", "check_uri " .. r)
end
`

const sideBySideCfg = `loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "xhttp.so"
loadmodule "xhttp_prom.so"
loadmodule "app_lua.so"
tcp_accept_no_cl=yes
modparam("xhttp", "event_callback", "ksr_xhttp_event")
modparam("xhttp_prom", "xhttp_prom_stats", "")
modparam("xhttp_prom", "prom_counter", "name=calls;label=method:code")
modparam("xhttp_prom", "prom_counter", "name=plain;")
modparam("xhttp_prom", "prom_gauge", "name=temp;label=room")
modparam("xhttp_prom", "prom_gauge", "name=three;label=x:y:z")
modparam("xhttp_prom", "prom_histogram", "name=lat;label=route;buckets=0.1:1:10")
modparam("xhttp_prom", "prom_histogram", "name=dflt")
modparam("xhttp_prom", "prom_counter", "name=unused")
modparam("xhttp_prom", "prom_counter", "name=c1;label=a")
modparam("xhttp_prom", "prom_counter", "name=c3;label=a:b:c")
modparam("xhttp_prom", "prom_gauge", "name=g0")
modparam("xhttp_prom", "prom_gauge", "name=g2;label=a:b")
modparam("xhttp_prom", "prom_histogram", "name=h2;label=a:b;buckets=0.25:0.5")
modparam("xhttp_prom", "prom_histogram", "name=h3;label=a:b:c;buckets=1")
modparam("app_lua", "load", "%DIR%/prom.lua")
`

var timestamp = regexp.MustCompile(` [0-9]{13}$`)

// metricLines fetches url and returns its lines but kemi's TYPE lines and
// kemi's own metrics, Kamailio's timestamps cut off.
func metricLines(t *testing.T, url string) (status int, lines []string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); res.StatusCode == 200 && ct != "text/plain; version=0.0.4" {
		t.Errorf("GET %s: Content-Type %q", url, ct)
	}
	for _, l := range strings.Split(string(b), "\n") {
		// kemi adds its own metrics (kemi_*, go_*) after Kamailio's
		if l == "" || strings.HasPrefix(l, "# TYPE ") || strings.HasPrefix(l, "kemi_") ||
			strings.HasPrefix(l, "go_") || strings.HasPrefix(l, "# HELP ") {
			continue
		}
		lines = append(lines, timestamp.ReplaceAllString(l, ""))
	}
	return res.StatusCode, lines
}

// TestSideBySideWithKamailio runs the same script metric calls in
// Kamailio 5.6 and kemi, compares the return codes, then fetches /metrics
// from both SIP tcp listeners (the xhttp event callback calling
// prom_dispatch) and compares the lines: names, labels, values and
// order; Kamailio's timestamps and kemi's TYPE lines aside.
func TestSideBySideWithKamailio(t *testing.T) {
	p := kamtest.StartTCP(t, []string{"xhttp.so", "xhttp_prom.so", "app_lua.so"}, sideBySideCfg,
		map[string]string{"prom.lua": sideBySideScript})
	compare := func(what string) {
		t.Helper()
		for _, path := range []string{"/metrics", "/other"} {
			ks, kam := metricLines(t, "http://"+p.KamTCP+path)
			es, kemi := metricLines(t, "http://"+p.KemiTCP+path)
			if ks != es || strings.Join(kam, "\n") != strings.Join(kemi, "\n") {
				t.Errorf("%s GET %s:\n--- kamailio %d\n%s\n--- kemi %d\n%s", what, path, ks, strings.Join(kam, "\n"), es, strings.Join(kemi, "\n"))
			} else if path == "/metrics" {
				t.Logf("%s: %d lines alike", what, len(kemi))
			}
		}
	}
	compare("before any call")
	for _, op := range []string{"first", "second"} {
		p.Compare(t, []kamtest.Case{{Req: enginetest.Req{Method: "OPTIONS", URI: "sip:prom@127.0.0.1", Headers: []string{"X-Op: " + op}}}})
		compare(fmt.Sprintf("after %q", op))
	}
}
