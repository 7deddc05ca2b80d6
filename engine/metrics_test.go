package engine_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"kemi/engine"
	"kemi/engine/enginetest"
)

// scrape reads url's metrics in the Prometheus text format: every sample
// by its name with labels, as written; types checked to be declared once.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		b, _ := io.ReadAll(res.Body)
		t.Fatalf("GET %s: %s %s\n%s", url, res.Status, res.Header.Get("Content-Type"), b)
	}
	out := map[string]float64{}
	typed := map[string]bool{}
	current := "" // the family of the last TYPE line
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			if typed[f[2]] {
				t.Errorf("TYPE of %s twice", f[2])
			}
			typed[f[2]] = true
			current = f[2]
			if f[3] != "counter" && f[3] != "gauge" && f[3] != "histogram" {
				t.Errorf("type %q", line)
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q", line)
		}
		name := line[:i]
		base, _, _ := strings.Cut(name, "{")
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(base, suf); ok && typed[b] {
				base = b
			}
		}
		if !typed[base] {
			t.Errorf("sample %q before its TYPE", line)
		} else if base != current {
			t.Errorf("sample %q apart from its family %s", line, base)
		}
		out[name] = v
	}
	return out
}

func TestMetricsMoveWithTraffic(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(`loadmodule "xhttp.so"`, `loadmodule "xhttp_prom.so"`, `loadmodule "mqueue.so"`,
		`modparam("xhttp_prom", "xhttp_prom_stats", "all")`, `modparam("mqueue", "mqueue", "name=q1")`,
		`modparam("xhttp_prom", "http_listen", "127.0.0.1:0")`,
		`loadmodule "rtimer.so"`, `modparam("rtimer", "timer", "name=t1;interval=1;mode=1")`, `modparam("rtimer", "exec", "timer=t1;route=tick")`,
		`modparam("rtimer", "timer", "name=t2;interval=1;mode=1")`, `modparam("rtimer", "exec", "timer=t2;route=tick")`),
		map[string]string{"script.lua": `function ksr_request_route()
	if KSR.is_MESSAGE() then error("boom") end
	KSR.sl.send_reply(200, "OK")
end
function tick() end`})
	url := "http://" + e.RPC().Addr().String() + engine.MetricsPath
	before := scrape(t, url)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	for range 3 {
		if res := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); res == nil || res.StatusCode != 200 {
			t.Fatalf("reply %v", res)
		}
	}
	// sl counts a reply once it is sent: the client may hold the last reply
	// before the worker counted it.
	// The same for the Lua call histogram, recorded when the call returns.
	waitFor(t, "three replies and three calls counted", func() bool {
		now := scrape(t, url)
		return now["kamailio_sl_sent_replies"]-before["kamailio_sl_sent_replies"] == 3 &&
			now[`kemi_lua_call_seconds_count{function="ksr_request_route"}`] >= 3
	})
	after := scrape(t, url)
	for name, d := range map[string]float64{"kamailio_core_rcv_requests": 3, "kamailio_core_rcv_requests_options": 3,
		"kamailio_sl_200_replies": 3, "kamailio_sl_sent_replies": 3} {
		if got := after[name] - before[name]; got != d {
			t.Errorf("%s moved by %v, want %v", name, got, d)
		}
	}
	for _, name := range []string{`kemi_rtimer_ticks_total{timer="t1"}`, `kemi_rtimer_skipped_total{timer="t2"}`, "go_goroutines", "kemi_vms", `kemi_queue_length{queue="q1"}`, "kamailio_shmem_used_size", "kemi_script_version"} {
		if _, ok := after[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if n := after[`kemi_lua_call_seconds_count{function="ksr_request_route"}`]; n < 3 {
		t.Errorf("kemi_lua_call_seconds_count = %v, want >= 3", n)
	}
	if after[`kemi_lua_call_seconds_bucket{function="ksr_request_route",le="+Inf"}`] != after[`kemi_lua_call_seconds_count{function="ksr_request_route"}`] {
		t.Error("+Inf bucket differs from the count")
	}
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE"}))
	waitFor(t, "the script error in the metrics", func() bool {
		return scrape(t, url)[`kemi_lua_errors_total{function="ksr_request_route"}`] == 1
	})
	own := scrape(t, "http://"+e.MetricsAddr().String()+engine.MetricsPath)
	if own["kamailio_core_rcv_requests"] != scrape(t, url)["kamailio_core_rcv_requests"] {
		t.Errorf("own listener: %v", own["kamailio_core_rcv_requests"])
	}
}

// TestGrafanaDashboard loads packaging/grafana/kemi-dashboard.json and
// checks that every metric its queries use is one kemi exports (scraped
// from a running engine after some traffic and a script error).
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../packaging/grafana/kemi-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.Title == "" || len(dash.Panels) < 8 {
		t.Fatalf("dashboard %q with %d panels", dash.Title, len(dash.Panels))
	}
	e := enginetest.Start(t, enginetest.Config(`loadmodule "xhttp.so"`, `loadmodule "xhttp_prom.so"`, `loadmodule "mqueue.so"`,
		`modparam("mqueue", "mqueue", "name=q1")`),
		map[string]string{"script.lua": `function ksr_request_route()
	if KSR.is_MESSAGE() then error("boom") end
	KSR.sl.send_reply(200, "OK")
end`})
	url := "http://" + e.RPC().Addr().String() + engine.MetricsPath
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience)
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE"}))
	var have map[string]bool
	waitFor(t, "the script error in the metrics", func() bool {
		have = map[string]bool{}
		for name := range scrape(t, url) {
			base, _, _ := strings.Cut(name, "{")
			have[base] = true
		}
		return have["kemi_lua_errors_total"]
	})
	onlyAfterEvent := map[string]bool{"kemi_lua_budget_kills_total": true} // needs max_exec_ms and a slow script
	metric := regexp.MustCompile(`\b(kamailio|kemi|go)_[A-Za-z0-9_]+`)
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := metric.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: no metric in %q", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !have[n] && !onlyAfterEvent[n] {
					t.Errorf("panel %q uses %s, which kemi does not export", p.Title, n)
				}
			}
		}
	}
}
