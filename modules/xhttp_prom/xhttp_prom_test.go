package xhttp_prom_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"kemi/engine"
	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

const script = `
function ksr_request_route()
	local x = KSR.xhttp_prom
	local r = {
		x.counter_inc_l1("calls", 2, KSR.pv.get("$rm")),
		x.gauge_set_l0("load", "0.75"),
		x.histogram_observe_l2("lat", "0.3", "main", "udp"),
		x.dispatch(),   -- not HTTP: 1
		x.check_uri(),  -- 0
	}
	KSR.hdr.append_to_reply("X-Result: " .. table.concat(r, " ") .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end
function ksr_xhttp_event(evname)
	if KSR.xhttp_prom.check_uri() == 1 then
		KSR.xhttp_prom.dispatch()
	end
end
`

func cfg(extra ...string) string {
	return enginetest.Config(append([]string{`loadmodule "xhttp.so"`, `loadmodule "xhttp_prom.so"`,
		`listen=tcp:127.0.0.1:0`,
		`modparam("xhttp", "event_callback", "ksr_xhttp_event")`,
		`modparam("xhttp_prom", "prom_counter", "name=calls;label=method")`,
		`modparam("xhttp_prom", "prom_gauge", "name=load")`,
		`modparam("xhttp_prom", "prom_histogram", "name=lat;label=route:proto;buckets=0.1:0.5")`,
	}, extra...)...)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: enginetest.Patience}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestScriptMetrics: the script's calls show on /metrics of the JSON-RPC
// listener and of the SIP tcp listener (the xhttp event callback calling
// dispatch), alike, before the statistics; the RPC commands change them.
func TestScriptMetrics(t *testing.T) {
	e := enginetest.Start(t, cfg(), map[string]string{"script.lua": script})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	for range 2 {
		res := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience)
		if h := res.GetHeader("X-Result"); h == nil || h.Value() != "1 1 1 1 0" {
			t.Fatalf("X-Result %v", h)
		}
	}
	want := []string{
		"# User defined metrics\n# TYPE kamailio_calls counter\nkamailio_calls{method=\"OPTIONS\"} 4\n",
		"kamailio_load 0.750000\n",
		`kamailio_lat_bucket{route="main", proto="udp", le="0.100000"} 0`,
		`kamailio_lat_bucket{route="main", proto="udp", le="0.500000"} 2`,
		`kamailio_lat_bucket{route="main", proto="udp", le="+Inf"} 2`,
		`kamailio_lat_sum{route="main", proto="udp"} 0.600000`,
		"# Kamailio whole internal statistics\n",
		"kamailio_core_rcv_requests_options 2\n",
	}
	rpcURL := "http://" + e.RPC().Addr().String() + engine.MetricsPath
	code, viaRPC := get(t, rpcURL)
	sipCode, viaSIP := get(t, "http://"+e.Addr("tcp")+"/metrics")
	for _, body := range []string{viaRPC, viaSIP} {
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("missing %q in\n%s", w, body)
			}
		}
	}
	if code != 200 || sipCode != 200 || !strings.HasPrefix(viaSIP, "# User defined metrics\n") {
		t.Errorf("codes %d %d", code, sipCode)
	}
	if code, _ := get(t, "http://"+e.Addr("tcp")+"/metrics?x=1"); code != 404 {
		t.Errorf("/metrics?x=1: %d (check_uri compares the whole URL)", code)
	}

	ctx := context.Background()
	call := func(method string, params ...any) (json.RawMessage, error) {
		return jsonrpc.Call(ctx, e.RPCURL(), method, params)
	}
	for _, c := range []struct {
		method string
		params []any
		fault  string
	}{
		{"xhttp_prom.counter_inc", []any{"calls", 5, "INVITE"}, ""},
		{"xhttp_prom.counter_reset", []any{"calls", "OPTIONS"}, ""},
		{"xhttp_prom.gauge_set", []any{"load", 2.5}, ""},
		{"xhttp_prom.histogram_observe", []any{"lat", 0.05, "rpc", "tcp"}, ""},
		{"xhttp_prom.gauge_reset", []any{"calls"}, "Failed to reset gauge: calls"},
		{"xhttp_prom.counter_inc", []any{"calls"}, "required number argument"},
		{"xhttp_prom.counter_inc", []any{"nope", 1}, "Failed to add to counter: nope"},
		{"xhttp_prom.gauge_set", []any{}, "required gauge identifier"},
	} {
		_, err := call(c.method, c.params...)
		if (err == nil) != (c.fault == "") || (err != nil && !strings.Contains(err.Error(), c.fault)) {
			t.Errorf("%s %v: %v, want fault %q", c.method, c.params, err, c.fault)
		}
	}
	res, err := call("xhttp_prom.metric_list_print")
	var list string
	if err != nil || json.Unmarshal(res, &list) != nil {
		t.Fatalf("metric_list_print: %s %v", res, err)
	}
	for _, w := range []string{`kamailio_calls{method="OPTIONS"} 0`, `kamailio_calls{method="INVITE"} 5`, "kamailio_load 2.500000",
		`kamailio_lat_count{route="rpc", proto="tcp"} 1`} {
		if !strings.Contains(list, w) {
			t.Errorf("metric_list_print: missing %q in\n%s", w, list)
		}
	}
	if strings.Contains(list, "core_rcv") {
		t.Errorf("metric_list_print shows statistics:\n%s", list)
	}
}

