package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"kemi/engine"
	"kemi/engine/enginetest"
	"kemi/timers"
)

// The rtimer tests run the engine on a virtual clock (timers.Fake) without
// sockets. Each timer goroutine keeps exactly one fake timer armed while it
// waits, so "n timers pending" (Fake.BlockUntilContext) means every timer
// goroutine has finished its tick and is waiting again: the tests never
// sleep. (Engine.Pending is no help here: a reload also queues tasks for the
// SIP workers.) Lua routes report through the mqueue "out" (key=value items).

// fakeStart is the virtual time the engine starts at: $TV(Sn) of a tick k*100 ms
// later reads 1800000000.k00000.
var fakeStart = time.Unix(1_800_000_000, 0)

// rtimerRig is an engine on a fake clock.
type rtimerRig struct {
	t     *testing.T
	e     *enginetest.Engine
	clock *timers.Fake
	log   *enginetest.LogBuffer
	n     int // timer goroutines, each with one fake timer armed when idle
}

// burnHandler logs into a buffer and the test log; a record "burn <duration>"
// (KSR.info from a timer route) first advances the fake clock by that
// duration: a route that runs that long, in virtual time.
type burnHandler struct {
	slog.Handler
	clock *timers.Fake
}

func (h burnHandler) Handle(ctx context.Context, r slog.Record) error {
	if rest, ok := strings.CutPrefix(strings.TrimSpace(r.Message), "burn "); ok {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return fmt.Errorf("burn: %w", err)
		}
		h.clock.Advance(d)
	}
	return h.Handler.Handle(ctx, r)
}

func (h burnHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return burnHandler{h.Handler.WithAttrs(as), h.clock}
}

func (h burnHandler) WithGroup(name string) slog.Handler {
	return burnHandler{h.Handler.WithGroup(name), h.clock}
}

// rtimerConfig is enginetest.Config with rtimer, mqueue "out" and the given
// lines; the first of lines is at line 14 of kemi.cfg.
func rtimerConfig(lines ...string) string {
	return enginetest.Config(append([]string{
		`loadmodule "rtimer.so"`,
		`loadmodule "mqueue.so"`,
		`modparam("mqueue", "mqueue", "name=out")`,
	}, lines...)...)
}

// startRtimer starts an engine on a fake clock with rtimerConfig(lines) and
// script, and waits until its n timer goroutines wait for their first tick.
func startRtimer(t *testing.T, n int, script string, lines ...string) *rtimerRig {
	t.Helper()
	r := &rtimerRig{t: t, clock: timers.NewFake(fakeStart), log: &enginetest.LogBuffer{}, n: n}
	h := burnHandler{slog.NewTextHandler(io.MultiWriter(r.log, tlogWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}), r.clock}
	r.e = enginetest.Start(t, rtimerConfig(lines...), map[string]string{"script.lua": script}, func(o *engine.Options) {
		o.Clock = r.clock
		o.NoNetwork = true
		o.Logger = slog.New(h)
	})
	r.settle()
	return r
}

// settle waits until every timer goroutine has armed its timer again.
func (r *rtimerRig) settle() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), enginetest.Patience)
	defer cancel()
	if err := r.clock.BlockUntilContext(ctx, r.n); err != nil {
		r.t.Fatalf("timer goroutines did not arm %d timers (%d pending): %v", r.n, r.clock.Pending(), err)
	}
}

// next moves the virtual time to the earliest pending deadline, fires it and
// waits for the ticks to finish; it returns that deadline's offset from start.
func (r *rtimerRig) next() time.Duration {
	r.t.Helper()
	at, ok := r.clock.AdvanceNext()
	if !ok {
		r.t.Fatal("no timer pending")
	}
	r.settle()
	return at.Sub(fakeStart)
}

// advance moves the virtual time by d at once (a late wake-up) and waits.
func (r *rtimerRig) advance(d time.Duration) {
	r.t.Helper()
	r.clock.Advance(d)
	r.settle()
}

// out drains the mqueue "out" as "key=value" strings.
func (r *rtimerRig) out() []string {
	var items []string
	q := r.e.Queues().Get("out")
	for {
		it, err := q.Fetch()
		if err != nil {
			return items
		}
		items = append(items, it.Key+"="+it.Val)
	}
}

