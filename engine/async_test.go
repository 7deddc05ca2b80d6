package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine"
	"kemi/engine/enginetest"
	"kemi/timers"
)

// asyncCfg loads async (with the given workers) and mqueue (queue "seen").
func asyncCfg(extra ...string) string {
	return enginetest.Config(append([]string{
		`loadmodule "tmx.so"`, `loadmodule "async.so"`, `loadmodule "mqueue.so"`,
		`modparam("mqueue", "mqueue", "name=seen;size=100000")`,
	}, extra...)...)
}

// startFake starts an engine on a fake clock.
func startFake(t *testing.T, cfg, script string) (*enginetest.Engine, *timers.Fake) {
	t.Helper()
	clk := timers.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": script},
		func(o *engine.Options) { o.Clock = clk })
	return e, clk
}

// waitPending waits until the engine counts n pending tasks (suspended
// requests count while they wait).
func waitPending(t *testing.T, e *enginetest.Engine, n int64) {
	t.Helper()
	deadline := time.Now().Add(enginetest.Patience)
	for e.Pending() != n {
		if time.Now().After(deadline) {
			t.Fatalf("pending %d, want %d", e.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// armed waits until the resume timer is armed on the fake clock.
func armed(t *testing.T, clk *timers.Fake) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), enginetest.Patience)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, 1); err != nil {
		t.Fatalf("no resume timer armed: %v", err)
	}
}

