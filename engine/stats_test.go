package engine_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"kemi/engine/enginetest"
)

// TestStatisticsMoveWithTraffic checks Kamailio's statistic names over
// RPC: requests received by method, replies sent statelessly by code.
func TestStatisticsMoveWithTraffic(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(), map[string]string{"script.lua": `
function ksr_request_route()
	if KSR.is_OPTIONS() then KSR.sl.send_reply(200, "OK") return end
	KSR.sl.sl_send_reply(404, "Not Here")
end`})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	for _, m := range []string{"OPTIONS", "OPTIONS", "MESSAGE"} {
		if res := c.Do(enginetest.Req{Method: m}, enginetest.Patience); res == nil {
			t.Fatalf("%s: no reply", m)
		}
	}
	ctx := context.Background()
	call := func(method string, params ...any) json.RawMessage {
		t.Helper()
		res, err := e.RPC().Call(ctx, method, params...)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		return res
	}
	// sl counts a reply once it is sent, as Kamailio's sl_send_reply does:
	// the client may hold the last reply before the worker counted it.
	waitFor(t, "three replies counted", func() bool {
		var n string
		json.Unmarshal(call("stats.get_statistics", "sl:sent_replies"), &n)
		return n == "sl:sent_replies = 3"
	})
	var lines []string
	if err := json.Unmarshal(call("stats.get_statistics", "all"), &lines); err != nil {
		t.Fatal(err)
	}
	all := strings.Join(lines, "\n")
	for _, w := range []string{"core:rcv_requests = 3", "core:rcv_requests_options = 2", "core:rcv_requests_message = 1",
		"core:rcv_requests_invite = 0", "sl:200_replies = 2", "sl:404_replies = 1", "sl:sent_replies = 3", "shmem:used_size = "} {
		if !strings.Contains(all, w+"\n") && !strings.HasSuffix(all, w) && !strings.Contains(all, w) {
			t.Errorf("stats.get_statistics all lacks %q:\n%s", w, all)
		}
	}
	var one string
	if err := json.Unmarshal(call("stats.get_statistics", "sl:200_replies"), &one); err != nil || one != "sl:200_replies = 2" {
		t.Errorf("one statistic: %q %v", one, err)
	}
	var fetched map[string]string
	json.Unmarshal(call("stats.fetch", "core:"), &fetched)
	if fetched["core.rcv_requests"] != "3" || fetched["sl.200_replies"] != "" {
		t.Errorf("stats.fetch core: %v", fetched)
	}
	var sl map[string]int
	json.Unmarshal(call("sl.stats"), &sl)
	if sl["200"] != 2 || sl["404"] != 1 || sl["4xx"] != 0 {
		t.Errorf("sl.stats: %v", sl)
	}
	call("stats.reset_statistics", "sl:")
	json.Unmarshal(call("stats.get_statistics", "sl:200_replies"), &one)
	if one != "sl:200_replies = 0" {
		t.Errorf("after reset: %q", one)
	}
	var psx []map[string]any
	json.Unmarshal(call("core.psx"), &psx)
	if len(psx) < 2 || psx[0]["IDX"] != 0.0 || psx[0]["DSC"] == "" {
		t.Errorf("core.psx: %v", psx)
	}
	var info map[string]any
	json.Unmarshal(call("core.info"), &info)
	if !strings.HasPrefix(info["version"].(string), "kemi ") {
		t.Errorf("core.info: %v", info)
	}
	var v string
	json.Unmarshal(call("core.version"), &v)
	if !strings.HasPrefix(v, "kemi ") || !strings.Contains(v, "/linux)") {
		t.Errorf("core.version: %q", v)
	}
}

// TestStatisticsStatelessForwarding counts KSR.forward and the reply that
// comes back without a transaction, as Kamailio's core:fwd_requests and
// core:fwd_replies.
func TestStatisticsStatelessForwarding(t *testing.T) {
	proxy := enginetest.Start(t, proxyConfig(), map[string]string{"script.lua": proxyScript})
	uas := newPeer(t)
	c := enginetest.Dial(t, "udp", proxy.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: uas.uri(), Headers: []string{"X-Mode: stateless"}}))
	req, src := uas.request("MESSAGE", enginetest.Patience)
	uas.reply(req, src, 202, "Accepted", "u")
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 202 {
		t.Fatalf("stateless reply: %v %v", res, err)
	}
	st := proxy.Stats()
	waitFor(t, "fwd_replies", func() bool { v, _ := st.Value("core", "fwd_replies"); return v == 1 })
	for name, want := range map[string]int64{"fwd_requests": 1, "rcv_replies_2xx": 1, "rcv_requests_message": 1, "drop_replies": 0} {
		if v, _ := st.Value("core", name); v != want {
			t.Errorf("core:%s = %d, want %d", name, v, want)
		}
	}
}