func (r *rtimerRig) stat(name string) engine.RtimerStat {
	r.t.Helper()
	for _, s := range r.e.RtimerStats() {
		if s.Name == name {
			return s
		}
	}
	r.t.Fatalf("no stats for timer %q in %+v", name, r.e.RtimerStats())
	return engine.RtimerStat{}
}

func (r *rtimerRig) wantOut(want ...string) {
	r.t.Helper()
	if got := r.out(); !slices.Equal(got, want) {
		r.t.Fatalf("routes reported\n got %q\nwant %q", got, want)
	}
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

const stampScript = `
function ksr_request_route() end
n = 0
function on_tick(evname)
	n = n + 1
	KSR.mqueue.mq_add("out", evname, KSR.pv.get("$TV(Sn)") .. " " .. KSR.pv.get("$rm") .. " " ..
		KSR.pv.get("$ru") .. " w" .. KSR.pv.get("$rtimer_worker"))
	if n > 1 then
		KSR.info("burn 30ms")
	end
end
`

// TestRtimerTicksOnAbsoluteDeadlines: a 100 ms timer calls its route with
// "rtimer" on a faked OPTIONS request at start+k*100ms exactly, although
// every run from the second on takes 30 ms: no drift, nothing skipped.
func TestRtimerTicksOnAbsoluteDeadlines(t *testing.T) {
	r := startRtimer(t, 1, stampScript,
		`modparam("rtimer", "timer", "name=ta;interval=100000u")`,
		`modparam("rtimer", "exec", "timer=ta;route=on_tick")`)
	var want []string
	for k := 1; k <= 5; k++ {
		if at := r.next(); at != time.Duration(k)*100*time.Millisecond {
			t.Fatalf("tick %d due at +%s, want +%dms", k, at, k*100)
		}
		want = append(want, fmt.Sprintf("rtimer=1800000000.%d00000 OPTIONS sip:you@kamailio.org w0", k))
	}
	r.wantOut(want...)
	if st := r.stat("ta"); st.Ticks != 5 || st.Skipped != 0 || st.Errors != 0 || st.Mode != 1 || st.Interval != 100*time.Millisecond {
		t.Fatalf("stats %+v, want 5 ticks, nothing skipped", st)
	}
	c := r.e.Status().Counters
	if c["rtimer_ticks"] != 5 || c["rtimer_skipped"] != 0 || c["rtimer_errors"] != 0 {
		t.Fatalf("status counters %v", c)
	}
}

// TestRtimerOverrunSkipsTicks: a run that overruns its interval skips the
// ticks it covered (counted, logged) instead of queueing them, and the next
// run is back on the grid; a late wake-up runs only the latest due tick.
func TestRtimerOverrunSkipsTicks(t *testing.T) {
	r := startRtimer(t, 1, `
function ksr_request_route() end
n = 0
function on_tick()
	n = n + 1
	-- $TV(Sn) is the clock now, $Ts the second of the tick being run
	KSR.mqueue.mq_add("out", "run" .. n, KSR.pv.get("$TV(Sn)") .. " " .. KSR.pv.get("$Ts"))
	if n == 1 then
		KSR.info("burn 350ms")
	end
end
`,
		`modparam("rtimer", "timer", "name=ta;interval=100000u")`,
		`modparam("rtimer", "exec", "timer=ta;route=on_tick")`)
	r.next() // +100ms, runs until +450ms: +200, +300 and +400 are covered
	if at := r.next(); at != 500*time.Millisecond {
		t.Fatalf("after the overrun the next tick is due at +%s, want +500ms", at)
	}
	r.wantOut("run1=1800000000.100000 1800000000", "run2=1800000000.500000 1800000000")
	if st := r.stat("ta"); st.Ticks != 2 || st.Skipped != 3 {
		t.Fatalf("stats %+v, want 2 ticks and 3 skipped", st)
	}
	if !r.log.Contains("ticks skipped") || !r.log.Contains("skipped=3") {
		t.Fatalf("the skip was not logged:\n%s", r.log)
	}

	// A wake-up 1.35 s late (+1850ms): the ticks of +600 to +1700 are
	// skipped, the latest due (+1800, in the next second) runs once, the
	// next is due at +1900.
	r.advance(1350 * time.Millisecond)
	r.wantOut("run3=1800000001.850000 1800000001")
	if st := r.stat("ta"); st.Ticks != 3 || st.Skipped != 15 {
		t.Fatalf("stats %+v, want 3 ticks and 15 skipped", st)
	}
	if at := r.next(); at != 1900*time.Millisecond {
		t.Fatalf("next tick due at +%s, want +1900ms", at)
	}
	r.wantOut("run4=1800000001.900000 1800000001")
	if c := r.e.Status().Counters; c["rtimer_ticks"] != 4 || c["rtimer_skipped"] != 15 {
		t.Fatalf("status counters %v", c)
	}
}

// TestRtimerExecOrder: a timer's exec routes run every tick in reverse
// definition order, as in Kamailio (the exec list is prepended to).
func TestRtimerExecOrder(t *testing.T) {
	r := startRtimer(t, 1, `
function ksr_request_route() end
function f1() KSR.mqueue.mq_add("out", "f1", KSR.pv.get("$TV(Sn)")) end
function f2() KSR.mqueue.mq_add("out", "f2", KSR.pv.get("$TV(Sn)")) end
function f3() KSR.mqueue.mq_add("out", "f3", KSR.pv.get("$TV(Sn)")) end
`,
		`modparam("rtimer", "timer", "name=ta;interval=1;mode=1")`,
		`modparam("rtimer", "exec", "timer=ta;route=f1")`,
		`modparam("rtimer", "exec", "timer=ta;route=f2")`,
		`modparam("rtimer", "exec", "timer=ta;route=f3")`)
	r.next()
	r.next()
	r.wantOut("f3=1800000001.000000", "f2=1800000001.000000", "f1=1800000001.000000",
		"f3=1800000002.000000", "f2=1800000002.000000", "f1=1800000002.000000")
	if st := r.stat("ta"); st.Ticks != 2 {
		t.Fatalf("stats %+v: a tick is one run of the whole exec list", st)
	}
}

// TestRtimerLuaErrorKeepsFiring: a Lua error in one tick is logged with its
// traceback and counted; the other routes of that tick and the next ticks
// still run.
func TestRtimerLuaErrorKeepsFiring(t *testing.T) {
	r := startRtimer(t, 1, `
function ksr_request_route() end
n = 0
function after() KSR.mqueue.mq_add("out", "after", tostring(n)) end
function flaky()
	n = n + 1
	if n == 2 then
		local t = nil
		return t.field
	end
	KSR.mqueue.mq_add("out", "flaky", tostring(n))
end
`,
		`modparam("rtimer", "timer", "name=ta;interval=1")`,
		`modparam("rtimer", "exec", "timer=ta;route=after")`,
		`modparam("rtimer", "exec", "timer=ta;route=flaky")`)
	for range 4 {
		r.next()
	}
	r.wantOut("flaky=1", "after=1", "after=2", "flaky=3", "after=3", "flaky=4", "after=4")
	if st := r.stat("ta"); st.Ticks != 4 || st.Errors != 1 {
		t.Fatalf("stats %+v, want 4 ticks and 1 error", st)
	}
	if !r.log.Contains("attempt to index a non-table object") || !r.log.Contains("stack traceback") ||
		!r.log.Contains("script.lua:9:") {
		t.Fatalf("the Lua error was not logged with file:line and traceback:\n%s", r.log)
	}
}

// TestRtimerModeN: mode=3 runs three goroutines, each with its own VM and
// $rtimer_worker 0..2, each running the exec list at every tick. "mode=" before
// the "u" would give one (Kamailio's rule: the last one wins); here mode comes last.
func TestRtimerModeN(t *testing.T) {
	r := startRtimer(t, 3, `
function ksr_request_route() end
function on_tick()
	count = (count or 0) + 1 -- a global: one per VM
	KSR.mqueue.mq_add("out", "w" .. KSR.pv.get("$rtimer_worker"), tostring(count) .. "@" .. KSR.pv.get("$TV(Sn)"))
end
`,
		`modparam("rtimer", "timer", "name=tc;interval=500000u;mode=3")`,
		`modparam("rtimer", "exec", "timer=tc;route=on_tick")`)
	r.next()
	r.next()
	got := r.out()
	slices.Sort(got)
	want := []string{
		"w0=1@1800000000.500000", "w0=2@1800000001.000000",
		"w1=1@1800000000.500000", "w1=2@1800000001.000000",
		"w2=1@1800000000.500000", "w2=2@1800000001.000000",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("routes reported\n got %q\nwant %q", got, want)
	}
	if st := r.stat("tc"); st.Ticks != 6 || st.Mode != 3 {
		t.Fatalf("stats %+v, want 6 runs (3 per interval)", st)
	}
	var names []string
	for _, w := range r.e.Status().Workers {
		if strings.HasPrefix(w.Name, "rtimer/") {
			names = append(names, w.Name)
		}
	}
	if !slices.Equal(names, []string{"rtimer/tc/0", "rtimer/tc/1", "rtimer/tc/2"}) {
		t.Fatalf("rtimer VMs %q", names)
	}
}

// TestRtimerModeZeroSharesOneVM: mode=0 timers share one goroutine and VM
// ("rtimer/main"): a global set by one timer's route is seen by the other's.
// Of two ticks due at the same time, the timer defined first runs first.
func TestRtimerModeZeroSharesOneVM(t *testing.T) {
	r := startRtimer(t, 1, `
function ksr_request_route() end
function set_it() shared = (shared or 0) + 1 end
function read_it()
	KSR.mqueue.mq_add("out", "w" .. KSR.pv.get("$rtimer_worker"), tostring(shared) .. "@" .. KSR.pv.get("$TV(Sn)"))
end
`,
		`modparam("rtimer", "timer", "name=ta;interval=1")`,
		`modparam("rtimer", "timer", "name=tb;interval=2")`,
		`modparam("rtimer", "exec", "timer=ta;route=set_it")`,
		`modparam("rtimer", "exec", "timer=tb;route=read_it")`)
	for range 4 {
		r.next()
	}
	r.wantOut("w0=2@1800000002.000000", "w0=4@1800000004.000000")
	var names []string
	for _, w := range r.e.Status().Workers {
		if strings.HasPrefix(w.Name, "rtimer") {
			names = append(names, w.Name)
		}
	}
	if !slices.Equal(names, []string{"rtimer/main"}) {
		t.Fatalf("rtimer VMs %q, want one shared", names)
	}
	if a, b := r.stat("ta"), r.stat("tb"); a.Ticks != 4 || b.Ticks != 2 || a.Mode != 0 || b.Interval != 2*time.Second {
		t.Fatalf("stats %+v %+v", a, b)
	}
}

// TestRtimerReload: timer VMs switch to a reloaded script at their next
// tick; a reload whose script lacks an exec route is refused and the
// running version keeps firing.
func TestRtimerReload(t *testing.T) {
	script := func(v string) string {
		return "function ksr_request_route() end\nfunction on_tick() KSR.mqueue.mq_add(\"out\", \"v\", \"" + v + "\") end\n"
	}
	r := startRtimer(t, 2, script("1"),
		`modparam("rtimer", "timer", "name=ta;interval=1")`,
		`modparam("rtimer", "timer", "name=tb;interval=1;mode=1")`,
		`modparam("rtimer", "exec", "timer=ta;route=on_tick")`,
		`modparam("rtimer", "exec", "timer=tb;route=on_tick")`)
	r.next()
	r.wantOut("v=1", "v=1")
	path := filepath.Join(r.e.Dir, "script.lua")
	if err := os.WriteFile(path, []byte(script("2")), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := r.e.Reload(); err != nil || v != 2 {
		t.Fatalf("reload: version %d, error %v", v, err)
	}
	r.next()
	r.wantOut("v=2", "v=2")
	for _, w := range r.e.Status().Workers {
		if strings.HasPrefix(w.Name, "rtimer") && w.Version != 2 {
			t.Fatalf("worker %s runs version %d after its tick, want 2", w.Name, w.Version)
		}
	}
	if err := os.WriteFile(path, []byte("function ksr_request_route() end\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := r.e.Reload()
	if err == nil || !strings.Contains(err.Error(), `on_tick (rtimer exec of timer "ta" at `+filepath.Join(r.e.Dir, "kemi.cfg")+`:16)`) {
		t.Fatalf("reload without the exec route: error %v", err)
	}
	r.next()
	r.wantOut("v=2", "v=2")
}

// TestRtimerMissingRoute: an exec route the script lacks stops the engine
// from being built (kemi check and kemi run build it the same way), naming
// the timer and the file:line of the exec.
func TestRtimerMissingRoute(t *testing.T) {
	_, err := enginetest.TryStart(t, rtimerConfig(
		`modparam("rtimer", "timer", "name=ta;interval=1")`,
		`modparam("rtimer", "exec", "timer=ta;route=on_tick")`,
		`modparam("rtimer", "exec", "timer=ta;route=nope")`),
		map[string]string{"script.lua": "function ksr_request_route() end\nfunction on_tick() end\n"},
		func(o *engine.Options) { o.NoNetwork = true; o.Clock = timers.NewFake(fakeStart) })
	want := `script lacks function nope (rtimer exec of timer "ta" at /`
	if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), "/kemi.cfg:16)") {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// BenchmarkRtimerTick is the cost of one tick of a timer whose route does
// nothing: wake-up, script version check, faked request, Lua call.
func BenchmarkRtimerTick(b *testing.B) {
	clock := timers.NewFake(fakeStart)
	e := enginetest.Start(b, rtimerConfig(
		`modparam("rtimer", "timer", "name=ta;interval=1")`,
		`modparam("rtimer", "exec", "timer=ta;route=on_tick")`),
		map[string]string{"script.lua": "function ksr_request_route() end\nfunction on_tick(ev) end\n"},
		func(o *engine.Options) {
			o.NoNetwork = true
			o.Clock = clock
			o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		})
	ctx := context.Background()
	clock.BlockUntilContext(ctx, 1)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clock.AdvanceNext()
		clock.BlockUntilContext(ctx, 1)
	}
	b.StopTimer()
	if st := e.RtimerStats()[0]; st.Ticks != uint64(b.N) {
		b.Fatalf("%d ticks for b.N=%d", st.Ticks, b.N)
	}
}

// TestRtimerDrainsMqueueOverSIP is end to end on the real clock: SIP
// MESSAGE requests over UDP fill an mqueue, a 100 ms rtimer (interval in
// microseconds, so on its own goroutine) drains it; every item comes out,
// in order, within a bounded time.
func TestRtimerDrainsMqueueOverSIP(t *testing.T) {
	e := enginetest.Start(t, rtimerConfig(
		`modparam("mqueue", "mqueue", "name=jobs")`,
		`modparam("rtimer", "timer", "name=drain;interval=100000u")`,
		`modparam("rtimer", "exec", "timer=drain;route=ksr_drain")`), map[string]string{"script.lua": `
function ksr_request_route()
	if KSR.is_MESSAGE() then
		KSR.mqueue.mq_add("jobs", KSR.pv.get("$ci"), KSR.pv.get("$rb"))
		KSR.sl.send_reply(202, "Queued")
		return
	end
	KSR.sl.send_reply(405, "Not here")
end

function ksr_drain(evname)
	while KSR.mqueue.mq_fetch("jobs") == 1 do
		KSR.mqueue.mq_add("out", KSR.pv.get("$mqk(jobs)"), KSR.pv.get("$mqv(jobs)") .. " " .. evname)
	end
end
`})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	const n = 50
	var want []string
	for i := range n {
		id := fmt.Sprintf("job-%02d", i)
		res := c.Do(enginetest.Req{Method: "MESSAGE", CallID: id, Body: fmt.Sprintf("body %d", i)}, enginetest.Patience)
		if res.StatusCode != 202 {
			t.Fatalf("MESSAGE %d: got %d %s", i, res.StatusCode, res.Reason)
		}
		want = append(want, fmt.Sprintf("%s=body %d rtimer", id, i))
	}
	// Drained within a few intervals; enginetest.Patience is a bound for a loaded machine,
	// not a speed measurement.
	deadline := time.Now().Add(enginetest.Patience)
	out := e.Queues().Get("out")
	for out.Len() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	var got []string
	for _, it := range out.Snapshot() {
		got = append(got, it.Key+"="+it.Val)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("drained %d of %d items within %s:\n got %q\nwant %q", len(got), n, enginetest.Patience, got, want)
	}
	if l := e.Queues().Get("jobs").Len(); l != 0 {
		t.Fatalf("%d items left in jobs", l)
	}
	if c := e.Status().Counters; c["rtimer_ticks"] < 1 || c["rtimer_errors"] != 0 {
		t.Fatalf("status counters %v", c)
	}
}
