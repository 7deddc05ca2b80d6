package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
)

// TestRequestMemoryRecycled: a UDP request whose route called only KSR
// functions that keep nothing of it (ksr.Export.NoRetain) has its memory
// reused for the next requests (sip_recycled counts them, here with a log
// line and KSR.x.exit in the route); a string the
// script kept from it (a global holding its Call-ID) stays intact after
// the reuse. A route that calls any other function (KSR.setflag here), or
// that creates a transaction, leaves the request to the collector.
func TestRequestMemoryRecycled(t *testing.T) {
	cfg := strings.Replace(enginetest.Config(), "children=2", "children=1", 1) // one worker: tasks in order
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": `
function ksr_request_route()
	if KSR.is_OPTIONS() then
		local before = previous or "none"
		previous = KSR.pv.get("$ci")
		KSR.info("options from " .. KSR.pv.get("$si"))
		KSR.sl.send_reply(200, before)
		KSR.x.exit()
	end
	if KSR.is_MESSAGE() then
		KSR.setflag(1)
		KSR.sl.send_reply(202, "kept")
		return
	end
	KSR.tm.t_newtran()
	KSR.tm.t_reply(200, "stateful")
end`}, quietLog)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	recycled := func() int64 { return e.Status().Counters["sip_recycled"] }
	// waitRecycled waits until the counter reaches n: the worker recycles a
	// request after sending its reply.
	waitRecycled := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(enginetest.Patience)
		for recycled() < n {
			if time.Now().After(deadline) {
				t.Fatalf("sip_recycled %d, want %d", recycled(), n)
			}
			time.Sleep(time.Millisecond)
		}
		if got := recycled(); got != n {
			t.Fatalf("sip_recycled %d, want %d", got, n)
		}
	}

	prev := "none"
	for i := range 50 {
		id := fmt.Sprintf("recycle-%d-%s", i, strings.Repeat("x", i))
		r := c.Do(enginetest.Req{Method: "OPTIONS", CallID: id}, enginetest.Patience)
		if r.StatusCode != 200 || r.Reason != prev {
			t.Fatalf("OPTIONS %d: %d %q, want 200 %q (the Call-ID the script kept from the previous request)", i, r.StatusCode, r.Reason, prev)
		}
		prev = id
	}
	waitRecycled(50)

	for i := range 5 {
		if r := c.Do(enginetest.Req{Method: "MESSAGE"}, enginetest.Patience); r.StatusCode != 202 {
			t.Fatalf("MESSAGE %d: %d", i, r.StatusCode)
		}
		if r := c.Do(enginetest.Req{Method: "INFO"}, enginetest.Patience); r.StatusCode != 200 || r.Reason != "stateful" {
			t.Fatalf("INFO %d: %d %s", i, r.StatusCode, r.Reason)
		}
	}
	// One more recyclable request: once it is counted, the worker has
	// finished every request before it, none of which counted.
	if r := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); r.StatusCode != 200 || r.Reason != prev {
		t.Fatalf("last OPTIONS: %d %q, want 200 %q", r.StatusCode, r.Reason, prev)
	}
	waitRecycled(51)
}
