package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

func versionScript(v string) string {
	return `
version = "` + v + `"
function ksr_request_route()
	KSR.sl.send_reply(200, "version " .. version)
end
function ksr_tick(evname)
	KSR.pv.sets("$shv(timer_version)", version)
end
`
}

func writeScript(t *testing.T, e *enginetest.Engine, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.Dir, "script.lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func reload(t *testing.T, e *enginetest.Engine) error {
	t.Helper()
	_, err := jsonrpc.Call(context.Background(), e.RPCURL(), "app_lua.reload", nil)
	return err
}

func TestReloadChangesRepliesEverywhere(t *testing.T) {
	cfg := enginetest.Config(`loadmodule "rtimer.so"`,
		`modparam("rtimer", "timer", "name=t;interval=20000u;mode=1")`,
		`modparam("rtimer", "exec", "timer=t;route=ksr_tick")`)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": versionScript("one")})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	if r := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); r.Reason != "version one" {
		t.Fatalf("before reload: %q", r.Reason)
	}
	writeScript(t, e, versionScript("two"))
	if err := reload(t, e); err != nil {
		t.Fatalf("reload: %v", err)
	}
	// Every receiver answers with the new script (children=2: send enough to reach both).
	for i := 0; i < 20; i++ {
		if r := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); r.Reason != "version two" {
			t.Fatalf("after reload, request %d: %q", i, r.Reason)
		}
	}
	// The timer VM switched too.
	deadline := time.Now().Add(enginetest.Patience)
	for e.Status().Workers != nil && time.Now().Before(deadline) {
		if v, _ := shv(e, "timer_version"); v == "two" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, _ := shv(e, "timer_version"); v != "two" {
		t.Fatalf("timer VM still runs %q", v)
	}
	st := e.Status()
	if st.Version != 2 {
		t.Fatalf("status version %d", st.Version)
	}
	for _, w := range st.Workers {
		if strings.HasPrefix(w.Name, "receiver/") && w.Version != 2 {
			t.Errorf("%s runs version %d", w.Name, w.Version)
		}
	}
}

// shv reads a $shv value through the RPC-free path: a fresh request.
func shv(e *enginetest.Engine, name string) (string, bool) {
	v := e.SharedVar(name)
	s, ok := v.(string)
	return s, ok
}

func TestReloadRefusesBrokenScripts(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(), map[string]string{"script.lua": versionScript("good")})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	cases := []struct {
		name, src, want string
	}{
		{"syntax", "function ksr_request_route()\n  if then\nend\n", "script.lua:2"},
		{"runtime at top level", "local x = nil\nx.y = 1\n", "script.lua:2"},
		{"missing request route", "function other() end\n", "ksr_request_route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			writeScript(t, e, tc.src)
			err := reload(t, e)
			f, ok := err.(*jsonrpc.Fault)
			if !ok || f.Code != 500 || !strings.Contains(f.Message, tc.want) || !strings.HasPrefix(f.Message, "Reload Failed") {
				t.Fatalf("reload of a broken script: %v (want a 500 fault naming %q)", err, tc.want)
			}
			if r := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); r.Reason != "version good" {
				t.Fatalf("old script stopped answering: %q", r.Reason)
			}
		})
	}
	if st := e.Status(); st.Version != 1 {
		t.Fatalf("a refused reload changed the version to %d", st.Version)
	}
}

func TestReloadUnderLoadLosesNothing(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(), map[string]string{"script.lua": versionScript("0")})
	const clients = 4
	var sent, answered atomic.Int64
	reloadsDone := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := enginetest.Dial(t, "udp", e.Addr("udp"))
			for {
				select {
				case <-reloadsDone:
					return
				default:
				}
				sent.Add(1)
				c.Send(c.Build(enginetest.Req{Method: "OPTIONS"}))
				if r, err := c.RecvResponse(enginetest.Patience); err == nil && r.StatusCode == 200 {
					answered.Add(1)
				}
			}
		}()
	}
	// 20 reloads while the clients send, each after the clients had 5 more requests answered
	// (so the load runs between reloads however slow the machine); the clients stop after
	// the last one.
	for v := 1; v <= 20; v++ {
		writeScript(t, e, versionScript(fmt.Sprint(v)))
		if err := reload(t, e); err != nil {
			t.Errorf("reload %d: %v", v, err)
		}
		waitFor(t, "answers between reloads", func() bool { return answered.Load() >= int64(5*v) })
	}
	close(reloadsDone)
	wg.Wait()
	if sent.Load() < 100 || sent.Load() != answered.Load() {
		t.Fatalf("%d requests sent, %d answered across 20 reloads", sent.Load(), answered.Load())
	}
	if st := e.Status(); st.Version != 21 {
		t.Fatalf("version %d after 20 reloads", st.Version)
	}
}

