package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

func newQueueKemi(t *testing.T, dbmode int) *queueKemi {
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
cfgengine "lua"
`, k.port, filepath.Join(k.dir, "q.db"), dbmode)), 0o644)
	os.WriteFile(filepath.Join(k.dir, "kemi.lua"), []byte(`
function ksr_request_route()
	if KSR.mqueue.mq_add("q", KSR.pv.get("$ci"), "v") == 1 then
		KSR.sl.send_reply(200, "Queued")
	else
		KSR.sl.send_reply(500, "Not queued")
	end
end`), 0o644)
	return k
}

func (k *queueKemi) start(t *testing.T) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(kemiBin, "run", "-f", k.cfg, "-rpc", k.rpc)
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

func checkNothingLost(t *testing.T, acked, got map[string]bool) {
	t.Helper()
	if len(acked) < loadAcks {
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
	checkNothingLost(t, acked, k.drained(t))
}

func TestSIGKILLWithDurableQueueLosesNoAcknowledgedItem(t *testing.T) {
	k := newQueueKemi(t, 4)
	cmd, _ := k.start(t)
	stop := k.underLoad(t, loadAcks)
	cmd.Process.Kill() // SIGKILL under load: no shutdown code runs
	cmd.Wait()
	acked := stop()
	k.start(t)
	checkNothingLost(t, acked, k.drained(t))
}