// waitSuspended waits until n requests wait for their resume.
func waitSuspended(t *testing.T, e *enginetest.Engine, n int) {
	t.Helper()
	deadline := time.Now().Add(enginetest.Patience)
	for e.Status().Suspended != n {
		if time.Now().After(deadline) {
			t.Fatalf("suspended %d, want %d", e.Status().Suspended, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// quiet asserts that no response arrives within d.
func quiet(t *testing.T, c *enginetest.Client, d time.Duration, what string) {
	t.Helper()
	if res, err := c.RecvResponse(d); err == nil {
		t.Fatalf("%s: unexpected %d %s", what, res.StatusCode, res.Reason)
	}
}

// final reads responses until a final one.
func final(t *testing.T, c *enginetest.Client, what string) *sip.Response {
	t.Helper()
	deadline := time.Now().Add(enginetest.Patience)
	for {
		res, err := c.RecvResponse(time.Until(deadline))
		if err != nil {
			t.Fatalf("%s: no final reply: %v", what, err)
		}
		if res.StatusCode >= 200 {
			return res
		}
	}
}

const routeScript = `
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "alive")
		return
	end
	if KSR.is_method("ACK") then return end
	KSR.mqueue.mq_add("seen", "route", KSR.pv.get("$ci"))
	KSR.pv.sets("$avp(who)", "avp-" .. KSR.pv.get("$rU"))
	local kind = KSR.hdr.get("X-Kind") or "route"
	local d = tonumber(KSR.hdr.get("X-Delay") or "1")
	local rc
	if kind == "ms" then
		rc = KSR.async.ms_route("resume_" .. (KSR.hdr.get("X-Resume") or "ok"), d)
	else
		rc = KSR.async.route("resume_" .. (KSR.hdr.get("X-Resume") or "ok"), d)
	end
	if rc < 0 then
		KSR.sl.send_reply(500, "rc=" .. rc)
	end
	KSR.x.exit()
end

function resume_ok()
	KSR.mqueue.mq_add("seen", "resume", KSR.pv.get("$ci"))
	KSR.tm.t_reply(200, "resumed " .. KSR.pv.get("$avp(who)"))
end

function resume_silent()
	KSR.mqueue.mq_add("seen", "resume", KSR.pv.get("$ci"))
end

function resume_error()
	KSR.mqueue.mq_add("seen", "resume", KSR.pv.get("$ci"))
	local t = nil
	return t.field
end

function resume_late()
	KSR.pv.seti("$shv(late_rc)", KSR.tm.t_reply(200, "too late"))
	KSR.mqueue.mq_add("seen", "resume", KSR.pv.get("$ci"))
end
`

// seen counts the mqueue entries of key ("route" or "resume").
func seen(e *enginetest.Engine, key string) int {
	q := e.Queues().Get("seen")
	n := 0
	for _, it := range q.Snapshot() {
		if it.Key == key {
			n++
		}
	}
	return n
}

func TestAsyncRouteResumesAtItsDeadline(t *testing.T) {
	for _, tc := range []struct {
		name, method, kind string
		delay              string
		wait               time.Duration
	}{
		{"route-MESSAGE", "MESSAGE", "route", "2", 2 * time.Second},
		{"ms_route-MESSAGE", "MESSAGE", "ms", "1500", 1500 * time.Millisecond},
		{"route-INVITE", "INVITE", "route", "1", time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, clk := startFake(t, asyncCfg(), routeScript)
			c := enginetest.Dial(t, "udp", e.Addr("udp"))
			req := enginetest.Req{Method: tc.method, URI: "sip:bob@example.com", CallID: enginetest.RandomID(),
				Branch: "z9hG4bK" + enginetest.RandomID(), Headers: []string{"X-Kind: " + tc.kind, "X-Delay: " + tc.delay}}
			raw := c.Build(req)
			c.Send(raw)
			waitPending(t, e, 1) // suspended, the receiving worker is free
			armed(t, clk)        // the resume is scheduled
			if tc.method == "INVITE" {
				if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 100 {
					t.Fatalf("INVITE: want 100 Trying at once, got %v %v", res, err)
				}
			}
			// Retransmissions are absorbed: the script does not run again.
			c.Send(raw)
			c.Send(raw)
			if tc.method == "INVITE" {
				for i := 0; i < 2; i++ { // each retransmission gets the 100 again
					if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 100 {
						t.Fatalf("INVITE retransmission: want 100, got %v %v", res, err)
					}
				}
			}
			// The receiving workers serve other requests meanwhile.
			if res := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); res.StatusCode != 200 {
				t.Fatalf("OPTIONS while suspended: %d", res.StatusCode)
			}
			clk.Advance(tc.wait - time.Millisecond)
			quiet(t, c, 100*time.Millisecond, "1 ms before the deadline")
			if n := seen(e, "resume"); n != 0 {
				t.Fatalf("resumed %d times before the deadline", n)
			}
			clk.Advance(time.Millisecond)
			res := final(t, c, "after the deadline")
			if res.StatusCode != 200 || res.Reason != "resumed avp-bob" {
				t.Fatalf("got %d %q, want 200 \"resumed avp-bob\" (same message, AVPs kept)", res.StatusCode, res.Reason)
			}
			if tc.method == "INVITE" {
				ack := req
				ack.Method, ack.Branch = "ACK", "z9hG4bK"+enginetest.RandomID()
				c.Send(c.Build(ack))
			}
			if r, s := seen(e, "route"), seen(e, "resume"); r != 1 || s != 1 {
				t.Fatalf("route ran %d times, resume %d times; want 1 and 1", r, s)
			}
			waitPending(t, e, 0)
		})
	}
}

func TestAsyncResumeWithoutReplyGets500(t *testing.T) {
	e, clk := startFake(t, asyncCfg(), routeScript)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	for _, resume := range []string{"silent", "error"} {
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE", Headers: []string{"X-Delay: 1", "X-Resume: " + resume}}))
		waitPending(t, e, 1)
		armed(t, clk)
		clk.Advance(time.Second)
		res := final(t, c, resume)
		if res.StatusCode != 500 || res.Reason != "I'm terribly sorry, server error occurred (1/TM)" {
			t.Fatalf("%s: got %d %q, want tm's 500", resume, res.StatusCode, res.Reason)
		}
		quiet(t, c, 100*time.Millisecond, resume+": a second final reply")
		waitPending(t, e, 0)
	}
	if !e.Log.Contains("attempt to index a non-table object") || !e.Log.Contains("resume_error") {
		t.Fatalf("the Lua error of the resumed route was not logged:\n%s", e.Log)
	}
	// The engine keeps working, the async workers too.
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", URI: "sip:carol@example.com", Headers: []string{"X-Delay: 1"}}))
	waitPending(t, e, 1)
	armed(t, clk)
	clk.Advance(time.Second)
	if res := final(t, c, "after the errors"); res.StatusCode != 200 {
		t.Fatalf("after the errors: %d %s", res.StatusCode, res.Reason)
	}
}

// TestAsyncResumeAfterCancel: the INVITE is canceled while suspended; the
// resumed route still runs but its reply is refused, and no second final
// reply leaves.
func TestAsyncResumeAfterCancel(t *testing.T) {
	e, clk := startFake(t, asyncCfg(), routeScript)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	inv := enginetest.Req{Method: "INVITE", CallID: enginetest.RandomID(), Branch: "z9hG4bK" + enginetest.RandomID(),
		Headers: []string{"X-Delay: 2", "X-Resume: late"}}
	c.Send(c.Build(inv))
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 100 {
		t.Fatalf("want 100 Trying, got %v %v", res, err)
	}
	waitPending(t, e, 1)
	armed(t, clk)
	cancel := inv
	cancel.Method, cancel.Headers = "CANCEL", nil
	c.Send(c.Build(cancel))
	got := map[string]int{}
	for len(got) < 2 {
		res, err := c.RecvResponse(enginetest.Patience)
		if err != nil {
			t.Fatalf("after CANCEL, got %v: %v", got, err)
		}
		got[string(res.CSeq().MethodName)+" "+res.StartLine()[8:11]]++
	}
	if got["CANCEL 200"] != 1 || got["INVITE 487"] != 1 {
		t.Fatalf("after CANCEL: %v, want CANCEL 200 and INVITE 487", got)
	}
	ack := inv
	ack.Method, ack.Headers = "ACK", nil
	c.Send(c.Build(ack))
	clk.Advance(2 * time.Second)
	waitPending(t, e, 0)
	if n := seen(e, "resume"); n != 1 {
		t.Fatalf("the resumed route ran %d times, want 1", n)
	}
	if rc := e.SharedVar("late_rc"); rc != int64(-1) {
		t.Fatalf("t_reply after CANCEL returned %v, want -1", rc)
	}
	for {
		res, err := c.RecvResponse(300 * time.Millisecond)
		if err != nil {
			break
		}
		if res.StatusCode != 487 { // 487 retransmissions are fine
			t.Fatalf("a reply after CANCEL: %d %s", res.StatusCode, res.Reason)
		}
	}
	if !e.Log.Contains("send reply failed") {
		t.Fatalf("the refused reply was not logged:\n%s", e.Log)
	}
}

func TestAsyncRouteErrors(t *testing.T) {
	script := `
function ksr_request_route()
	local rcs = {}
	local function try(rc) rcs[#rcs + 1] = tostring(rc) end
	try(KSR.async.route("f", 0))
	try(KSR.async.route("f", 100))
	try(KSR.async.ms_route("f", 0))
	try(KSR.async.ms_route("f", 30000))
	try(KSR.async.route(string.rep("x", 63), 1))
	try(KSR.async.route("f"))
	try(KSR.async.task_route("f"))
	try(KSR.async.task_group_route("f", "nope"))
	KSR.sl.send_reply(200, table.concat(rcs, " "))
end
function f() KSR.tm.t_reply(200, "resumed") end`
	e, _ := startFake(t, asyncCfg(), script)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	res := c.Do(enginetest.Req{Method: "MESSAGE"}, enginetest.Patience)
	// Bad values return -1 and the script goes on; bad arity is false
	// (KEMI's rule); task_route without async_workers is -1 (Kamailio
	// returns success and never resumes).
	if want := "-1 -1 -1 -1 -1 false -1 -1"; res.StatusCode != 200 || res.Reason != want {
		t.Fatalf("got %d %q, want 200 %q", res.StatusCode, res.Reason, want)
	}
	for _, want := range []string{"seconds must be 1..99", "milliseconds must be 1..29999", "invalid async route name", "no async_workers group"} {
		if !e.Log.Contains(want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestAsyncWorkersZeroIsAnError(t *testing.T) {
	script := `
function ksr_request_route()
	local rc = KSR.async.route("f", 1)
	KSR.sl.send_reply(200, "rc=" .. rc)
end
function f() end`
	e, _ := startFake(t, asyncCfg(`modparam("async", "workers", 0)`), script)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	res := c.Do(enginetest.Req{Method: "MESSAGE"}, enginetest.Patience)
	if res.StatusCode != 200 || res.Reason != "rc=-1" {
		t.Fatalf("got %d %q, want the script to go on with rc=-1", res.StatusCode, res.Reason)
	}
	if !e.Log.Contains("leaves no worker to resume in") {
		t.Fatalf("no log line:\n%s", e.Log)
	}
	waitPending(t, e, 0)
}

func TestAsyncTaskRoute(t *testing.T) {
	script := `
function ksr_request_route()
	KSR.pv.sets("$avp(x)", "from-" .. KSR.async.get_gname())
	local rc = KSR.async.task_route("work")
	if rc < 0 then KSR.sl.send_reply(500, "rc=" .. rc) end
	KSR.x.exit()
end
function work()
	KSR.tm.t_reply(200, KSR.pv.get("$avp(x)") .. " in " .. KSR.async.get_gname())
end`
	e, _ := startFake(t, asyncCfg("async_workers=1"), script)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	res := c.Do(enginetest.Req{Method: "MESSAGE"}, enginetest.Patience)
	if res.StatusCode != 200 || res.Reason != "from- in default" {
		t.Fatalf("got %d %q", res.StatusCode, res.Reason)
	}
	waitPending(t, e, 0)
}

// TestAsyncResumeWaitsForTheSuspendingHandler: the script goes on after
// KSR.async.route; the resume (due at once for task_route) waits until it
// returns, so one message is never handled by two goroutines.
func TestAsyncResumeWaitsForTheSuspendingHandler(t *testing.T) {
	script := `
function ksr_request_route()
	KSR.async.task_route("work")
	local t0 = os.clock()
	while os.clock() - t0 < 0.2 do end -- still busy with the message
	KSR.pv.sets("$avp(x)", "set-after-suspend")
end
function work() KSR.tm.t_reply(200, KSR.pv.get("$avp(x)") or "none") end`
	e, _ := startFake(t, asyncCfg("async_workers=1"), script)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	res := c.Do(enginetest.Req{Method: "MESSAGE"}, enginetest.Patience)
	if res.StatusCode != 200 || res.Reason != "set-after-suspend" {
		t.Fatalf("got %d %q: the resume ran before the suspending handler returned", res.StatusCode, res.Reason)
	}
}

func TestAsyncShutdownAnswers503(t *testing.T) {
	e, clk := startFake(t, asyncCfg(), routeScript)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "MESSAGE", Headers: []string{"X-Delay: 50"}}))
	waitPending(t, e, 1)
	armed(t, clk)
	ctx, cancel := context.WithTimeout(context.Background(), enginetest.Patience)
	defer cancel()
	if err := e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if res := final(t, c, "shutdown"); res.StatusCode != 503 {
		t.Fatalf("got %d %s, want 503", res.StatusCode, res.Reason)
	}
	if e.Pending() != 0 {
		t.Fatalf("pending %d after stop", e.Pending())
	}
}

// sleepScript: KSR.async.sleep continues the handler in place.
const sleepScript = `
VM = tostring({}) -- differs per VM: globals are per worker
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "alive")
		return
	end
	if KSR.is_method("ACK") then return end
	KSR.mqueue.mq_add("seen", "route", KSR.pv.get("$ci"))
	local mode = KSR.hdr.get("X-Mode") or "plain"
	local before = VM
	local n = 41
	if mode == "pcall" then
		local ok, rc = pcall(KSR.async.ms_sleep, 500)
		KSR.sl.send_reply(200, "pcall " .. tostring(rc))
		return
	end
	if mode == "tail" then
		return KSR.async.ms_sleep(500) -- ends the handler: tm's 500
	end
	local rc = KSR.async.ms_sleep(500)
	n = n + 1
	KSR.mqueue.mq_add("seen", "resume", KSR.pv.get("$ci"))
	if mode == "silent" then return end
	if mode == "error" then error("after the sleep") end
	if mode == "twice" then
		rc = rc + KSR.async.sleep(1)
	end
	KSR.sl.send_reply(200, "rc=" .. rc .. " n=" .. n .. " same_vm=" .. tostring(before == VM))
	KSR.x.exit()
end
`

func TestAsyncSleepContinuesInPlace(t *testing.T) {
	e, clk := startFake(t, asyncCfg("children=1"), sleepScript)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	inv := enginetest.Req{Method: "INVITE", Branch: "z9hG4bK" + enginetest.RandomID(), CallID: enginetest.RandomID()}
	raw := c.Build(inv)
	c.Send(raw)
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 100 {
		t.Fatalf("want 100 Trying, got %v %v", res, err)
	}
	waitPending(t, e, 1)
	armed(t, clk)
	c.Send(raw) // absorbed by the transaction (100 again)
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 100 {
		t.Fatalf("retransmission: want 100, got %v %v", res, err)
	}
	// One receiver, and it is free while the handler sleeps.
	if res := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); res.StatusCode != 200 {
		t.Fatalf("OPTIONS while sleeping: %d", res.StatusCode)
	}
	clk.Advance(499 * time.Millisecond)
	quiet(t, c, 100*time.Millisecond, "before the end of the sleep")
	clk.Advance(time.Millisecond)
	res := final(t, c, "after the sleep")
	if res.StatusCode != 200 || res.Reason != "rc=1 n=42 same_vm=true" {
		t.Fatalf("got %d %q", res.StatusCode, res.Reason)
	}
	ack := inv
	ack.Method, ack.Branch = "ACK", "z9hG4bK"+enginetest.RandomID()
	c.Send(c.Build(ack))
	if r, s := seen(e, "route"), seen(e, "resume"); r != 1 || s != 1 {
		t.Fatalf("route %d, resume %d: want 1 and 1", r, s)
	}
	waitPending(t, e, 0)
}

func TestAsyncSleepModes(t *testing.T) {
	e, clk := startFake(t, asyncCfg("children=2"), sleepScript)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	send := func(mode string) {
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE", Headers: []string{"X-Mode: " + mode}}))
	}
	t.Run("pcall refused", func(t *testing.T) {
		send("pcall")
		if res := final(t, c, "pcall"); res.StatusCode != 200 || res.Reason != "pcall -1" {
			t.Fatalf("got %d %q, want the refusal (-1) and the script going on", res.StatusCode, res.Reason)
		}
		if !e.Log.Contains("cannot suspend here") {
			t.Fatal("refusal not logged")
		}
	})
	for _, tc := range []struct{ mode, want string }{
		{"silent", "500 I'm terribly sorry, server error occurred (1/TM)"},
		{"error", "500 I'm terribly sorry, server error occurred (1/TM)"},
		{"tail", "500 I'm terribly sorry, server error occurred (1/TM)"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			send(tc.mode)
			waitPending(t, e, 1)
			armed(t, clk)
			clk.Advance(500 * time.Millisecond)
			res := final(t, c, tc.mode)
			if got := res.StartLine()[8:]; got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			waitPending(t, e, 0)
		})
	}
	t.Run("twice", func(t *testing.T) {
		send("twice")
		waitPending(t, e, 1)
		armed(t, clk)
		clk.Advance(500 * time.Millisecond)
		waitPending(t, e, 1)
		armed(t, clk)
		clk.Advance(time.Second)
		if res := final(t, c, "twice"); res.StatusCode != 200 || res.Reason != "rc=2 n=42 same_vm=true" {
			t.Fatalf("got %d %q", res.StatusCode, res.Reason)
		}
	})
	if !e.Log.Contains("after the sleep") {
		t.Fatal("the Lua error after the sleep was not logged")
	}
}

