package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

// The mqueue module's use case: SIP workers queue work, a timer process
// consumes it (mqueue admin guide, overview). Here ksr_request_route queues
// one item per MESSAGE and an rtimer VM (mode 1: its own goroutine and VM)
// drains the queue every 10 ms into a second queue, tagging each item with
// the event name it ran for.
const mqE2EScript = `
function ksr_request_route()
	if KSR.is_MESSAGE() then
		local rc = KSR.mqueue.mq_add("jobs", KSR.hdr.gete("X-Producer"), KSR.hdr.gete("X-Seq"))
		KSR.sl.send_reply(200, "queued " .. rc)
		return
	end
	KSR.sl.send_reply(405, "Method Not Allowed")
end

function drain(evname)
	while KSR.mqueue.mq_fetch("jobs") == 1 do
		KSR.mqueue.mq_add("done", KSR.mqueue.mqk_get("jobs"), KSR.mqueue.mqv_get("jobs") .. "@" .. evname)
	end
end
`

// TestMqueueEndToEnd: MESSAGEs from several UDP clients at once, queued by
// the receivers, drained by the rtimer VM: every item arrives exactly once
// and, per client, in the order it was sent.
func TestMqueueEndToEnd(t *testing.T) {
	e := enginetest.Start(t, mqConfig(
		`modparam("mqueue", "mqueue", "name=jobs")`,
		`modparam("mqueue", "mqueue", "name=done")`,
		`loadmodule "rtimer.so"`,
		`modparam("rtimer", "timer", "name=drainer;interval=10000u;mode=1")`,
		`modparam("rtimer", "exec", "timer=drainer;route=drain")`,
	), map[string]string{"script.lua": mqE2EScript})
	const clients, per = 4, 50
	var wg sync.WaitGroup
	for p := range clients {
		c := enginetest.Dial(t, "udp", e.Addr("udp"))
		wg.Go(func() {
			for i := 1; i <= per; i++ {
				res := c.Do(enginetest.Req{Method: "MESSAGE", Headers: []string{
					fmt.Sprintf("X-Producer: p%d", p), fmt.Sprintf("X-Seq: %d", i)}}, enginetest.Patience)
				if res.StatusCode != 200 || res.Reason != "queued 1" {
					t.Errorf("p%d #%d: %d %s", p, i, res.StatusCode, res.Reason)
					return
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	// Wait, through the control plane, until the timer has moved everything.
	url := e.RPCURL()
	size := func(q string) int {
		var r queueSize
		rpcResult(t, url, "mqueue.get_size", &r, q)
		return *r.Size
	}
	deadline := time.Now().Add(enginetest.Patience)
	for size("done") < clients*per && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n, left := size("done"), size("jobs"); n != clients*per || left != 0 {
		t.Fatalf("done %d, jobs left %d; want %d and 0", n, left, clients*per)
	}

	next := map[string]int{}
	for range clients * per {
		res, err := jsonrpc.Call(context.Background(), url, "mqueue.fetch", []any{"done"})
		if err != nil {
			t.Fatal(err)
		}
		var it struct{ Key, Val string }
		if err := json.Unmarshal(res, &it); err != nil {
			t.Fatal(err)
		}
		seq, ev, _ := strings.Cut(it.Val, "@")
		if ev != "rtimer" {
			t.Fatalf("item %+v was not moved by the rtimer callback", it)
		}
		next[it.Key]++
		if want := fmt.Sprint(next[it.Key]); seq != want {
			t.Fatalf("producer %s: got item %s where %s was due (lost, duplicated or reordered)", it.Key, seq, want)
		}
	}
	for p := range clients {
		if n := next[fmt.Sprintf("p%d", p)]; n != per {
			t.Fatalf("producer p%d: %d items, want %d", p, n, per)
		}
	}
	if f := rpcFault(t, url, "mqueue.fetch", "done"); f.Code != 404 {
		t.Fatalf("done not empty: %v", f)
	}
}
