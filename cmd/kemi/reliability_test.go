package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

// queueKemi is a kemi process whose script queues every MESSAGE's Call-ID in
// q (with dbmode) before answering 200.
type queueKemi struct {
	dir, cfg, rpc string
	port          int
}

// queueScript is the script of a queueKemi; reason is its 200's reason.
func queueScript(reason string) string {
	return `
function ksr_request_route()
	if KSR.mqueue.mq_add("q", KSR.pv.get("$ci"), "v") == 1 then
		KSR.sl.send_reply(200, "` + reason + `")
	else
		KSR.sl.send_reply(500, "Not queued")
	end
end
`
}

// newQueueKemi writes its files; extra lines go into the configuration.
func newQueueKemi(t *testing.T, dbmode int, extra ...string) *queueKemi {
	t.Helper()
	k := &queueKemi{dir: t.TempDir(), port: freePort(t)}
	k.rpc = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	k.cfg = filepath.Join(k.dir, "kemi.cfg")
	os.WriteFile(k.cfg, []byte(fmt.Sprintf(`listen=udp:127.0.0.1:%d
children=2
loadmodule "sl.so"
loadmodule "mqueue.so"
loadmodule "app_lua.so"
modparam("mqueue", "db_url", "sqlite://%s")
modparam("mqueue", "mqueue", "name=q;dbmode=%d")
modparam("app_lua", "load", "kemi.lua")
%s
cfgengine "lua"
`, k.port, filepath.Join(k.dir, "q.db"), dbmode, strings.Join(extra, "\n"))), 0o644)
	k.script(t, queueScript("Queued"))
	return k
}

// script replaces kemi.lua.
func (k *queueKemi) script(t *testing.T, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(k.dir, "kemi.lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (k *queueKemi) start(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(kemiBin, append([]string{"run", "-f", k.cfg, "-rpc", k.rpc}, args...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !out.waitFor("kemi started", enginetest.Patience) {
		t.Fatalf("kemi did not start:\n%s", out)
	}
	return cmd, out
}

