package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kemi/engine"
	"kemi/engine/enginetest"
)

// A handler stuck in an endless loop is stopped after max_exec_ms, logged
// with its traceback, and its worker goes on serving.
func TestRunawayHandlerIsStopped(t *testing.T) {
	script := `
function spin()
	local n = 0
	while true do n = n + 1 end
end
function ksr_request_route()
	if KSR.is_method("SPIN") then spin() end
	KSR.sl.send_reply(200, "OK")
end`
	cfg := strings.Replace(enginetest.Config(`modparam("app_lua", "max_exec_ms", 100)`), "children=2", "children=1", 1)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": script})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "SPIN"}))
	if !e.Log.WaitFor("time budget", enginetest.Patience) {
		t.Fatalf("runaway handler not stopped:\n%s", e.Log)
	}
	if !e.Log.Contains("in function 'spin'") {
		t.Fatalf("no traceback naming the looping function:\n%s", e.Log)
	}
	// children=1: the same (only) worker must answer now.
	if r := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); r.StatusCode != 200 {
		t.Fatalf("after the runaway: %d", r.StatusCode)
	}
}

// Requests missing a mandatory header get 400 when they can be answered,
// and never reach the script.
func TestMalformedRequests(t *testing.T) {
	script := `
function ksr_request_route()
	KSR.mqueue.mq_add("seen", KSR.pv.get("$rm") or "?", "")
	KSR.sl.send_reply(200, "OK")
end`
	e := enginetest.Start(t, enginetest.Config(`loadmodule "mqueue.so"`, `modparam("mqueue", "mqueue", "name=seen")`),
		map[string]string{"script.lua": script})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	good := c.Build(enginetest.Req{Method: "OPTIONS"})
	drop := func(raw, header string) string {
		var out []string
		for _, l := range strings.Split(raw, "\r\n") {
			if !strings.HasPrefix(l, header+":") {
				out = append(out, l)
			}
		}
		return strings.Join(out, "\r\n")
	}
	for _, h := range []string{"From", "To", "Call-ID", "CSeq"} {
		c.Send(drop(good, h))
		r, err := c.RecvResponse(enginetest.Patience)
		if err != nil || r.StatusCode != 400 {
			t.Errorf("request without %s: %v %v, want 400", h, r, err)
		}
	}
	// No Via: nowhere to send a reply; dropped.
	c.Send(drop(good, "Via"))
	if r, err := c.RecvResponse(300 * time.Millisecond); err == nil {
		t.Errorf("request without Via got %d", r.StatusCode)
	}
	// Garbage and truncated datagrams are dropped.
	for _, raw := range []string{"\x00\x01\x02garbage", good[:40], "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP \r\n\r\n", strings.Repeat("A", 60000)} {
		c.Send(raw)
	}
	if r := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); r.StatusCode != 200 {
		t.Fatalf("after malformed input: %d", r.StatusCode)
	}
	if n := e.Queues().Get("seen").Len(); n != 1 {
		t.Fatalf("the script ran %d times; malformed requests must not reach it", n)
	}
	if st := e.Status(); st.Counters["sip_bad_requests"] < 4 {
		t.Fatalf("bad request counter %d", st.Counters["sip_bad_requests"])
	}
}

// coroScript runs as a coroutine (it mentions KSR.async.sleep): YIELD calls
// coroutine.yield() in the handler itself, SPIN loops there.
const coroScript = `
function ksr_request_route()
	if KSR.is_method("NEVER") then KSR.async.sleep(1) end
	if KSR.is_method("YIELD") then
		coroutine.yield()
	end
	if KSR.is_method("SPIN") then
		while true do end
	end
	KSR.sl.send_reply(200, "OK")
end`

// coroutine.yield() in a request handler is a Lua error naming its line,
// handled as any Lua error (logged, no reply); the worker goes on.
func TestBareYieldInHandlerIsAnError(t *testing.T) {
	cfg := strings.Replace(asyncCfg(), "children=2", "children=1", 1)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": coroScript})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "YIELD"}))
	if !e.Log.WaitFor("can not yield from outside of a coroutine", 10*time.Second) {
		t.Fatalf("no error logged for coroutine.yield in the handler:\n%s", e.Log)
	}
	if !e.Log.Contains("script.lua:5: can not yield") {
		t.Fatalf("the error does not name the line:\n%s", e.Log)
	}
	if r := c.Do(enginetest.Req{Method: "OPTIONS"}, 5*time.Second); r.StatusCode != 200 {
		t.Fatalf("after the yield: %d", r.StatusCode)
	}
}

// A coroutine handler stopped by max_exec_ms names where it was stopped and
// logs a traceback (it was empty when the loop was in the handler itself).
func TestBudgetStopInCoroutineHandlerNamesPosition(t *testing.T) {
	cfg := strings.Replace(asyncCfg(`modparam("app_lua", "max_exec_ms", 100)`), "children=2", "children=1", 1)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": coroScript})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "SPIN"}))
	if !e.Log.WaitFor("time budget", 10*time.Second) {
		t.Fatalf("runaway handler not stopped:\n%s", e.Log)
	}
	if !e.Log.Contains("script.lua:8") || !e.Log.Contains(`script.lua:8: in function`) {
		t.Fatalf("no position or traceback of the loop:\n%s", e.Log)
	}
	if r := c.Do(enginetest.Req{Method: "OPTIONS"}, 5*time.Second); r.StatusCode != 200 {
		t.Fatalf("after the runaway: %d", r.StatusCode)
	}
}

// With max_exec_ms off, a callback running longer than StuckAfter is
// reported once, naming the worker and the callback.
func TestStuckWorkerIsReported(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	script := `
function ksr_request_route()
	if KSR.is_method("STUCK") then
		while not io.open("` + gate + `") do end
	end
	KSR.sl.send_reply(200, "OK")
end`
	cfg := strings.Replace(enginetest.Config(), "children=2", "children=1", 1)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": script},
		func(o *engine.Options) { o.StuckAfter = 50 * time.Millisecond })
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "STUCK"}))
	if !e.Log.WaitFor("worker stuck", 10*time.Second) {
		t.Fatalf("no warning about the stuck worker:\n%s", e.Log)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := c.RecvResponse(10 * time.Second)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("the stuck request did not finish: %v %v", r, err)
	}
	if n := strings.Count(e.Log.String(), "worker stuck"); n != 1 {
		t.Fatalf("%d warnings for one stuck event:\n%s", n, e.Log)
	}
	if !e.Log.Contains("worker=receiver/0 callback=ksr_request_route") {
		t.Fatalf("the warning does not name the worker and callback:\n%s", e.Log)
	}
	// The next event is watched anew: fine, and not reported.
	if r := c.Do(enginetest.Req{Method: "OPTIONS"}, 5*time.Second); r.StatusCode != 200 {
		t.Fatalf("after the stuck event: %d", r.StatusCode)
	}
}