// Idle workers switch right after a reload, not at their next message.
func TestReloadSwitchesIdleWorkers(t *testing.T) {
	cfg := strings.Replace(enginetest.Config(), "children=2", "children=16", 1)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": versionScript("a")})
	writeScript(t, e, versionScript("b"))
	if err := reload(t, e); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(enginetest.Patience)
	for {
		behind := 0
		for _, w := range e.Status().Workers {
			if strings.HasPrefix(w.Name, "receiver/") && w.Version != 2 {
				behind++
			}
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle receivers still run the old script", behind)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// BenchmarkReload64VMs measures a reload with 64 receiver VMs: compile and
// prove, publish, and every VM switched.
func BenchmarkReload64VMs(b *testing.B) {
	cfg := strings.Replace(enginetest.Config(), "children=2", "children=64", 1)
	e := enginetest.Start(b, cfg, map[string]string{"script.lua": versionScript("0")})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		v, err := e.Reload()
		if err != nil {
			b.Fatal(err)
		}
		for {
			done := true
			for _, w := range e.Status().Workers {
				if w.Version != v {
					done = false
					break
				}
			}
			if done {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// versionRoutesScript answers from an async resume (X-Path: async), from a
// sworker group (X-Path: sworker) or directly, naming the script version.
func versionRoutesScript(v string) string {
	return `
version = "` + v + `"
function ksr_pre_routing(evname)
	if KSR.hdr.get("X-Path") == "sworker" and KSR.sworker.task("sw") > 0 then KSR.x.drop() end
end
function ksr_request_route()
	if KSR.hdr.get("X-Path") == "async" then
		KSR.async.ms_route("resumed", 5)
		KSR.x.exit()
	end
	KSR.sl.send_reply(200, KSR.async.get_gname() .. " " .. version)
end
function resumed()
	KSR.sl.send_reply(200, "async " .. version)
end
`
}

// Async workers and sworker group workers move to the new script too.
func TestReloadSwitchesAsyncAndGroupWorkers(t *testing.T) {
	cfg := asyncCfg(`modparam("async", "workers", 1)`, `loadmodule "sworker.so"`,
		`async_workers_group="name=sw;workers=2"`, `kemi.pre_routing_callback="ksr_pre_routing"`)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": versionRoutesScript("one")})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	ask := func(path string) string {
		t.Helper()
		r := c.Do(enginetest.Req{Method: "MESSAGE", Headers: []string{"X-Path: " + path}}, enginetest.Patience)
		return r.Reason
	}
	if got := ask("async"); got != "async one" {
		t.Fatalf("before reload, async: %q", got)
	}
	if got := ask("sworker"); got != "sw one" {
		t.Fatalf("before reload, sworker: %q", got)
	}
	writeScript(t, e, versionRoutesScript("two"))
	if err := reload(t, e); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for i := 0; i < 4; i++ { // two group workers: ask enough to reach both
		if got := ask("async"); got != "async two" {
			t.Fatalf("after reload, async %d: %q", i, got)
		}
		if got := ask("sworker"); got != "sw two" {
			t.Fatalf("after reload, sworker %d: %q", i, got)
		}
	}
	seen := map[string]bool{}
	for _, w := range e.Status().Workers {
		if strings.HasPrefix(w.Name, "async/") || strings.HasPrefix(w.Name, "sw/") {
			seen[w.Name] = true
			if w.Version != 2 {
				t.Errorf("%s runs version %d after the reload", w.Name, w.Version)
			}
		}
	}
	if !seen["async/0"] || len(seen) != 3 {
		t.Fatalf("status lists %v, want async/0 and two sw workers", seen)
	}
}

// A reload whose script's top level never finishes is refused within
// app_lua load_timeout_ms, naming where it was stopped; the old script keeps
// answering and the next reload works (the proof let go of the lock).
func TestReloadRefusesEndlessTopLevel(t *testing.T) {
	cfg := enginetest.Config(`modparam("app_lua", "load_timeout_ms", 100)`)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": versionScript("good")})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	looping := versionScript("looping") + "while true do end\n"
	writeScript(t, e, looping)
	for i := 0; i < 2; i++ { // twice: the first refusal left nothing held
		err := reload(t, e)
		f, ok := err.(*jsonrpc.Fault)
		if !ok || f.Code != 500 || !strings.HasPrefix(f.Message, "Reload Failed: script top level did not finish within 100ms (stopped at ") ||
			!strings.Contains(f.Message, "script.lua:9)") {
			t.Fatalf("reload %d of an endless top level: %v", i, err)
		}
		if r := c.Do(enginetest.Req{Method: "OPTIONS"}, 2*time.Second); r.Reason != "version good" {
			t.Fatalf("old script stopped answering: %q", r.Reason)
		}
	}
	if !e.Log.Contains("reload refused") {
		t.Fatalf("refusal not logged:\n%s", e.Log)
	}
	writeScript(t, e, versionScript("next"))
	if err := reload(t, e); err != nil {
		t.Fatalf("good reload after the refused ones: %v", err)
	}
	if r := c.Do(enginetest.Req{Method: "OPTIONS"}, 2*time.Second); r.Reason != "version next" {
		t.Fatalf("after the good reload: %q", r.Reason)
	}
}

// At start the same bound turns an endless top level into an error.
func TestStartRefusesEndlessTopLevel(t *testing.T) {
	cfg := enginetest.Config(`modparam("app_lua", "load_timeout_ms", 50)`)
	_, err := enginetest.TryStart(t, cfg, map[string]string{"script.lua": "x = 1\nwhile true do end\n"})
	if err == nil || !strings.Contains(err.Error(), "script top level did not finish within 50ms (stopped at ") ||
		!strings.Contains(err.Error(), "script.lua:2)") {
		t.Fatalf("start with an endless top level: %v", err)
	}
}