// TestScriptStatistics declares statistics with the statistics module,
// changes them from Lua and reads them with $stat and over RPC.
func TestScriptStatistics(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(`loadmodule "statistics.so"`,
		`modparam("statistics", "variable", "calls")`, `modparam("statistics", "variable", "kept/no_reset")`),
		map[string]string{"script.lua": `
function ksr_request_route()
	KSR.statistics.update_stat("calls", 2)
	KSR.statistics.update_stat("kept", 1)
	local bad = KSR.statistics.update_stat("nope", 1)
	KSR.sl.send_reply(200, "calls=" .. KSR.pv.get("$stat(calls)") .. " bad=" .. bad ..
		" rcv=" .. KSR.pv.get("$stat(rcv_requests)"))
end`})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	if res := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); res.Reason != "calls=2 bad=-1 rcv=1" {
		t.Fatalf("reply %q", res.Reason)
	}
	res, err := e.RPC().Call(context.Background(), "stats.get_statistics", "script:")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	json.Unmarshal(res, &lines)
	if strings.Join(lines, ",") != "script:calls = 2,script:kept = 1" {
		t.Errorf("script: %q", lines)
	}
	e.RPC().Call(context.Background(), "stats.reset_statistics", "script:")
	if v, _ := e.Stats().Value("script", "calls"); v != 0 {
		t.Errorf("calls after reset: %d", v)
	}
	if v, _ := e.Stats().Value("script", "kept"); v != 1 {
		t.Errorf("no_reset statistic after reset: %d", v)
	}
}

// TestReloadStatistics counts reloads done and refused.
func TestReloadStatistics(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(), map[string]string{"script.lua": versionScript("a")})
	writeScript(t, e, versionScript("b"))
	if err := reload(t, e); err != nil {
		t.Fatal(err)
	}
	writeScript(t, e, "function ksr_request_route()\n  if then\nend\n")
	if err := reload(t, e); err == nil {
		t.Fatal("a broken script reloaded")
	}
	for name, want := range map[string]int64{"reloads": 1, "reloads_refused": 1} {
		if v, _ := e.Stats().Value("kemi", name); v != want {
			t.Errorf("kemi:%s = %d, want %d", name, v, want)
		}
	}
}

// TestTMXStatistics: tm's transactions counted as tmx counts them, over
// stats.get_statistics, tm.stats and /metrics; resets leave them alone
// (Kamailio's STAT_IS_FUNC). modules/tm/stats_kamailio_test.go compares
// them with Kamailio's.
func TestTMXStatistics(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(`loadmodule "xhttp.so"`, `loadmodule "xhttp_prom.so"`,
		`modparam("xhttp_prom", "xhttp_prom_stats", "tmx:")`), map[string]string{"script.lua": `
function ksr_request_route()
	if KSR.is_OPTIONS() then KSR.sl.send_reply(200, "OK") return end
	KSR.tm.t_newtran()
	KSR.tm.t_reply(404, "Not Here")
end`})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	for _, m := range []string{"OPTIONS", "MESSAGE", "MESSAGE"} {
		if res := c.Do(enginetest.Req{Method: m}, enginetest.Patience); res == nil {
			t.Fatalf("%s: no reply", m)
		}
	}
	ctx := context.Background()
	get := func(sel string) string {
		t.Helper()
		res, err := e.RPC().Call(ctx, "stats.get_statistics", sel)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		if json.Unmarshal(res, &lines) != nil {
			var one string
			json.Unmarshal(res, &one)
			lines = []string{one}
		}
		return strings.Join(lines, "\n")
	}
	waitFor(t, "two transactions answered", func() bool { return strings.Contains(get("tmx:"), "tmx:rpl_sent = 2") })
	call := func(method string, params ...any) {
		t.Helper()
		if _, err := e.RPC().Call(ctx, method, params...); err != nil {
			t.Fatal(err)
		}
	}
	call("stats.reset_statistics", "tmx:")
	tmx := get("tmx:")
	for _, w := range []string{"tmx:UAS_transactions = 2", "tmx:UAC_transactions = 0", "tmx:4xx_transactions = 2",
		"tmx:2xx_transactions = 0", "tmx:rpl_generated = 2", "tmx:rpl_relayed = 0", "tmx:rpl_received = 0", "tmx:active_transactions = 0"} {
		if !strings.Contains(tmx, w) {
			t.Errorf("missing %q in\n%s", w, tmx)
		}
	}
	res, err := e.RPC().Call(ctx, "tm.stats")
	var tm map[string]int
	if err != nil || json.Unmarshal(res, &tm) != nil || tm["total"] != 2 || tm["4xx"] != 2 || tm["rpl_generated"] != 2 || tm["rpl_sent"] != 2 {
		t.Errorf("tm.stats: %s %v", res, err)
	}
	m := scrape(t, "http://"+e.RPC().Addr().String()+"/metrics")
	if m["kamailio_tmx_UAS_transactions"] != 2 || m["kamailio_tmx_4xx_transactions"] != 2 {
		t.Errorf("/metrics: UAS %v 4xx %v", m["kamailio_tmx_UAS_transactions"], m["kamailio_tmx_4xx_transactions"])
	}
	if _, ok := m["kamailio_sl_sent_replies"]; ok {
		t.Error("xhttp_prom_stats tmx: shows sl")
	}
}