// load sends MESSAGEs from several clients until stop closes and returns the Call-IDs
// acknowledged with 200. Once want of them are acknowledged it closes reached, so that a test
// acts under load that has really run rather than after a fixed time. A reply is credited to
// the Call-ID it carries, not to the request last sent: a late reply is not taken for
// another request's.
func (k *queueKemi) load(t *testing.T, stop <-chan struct{}, want int, reached chan<- struct{}) map[string]bool {
	var mu sync.Mutex
	acked := map[string]bool{}
	ack := func(id string) {
		mu.Lock()
		defer mu.Unlock()
		if !acked[id] {
			acked[id] = true
			if len(acked) == want {
				close(reached)
			}
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := enginetest.Dial(t, "udp", fmt.Sprintf("127.0.0.1:%d", k.port))
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := enginetest.RandomID()
				c.Send(c.Build(enginetest.Req{Method: "MESSAGE", CallID: id}))
				// Until this request's reply, or a pause in which none comes (the listener
				// is closed after the signal): then check stop and send the next one.
				for {
					r, err := c.RecvResponse(time.Second)
					if err != nil {
						break
					}
					if r.StatusCode == 200 {
						ack(r.CallID().Value())
					}
					if r.CallID().Value() == id {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	return acked
}

// underLoad starts the load and waits until want requests are acknowledged (failing if the
// load does not get there within enginetest.Patience, a guard against a kemi that does not
// answer). It returns stop, which ends the load and returns the acknowledged Call-IDs.
func (k *queueKemi) underLoad(t *testing.T, want int) (stop func() map[string]bool) {
	t.Helper()
	done := make(chan struct{})
	reached := make(chan struct{})
	result := make(chan map[string]bool, 1)
	go func() { result <- k.load(t, done, want, reached) }()
	stop = func() map[string]bool {
		close(done)
		return <-result
	}
	select {
	case <-reached:
		return stop
	case <-time.After(enginetest.Patience):
		acked := stop()
		t.Fatalf("only %d requests acknowledged in %s: the load did not run", len(acked), enginetest.Patience)
		return nil
	}
}

// drained fetches every item of q over RPC from a restarted engine.
func (k *queueKemi) drained(t *testing.T) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	for {
		res, err := jsonrpc.Call(context.Background(), "http://"+k.rpc+"/RPC", "mqueue.fetch", []any{"q"})
		if f, ok := err.(*jsonrpc.Fault); ok && f.Code == 404 {
			return got
		}
		if err != nil {
			t.Fatalf("fetch: %v", err)
		}
		var it struct{ Key string }
		json.Unmarshal(res, &it)
		got[it.Key] = true
	}
}

func checkNothingLost(t *testing.T, acked, got map[string]bool, min int) {
	t.Helper()
	if len(acked) < min {
		t.Fatalf("only %d requests acknowledged: the load did not run", len(acked))
	}
	lost := 0
	for id := range acked {
		if !got[id] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged items lost (restart found %d items)", lost, len(acked), len(got))
	}
	t.Logf("%d acknowledged, %d found after restart", len(acked), len(got))
}

// loadAcks is how many requests the load has had acknowledged when the signal goes: the
// signal then lands while the load keeps sending.
const loadAcks = 100

func TestSIGTERMUnderLoadSavesEveryItem(t *testing.T) {
	k := newQueueKemi(t, 1)
	cmd, out := k.start(t)
	stop := k.underLoad(t, loadAcks)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	acked := stop()
	k.start(t)
	checkNothingLost(t, acked, k.drained(t), loadAcks)
}

func TestSIGKILLWithDurableQueueLosesNoAcknowledgedItem(t *testing.T) {
	k := newQueueKemi(t, 4)
	cmd, _ := k.start(t)
	stop := k.underLoad(t, loadAcks)
	cmd.Process.Kill() // SIGKILL under load: no shutdown code runs
	cmd.Wait()
	acked := stop()
	k.start(t)
	checkNothingLost(t, acked, k.drained(t), loadAcks)
}

// ask sends MESSAGEs one after the other and returns the Call-IDs answered
// 200 with reason.
func (k *queueKemi) ask(t *testing.T, n int, reason string) map[string]bool {
	t.Helper()
	c := enginetest.Dial(t, "udp", fmt.Sprintf("127.0.0.1:%d", k.port))
	acked := map[string]bool{}
	for i := 0; i < n; i++ {
		id := enginetest.RandomID()
		if r := c.Do(enginetest.Req{Method: "MESSAGE", CallID: id}, 5*time.Second); r.StatusCode != 200 || r.Reason != reason {
			t.Fatalf("MESSAGE %d: %d %q, want 200 %q", i, r.StatusCode, r.Reason, reason)
		}
		acked[id] = true
	}
	return acked
}

// waitCount waits until s occurs n times in out.
func waitCount(out *syncBuffer, s string, n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Count(out.String(), s) >= n {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// endless is the queue script with a top level that never finishes, after
// logging mark.
func endless(mark string) string {
	return queueScript("Queued") + "KSR.info(\"" + mark + "\")\nwhile true do end\n"
}

// A reload whose script's top level never finishes, through the RPC and
// through SIGHUP, is refused within load_timeout_ms and the old script keeps
// answering; a good reload follows; SIGTERM then stops the engine
// gracefully with the queue saved.
func TestEndlessTopLevelReloadRefused(t *testing.T) {
	k := newQueueKemi(t, 1, `modparam("app_lua", "load_timeout_ms", 300)`)
	cmd, out := k.start(t)
	acked := k.ask(t, 30, "Queued")
	const refused = "script top level did not finish within 300ms (stopped at "

	k.script(t, endless("endless rpc"))
	_, err := jsonrpc.Call(context.Background(), "http://"+k.rpc+"/RPC", "app_lua.reload", nil)
	if f, ok := err.(*jsonrpc.Fault); !ok || f.Code != 500 || !strings.Contains(f.Message, refused) || !strings.Contains(f.Message, "kemi.lua:10)") {
		t.Fatalf("RPC reload of an endless top level: %v", err)
	}
	for id := range k.ask(t, 10, "Queued") {
		acked[id] = true
	}

	k.script(t, endless("endless hup"))
	cmd.Process.Signal(syscall.SIGHUP)
	if !waitCount(out, refused, 2, 30*time.Second) {
		t.Fatalf("SIGHUP reload of an endless top level not refused:\n%s", out)
	}
	for id := range k.ask(t, 10, "Queued") {
		acked[id] = true
	}

	k.script(t, queueScript("Queued 2"))
	cmd.Process.Signal(syscall.SIGHUP)
	if !out.waitFor("reloaded after SIGHUP", 30*time.Second) {
		t.Fatalf("good reload after the refused ones did not happen:\n%s", out)
	}
	for id := range k.ask(t, 10, "Queued 2") {
		acked[id] = true
	}
	stopAndCheck(t, k, cmd, out, acked)
}

// SIGTERM sent while a SIGHUP reload's proof runs (here it would run for 10
// minutes) is read at once: the stop saves the queue and cancels the proof.
func TestSIGTERMDuringReload(t *testing.T) {
	k := newQueueKemi(t, 1, `modparam("app_lua", "load_timeout_ms", 600000)`)
	cmd, out := k.start(t)
	acked := k.ask(t, 60, "Queued")
	k.script(t, endless("endless term"))
	cmd.Process.Signal(syscall.SIGHUP)
	if !out.waitFor("endless term", 30*time.Second) {
		t.Fatalf("the reload did not start:\n%s", out)
	}
	stopAndCheck(t, k, cmd, out, acked)
}

// stopAndCheck sends SIGTERM, expects a graceful stop, restarts kemi with the
// queue script and checks that every acknowledged item is in the queue.
func stopAndCheck(t *testing.T, k *queueKemi, cmd *exec.Cmd, out *syncBuffer, acked map[string]bool) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, out)
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("kemi did not stop after SIGTERM:\n%s", out)
	}
	if !strings.Contains(out.String(), "msg=stopped") {
		t.Fatalf("no graceful stop logged:\n%s", out)
	}
	k.script(t, queueScript("Queued"))
	k.start(t)
	checkNothingLost(t, acked, k.drained(t), 1) // the callers asked for their items: every one was answered
}

// -watch goes through the same reloads: an endless top level saved to the
// file is refused, a good save after it is loaded, SIGTERM still stops.
func TestWatchRefusesEndlessTopLevel(t *testing.T) {
	k := newQueueKemi(t, 1, `modparam("app_lua", "load_timeout_ms", 300)`)
	cmd, out := k.start(t, "-watch")
	k.script(t, endless("endless watch"))
	if !out.waitFor("script top level did not finish within 300ms", 30*time.Second) {
		t.Fatalf("endless top level not refused:\n%s", out)
	}
	k.ask(t, 3, "Queued")
	k.script(t, queueScript("Queued 2"))
	if !out.waitFor("reloaded after a script change", 30*time.Second) {
		t.Fatalf("good save not loaded:\n%s", out)
	}
	k.ask(t, 3, "Queued 2")
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "msg=stopped") {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, out)
	}
}
