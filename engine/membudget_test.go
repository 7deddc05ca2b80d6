package engine_test

import (
	"strings"
	"testing"
	"time"

	"kemi/engine"
	"kemi/engine/enginetest"
)

// hogScript queues every MESSAGE, answers OPTIONS, and on REP, DOUBLE or
// TABLE runs a handler that would grow the heap to gigabytes: one
// string.rep of 1 GB, a string doubled in a loop, a table of 50 million
// numbers. Each keeps what it built in a global.
const hogScript = `
function rep() hog = string.rep("x", 2^30) end
function double() hog = "x" while true do hog = hog .. hog end end
function tbl() hog = {} for i = 1, 5e7 do hog[i] = i end end
function ksr_request_route()
	local m = KSR.pv.get("$rm")
	if m == "MESSAGE" then
		KSR.mqueue.mq_add("q", KSR.pv.get("$ci"), "v")
		KSR.sl.send_reply(200, "Queued")
		return
	end
	if m == "REP" then rep() elseif m == "DOUBLE" then double() elseif m == "TABLE" then tbl() end
	KSR.sl.send_reply(200, "OK")
end`

// Each memory hog is stopped with an error naming the budget and the
// function, the only worker answers the next request, and the queued items
// stay. Without the budget this test allocates gigabytes (string.rep alone
// is 1 GB at once) and the doubling never ends.
func TestMemoryHogIsStopped(t *testing.T) {
	cfg := strings.Replace(enginetest.Config(`loadmodule "mqueue.so"`, `modparam("mqueue", "mqueue", "name=q")`,
		`modparam("app_lua", "max_mem_mb", 32)`), "children=2", "children=1", 1)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": hogScript})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	for i := 0; i < 3; i++ {
		if r := c.Do(enginetest.Req{Method: "MESSAGE"}, 5*time.Second); r.StatusCode != 200 {
			t.Fatalf("MESSAGE: %d", r.StatusCode)
		}
	}
	for _, h := range []struct{ method, fn, want string }{
		{"REP", "rep", "string.rep: a result of 1073741824 bytes exceeds the memory budget of 32 MB (max_mem_mb)"},
		{"DOUBLE", "double", "exceeding its memory budget: the heap grew by"},
		{"TABLE", "tbl", "exceeding its memory budget: the heap grew by"},
	} {
		c.Send(c.Build(enginetest.Req{Method: h.method}))
		if !e.Log.WaitFor("in function '"+h.fn+"'", 60*time.Second) {
			t.Fatalf("%s: the handler was not stopped:\n%s", h.method, e.Log)
		}
		if !e.Log.Contains(h.want) {
			t.Fatalf("%s: no error naming the budget (%q):\n%s", h.method, h.want, e.Log)
		}
		// children=1: the same worker answers now, on a fresh Lua state.
		if r := c.Do(enginetest.Req{Method: "OPTIONS"}, 10*time.Second); r.StatusCode != 200 {
			t.Fatalf("after %s: %d", h.method, r.StatusCode)
		}
		if n := e.Queues().Get("q").Len(); n != 3 {
			t.Fatalf("after %s: %d items queued, want 3", h.method, n)
		}
	}
	if n := e.Status().Counters["lua_memory_stops"]; n != 2 {
		t.Fatalf("lua_memory_stops %d, want 2 (the doubling and the table)", n)
	}
}

// max_mem_mb: off (0) by default, N MB turns the budget on, bounds checked.
func TestMaxMemSetting(t *testing.T) {
	load := func(extra string) (*engine.Settings, error) {
		dir := t.TempDir()
		enginetest.Files(t, dir, map[string]string{"kemi.cfg": enginetest.Config(extra), "script.lua": "function ksr_request_route() end"})
		return engine.Load(dir+"/kemi.cfg", nil)
	}
	for _, tt := range []struct {
		extra string
		want  int64
		err   string
	}{
		{"", 0, ""}, // off by default: the heap watchdog's check costs per instruction
		{`modparam("app_lua", "max_mem_mb", 0)`, 0, ""},
		{`modparam("app_lua", "max_mem_mb", 1024)`, 1 << 30, ""},
		{`modparam("app_lua", "max_mem_mb", -1)`, 0, "modparam app_lua max_mem_mb: must be 0..1048576, got -1"},
	} {
		s, err := load(tt.extra)
		switch {
		case tt.err != "":
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.extra, err, tt.err)
			}
		case err != nil:
			t.Errorf("%s: %v", tt.extra, err)
		case s.AppLua().MaxMem != tt.want:
			t.Errorf("%s: MaxMem %d, want %d", tt.extra, s.AppLua().MaxMem, tt.want)
		}
	}
}