// TestPrefixAndStats: xhttp_prom_beginning names the script metrics too;
// a single statistic that does not exist answers 500, as Kamailio.
func TestPrefixAndStats(t *testing.T) {
	e := enginetest.Start(t, cfg(`modparam("xhttp_prom", "xhttp_prom_beginning", "k_")`,
		`modparam("xhttp_prom", "xhttp_prom_stats", "rcv_requests")`), map[string]string{"script.lua": script})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience)
	_, body := get(t, "http://"+e.Addr("tcp")+"/metrics")
	for _, w := range []string{`k_calls{method="OPTIONS"} 2`, "\nk_core_rcv_requests 1\n"} {
		if !strings.Contains(body, w) {
			t.Errorf("missing %q in\n%s", w, body)
		}
	}
	if strings.Contains(body, "rcv_replies") {
		t.Errorf("xhttp_prom_stats rcv_requests shows more:\n%s", body)
	}

	e = enginetest.Start(t, cfg(`modparam("xhttp_prom", "xhttp_prom_stats", "no_such_stat")`), map[string]string{"script.lua": script})
	if code, body := get(t, "http://"+e.Addr("tcp")+"/metrics"); code != 500 || body != "Internal Server Error" {
		t.Errorf("unknown statistic: %d %q", code, body)
	}
}

// TestBadParameters: a malformed metric is refused with its file:line.
func TestBadParameters(t *testing.T) {
	for _, p := range []string{
		`modparam("xhttp_prom", "prom_counter", "label=a")`,
		`modparam("xhttp_prom", "prom_histogram", "name=h;buckets=2:1")`,
		`modparam("xhttp_prom", "prom_gauge", "name=g;color=red")`,
		`modparam("xhttp_prom", "xhttp_prom_timeout", -1)`,
	} {
		_, err := enginetest.TryStart(t, cfg(p), map[string]string{"script.lua": script})
		if err == nil || !strings.Contains(err.Error(), "kemi.cfg:") {
			t.Errorf("%s: %v", p, err)
		}
	}
	// xhttp_prom_timeout 0 keeps label sets for ever; buf_size is ignored
	enginetest.Start(t, cfg(`modparam("xhttp_prom", "xhttp_prom_timeout", 0)`, `modparam("xhttp_prom", "xhttp_prom_buf_size", 1024)`),
		map[string]string{"script.lua": script})
}