// TestAsyncSleepManyOnTwoWorkers: each continuation runs on the VM that
// started the handler, with two receivers serving many sleeping requests.
func TestAsyncSleepManyOnTwoWorkers(t *testing.T) {
	e, clk := startFake(t, asyncCfg("children=2"), sleepScript)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	const n = 50
	for i := 0; i < n; i++ {
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE"}))
	}
	waitSuspended(t, e, n)
	armed(t, clk)
	clk.Advance(500 * time.Millisecond)
	for i := 0; i < n; i++ {
		res := final(t, c, "many")
		if res.StatusCode != 200 || !strings.HasSuffix(res.Reason, "same_vm=true") {
			t.Fatalf("reply %d: %d %q", i, res.StatusCode, res.Reason)
		}
	}
	waitPending(t, e, 0)
}

func TestAsyncSleepAfterCancel(t *testing.T) {
	e, clk := startFake(t, asyncCfg(), sleepScript)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	inv := enginetest.Req{Method: "INVITE", Branch: "z9hG4bK" + enginetest.RandomID(), CallID: enginetest.RandomID()}
	c.Send(c.Build(inv))
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 100 {
		t.Fatalf("want 100, got %v %v", res, err)
	}
	waitPending(t, e, 1)
	armed(t, clk)
	cancel := inv
	cancel.Method = "CANCEL"
	c.Send(c.Build(cancel))
	codes := map[int]int{}
	for len(codes) < 2 {
		res, err := c.RecvResponse(enginetest.Patience)
		if err != nil {
			t.Fatalf("after CANCEL: %v (%v)", err, codes)
		}
		codes[res.StatusCode]++
	}
	ack := inv
	ack.Method = "ACK"
	c.Send(c.Build(ack))
	clk.Advance(500 * time.Millisecond)
	waitPending(t, e, 0)
	if n := seen(e, "resume"); n != 1 {
		t.Fatalf("the handler did not continue after the sleep (%d)", n)
	}
	for {
		res, err := c.RecvResponse(300 * time.Millisecond)
		if err != nil {
			break
		}
		if res.StatusCode != 487 {
			t.Fatalf("a reply after CANCEL: %d %s", res.StatusCode, res.Reason)
		}
	}
}

// TestAsyncSleepInDelegatedRequest: a request delegated with
// KSR.sworker.task sleeps in its group's worker and continues there.
func TestAsyncSleepInDelegatedRequest(t *testing.T) {
	script := `
VM = tostring({})
function ksr_pre_routing(evname)
	if KSR.sworker.task("sw") > 0 then KSR.x.drop() end
end
function ksr_request_route()
	if KSR.is_method("ACK") then return end
	local before = VM
	local rc = KSR.async.ms_sleep(300)
	KSR.sl.send_reply(200, KSR.async.get_gname() .. " rc=" .. rc .. " same_vm=" .. tostring(before == VM))
end`
	e, clk := startFake(t, asyncCfg(`loadmodule "sworker.so"`, `async_workers_group="name=sw;workers=2"`,
		`kemi.pre_routing_callback="ksr_pre_routing"`), script)
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	const n = 10
	for i := 0; i < n; i++ {
		c.Send(c.Build(enginetest.Req{Method: "MESSAGE"}))
	}
	waitSuspended(t, e, n)
	armed(t, clk)
	clk.Advance(300 * time.Millisecond)
	for i := 0; i < n; i++ {
		if res := final(t, c, "delegated"); res.StatusCode != 200 || res.Reason != "sw rc=1 same_vm=true" {
			t.Fatalf("got %d %q", res.StatusCode, res.Reason)
		}
	}
	waitPending(t, e, 0)
}
