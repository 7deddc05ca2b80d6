package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine"
	"kemi/engine/enginetest"
)

// injectStart is where the TestClock of startInjected starts.
func injectStart() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// startInjected starts an engine without network on a TestClock, from cfg
// (a kamailio.cfg body after the listen and module lines) and script.lua.
func startInjected(t *testing.T, cfg, script string) (*engine.Engine, *engine.TestClock) {
	t.Helper()
	return startInjectedTB(t, cfg, script)
}

func startInjectedTB(t testing.TB, cfg, script string) (*engine.Engine, *engine.TestClock) {
	t.Helper()
	dir := t.TempDir()
	enginetest.Files(t, dir, map[string]string{
		"script.lua": script,
		"kemi.cfg": "#!KAMAILIO\nchildren=2\nlisten=udp:127.0.0.1:5060\nlisten=tcp:127.0.0.1:5070\n" +
			"loadmodule \"sl.so\"\nloadmodule \"tm.so\"\nloadmodule \"pv.so\"\nloadmodule \"app_lua.so\"\n" +
			cfg + "\nmodparam(\"app_lua\", \"load\", \"script.lua\")\ncfgengine \"lua\"\n",
	})
	set, err := engine.Load(filepath.Join(dir, "kemi.cfg"), nil)
	if err != nil {
		t.Fatal(err)
	}
	clock := engine.NewTestClock(injectStart())
	e, err := engine.New(set, engine.Options{NoNetwork: true, Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), enginetest.Patience)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return e, clock
}

func request(t *testing.T, method string, extra ...string) *sip.Request {
	t.Helper()
	return requestTB(t, method, extra...)
}

func requestTB(t testing.TB, method string, extra ...string) *sip.Request {
	t.Helper()
	raw := method + " sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-i1;rport\r\n" +
		"From: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:bob@127.0.0.1>\r\nCall-ID: inject-1\r\nCSeq: 1 " + method + "\r\n"
	for _, h := range extra {
		raw += h + "\r\n"
	}
	m, err := sip.ParseMessage([]byte(raw + "Content-Length: 0\r\n\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

func wait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), enginetest.Patience)
	t.Cleanup(cancel)
	return ctx
}

func codes(o *engine.Outcome) []int {
	var out []int
	for _, r := range o.Replies() {
		out = append(out, r.StatusCode)
	}
	return out
}

func TestInjectRoutesLikeAReceivedRequest(t *testing.T) {
	e, _ := startInjected(t, "", `
function ksr_request_route()
	KSR.hdr.append_to_reply("X-Where: " .. KSR.pv.get("$pr") .. " " .. KSR.pv.get("$si") .. ":" .. KSR.pv.get("$sp") ..
		" -> " .. KSR.pv.get("$Ri") .. ":" .. KSR.pv.get("$Rp") .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end`)
	out, err := e.Inject(wait(t), request(t, "OPTIONS"), engine.InjectOptions{Proto: "tcp", Src: netip.MustParseAddrPort("192.0.2.9:4000")})
	if err != nil {
		t.Fatal(err)
	}
	rs := out.Replies()
	if len(rs) != 1 || rs[0].StatusCode != 200 {
		t.Fatalf("replies %v", codes(out))
	}
	if h := rs[0].GetHeader("X-Where"); h == nil || h.Value() != "tcp 192.0.2.9:4000 -> 127.0.0.1:5070" {
		t.Fatalf("X-Where %v: the request must look received over tcp from its source on the configured tcp listen", h)
	}
	if r := out.Routes(); len(r) != 1 || r[0].Group != "receivers" || r[0].Delegated {
		t.Fatalf("routes %+v", r)
	}
	if out.Dropped() || out.Suspended() {
		t.Fatal("neither dropped nor suspended")
	}
	if _, err := e.Inject(wait(t), request(t, "OPTIONS"), engine.InjectOptions{Proto: "sctp"}); err == nil {
		t.Fatal("sctp accepted")
	}
}

func TestInjectAsyncResumesOnTheVirtualClock(t *testing.T) {
	e, clock := startInjected(t, "loadmodule \"async.so\"", `
function ksr_request_route()
	KSR.async.ms_route("later", 1500)
	KSR.x.exit()
end
function later()
	KSR.sl.send_reply(200, "Later")
end`)
	out, err := e.Inject(wait(t), request(t, "INVITE"), engine.InjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := codes(out); len(got) != 1 || got[0] != 100 || !out.Suspended() {
		t.Fatalf("after inject: replies %v suspended %v, want [100] and suspended", got, out.Suspended())
	}
	if err := e.Advance(wait(t), 1499*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := codes(out); len(got) != 1 {
		t.Fatalf("resumed before the deadline: %v", got)
	}
	if err := e.Advance(wait(t), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := codes(out); len(got) != 2 || got[1] != 200 || out.Suspended() {
		t.Fatalf("after the deadline: replies %v suspended %v", got, out.Suspended())
	}
	if got := clock.Now().Sub(injectStart()); got != 1500*time.Millisecond {
		t.Fatalf("clock at +%s, want +1.5s", got)
	}
}

// TestAdvanceRunsEveryTick: advancing 1 s over a 100 ms timer runs it 10
// times (the clock stops at each deadline), not once with 9 ticks skipped.
func TestAdvanceRunsEveryTick(t *testing.T) {
	e, _ := startInjected(t, `loadmodule "mqueue.so"
loadmodule "rtimer.so"
modparam("mqueue", "mqueue", "name=ticks")
modparam("rtimer", "timer", "name=t;interval=100000u;mode=1")
modparam("rtimer", "exec", "timer=t;route=tick")`, `
function ksr_request_route() end
function tick(evname)
	KSR.mqueue.mq_add("ticks", evname, KSR.pv.get("$TV(Sn)"))
end`)
	if err := e.Advance(wait(t), time.Second); err != nil {
		t.Fatal(err)
	}
	items := e.Queues().Get("ticks").Snapshot()
	if len(items) != 10 {
		t.Fatalf("%d ticks in 1 s of a 100 ms timer, want 10: %v", len(items), items)
	}
	if items[0].Val != "1767225600.100000" || items[9].Val != "1767225601.000000" {
		t.Fatalf("ticks at %s .. %s, want exactly +100ms .. +1s", items[0].Val, items[9].Val)
	}
	for _, st := range e.RtimerStats() {
		if st.Skipped != 0 {
			t.Fatalf("timer %s skipped %d ticks", st.Name, st.Skipped)
		}
	}
}

func TestOutcomeCancel(t *testing.T) {
	e, _ := startInjected(t, "loadmodule \"async.so\"", `
function ksr_request_route()
	if KSR.is_INVITE() then
		KSR.async.route("later", 5)
		KSR.x.exit()
	end
	KSR.sl.send_reply(200, "OK")
end
function later()
	KSR.sl.send_reply(200, "Later")
end`)
	out, err := e.Inject(wait(t), request(t, "INVITE"), engine.InjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := out.Cancel(wait(t))
	if err != nil || !ok {
		t.Fatalf("cancel: %v %v", ok, err)
	}
	if err := e.Advance(wait(t), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := codes(out); len(got) != 2 || got[1] != 487 {
		t.Fatalf("replies %v, want [100 487]", got)
	}
	if ok, _ := out.Cancel(wait(t)); ok {
		t.Fatal("second cancel returned true")
	}
	stateless, err := e.Inject(wait(t), request(t, "MESSAGE"), engine.InjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := stateless.Cancel(wait(t)); ok {
		t.Fatal("cancel of a request without a transaction returned true")
	}
}

func TestInjectDelegatedAndDropped(t *testing.T) {
	e, _ := startInjected(t, `async_workers_group="name=slow;workers=1"
kemi.pre_routing_callback="pre"
loadmodule "sworker.so"`, `
function pre(evname)
	if KSR.is_MESSAGE() then
		KSR.sworker.task("slow")
	end
	KSR.x.drop()
end
function ksr_request_route()
	KSR.sl.send_reply(200, KSR.async.get_gname())
end`)
	out, err := e.Inject(wait(t), request(t, "MESSAGE"), engine.InjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := out.Delegated(); !ok || g != "slow" {
		t.Fatalf("delegated %q %v", g, ok)
	}
	if rs := out.Replies(); len(rs) != 1 || rs[0].Reason != "slow" {
		t.Fatalf("replies %v", codes(out))
	}
	out, err = e.Inject(wait(t), request(t, "OPTIONS"), engine.InjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Delegated(); ok || !out.Dropped() || len(out.Replies()) != 0 {
		t.Fatalf("OPTIONS: delegated=%v dropped=%v replies=%v", ok, out.Dropped(), codes(out))
	}
}

// TestWaitIdleSeesAStrayTimer: a goroutine waiting on the clock that the
// engine does not know of keeps it from being idle, with a message saying
// so (a new clock user must be listed in expectedDeadlines).
func TestWaitIdleSeesAStrayTimer(t *testing.T) {
	e, clock := startInjected(t, "", "function ksr_request_route() end")
	if err := e.WaitIdle(wait(t)); err != nil {
		t.Fatal(err)
	}
	stray := clock.NewTimer(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := e.WaitIdle(ctx)
	if err == nil || !strings.Contains(err.Error(), "clock timers armed at [+1s], expected at []") {
		t.Fatalf("WaitIdle with a stray timer: %v", err)
	}
	stray.Stop()
	if err := e.WaitIdle(wait(t)); err != nil {
		t.Fatal(err)
	}
}

func TestInjectNeedsAStartedEngineAndAdvanceATestClock(t *testing.T) {
	dir := t.TempDir()
	enginetest.Files(t, dir, map[string]string{"script.lua": "function ksr_request_route() end", "kemi.cfg": enginetest.Config()})
	set, err := engine.Load(filepath.Join(dir, "kemi.cfg"), nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(set, engine.Options{NoNetwork: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Inject(wait(t), request(t, "OPTIONS"), engine.InjectOptions{}); err == nil {
		t.Fatal("inject before start accepted")
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer e.Stop(context.Background())
	if err := e.Advance(wait(t), time.Second); err == nil || !strings.Contains(err.Error(), "TestClock") {
		t.Fatalf("advance on the real clock: %v", err)
	}
	out, err := e.Inject(wait(t), request(t, "OPTIONS"), engine.InjectOptions{})
	if err != nil || len(out.Routes()) != 1 {
		t.Fatalf("inject on the real clock: %v", err)
	}
}

// BenchmarkInject measures one injected request answered statelessly,
// including the wait for the engine to be idle (what a t.request costs).
func BenchmarkInject(b *testing.B) {
	e, _ := startInjectedTB(b, "", "function ksr_request_route() KSR.sl.send_reply(200, \"OK\") end")
	msg := requestTB(b, "OPTIONS")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, err := e.Inject(ctx, msg.Clone(), engine.InjectOptions{})
		if err != nil || len(out.Replies()) != 1 {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdvanceTick measures one virtual clock step that runs an rtimer
// tick (what each timer deadline inside a t.advance costs).
func BenchmarkAdvanceTick(b *testing.B) {
	e, _ := startInjectedTB(b, `loadmodule "rtimer.so"
modparam("rtimer", "timer", "name=t;interval=1000u;mode=1")
modparam("rtimer", "exec", "timer=t;route=tick")`, "function ksr_request_route() end\nfunction tick() end")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Advance(ctx, time.Millisecond); err != nil {
			b.Fatal(err)
		}
	}
}

// Under NoNetwork relays go to the virtual network: the Outcome lists them,
// and the test answers for the next hop.
func TestInjectRelaysToTheVirtualNetwork(t *testing.T) {
	e, _ := startInjected(t, "", `
function ksr_request_route()
	if KSR.is_MESSAGE() then
		KSR.forward_uri("sip:10.0.0.9:5070;transport=tcp")
		return
	end
	KSR.tm.t_on_failure("failed")
	KSR.tm.t_relay_to_proto_addr("udp", "10.0.0.7", 5090)
end
function failed()
	KSR.sl.send_reply(599, "Failure route saw " .. KSR.tm.t_get_status_code())
end`)
	out, err := e.Inject(wait(t), request(t, "MESSAGE"), engine.InjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs := out.Relays()
	if len(rs) != 1 || !rs[0].Stateless() || rs[0].Target() != "tcp:10.0.0.9:5070" || rs[0].URI() != "sip:10.0.0.9:5070;transport=tcp" {
		t.Fatalf("stateless forward recorded as %d relays: %+v", len(rs), relaysString(rs))
	}
	if via := rs[0].Sent()[0].Via(); via == nil || via.Transport != "TCP" || via.Port != 5070 {
		t.Fatalf("forwarded with Via %v (want the tcp listener's)", via)
	}
	if err := rs[0].Reply(wait(t), 200, "OK", nil, ""); err == nil {
		t.Fatal("a stateless forward was answered")
	}

	out, err = e.Inject(wait(t), request(t, "OPTIONS"), engine.InjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs = out.Relays()
	if len(rs) != 1 || rs[0].Stateless() || rs[0].Target() != "udp:10.0.0.7:5090" || len(out.Replies()) != 0 {
		t.Fatalf("t_relay recorded as %s, replies %v", relaysString(rs), out.Replies())
	}
	if err := rs[0].Reply(wait(t), 42, "", nil, ""); err == nil {
		t.Fatal("status 42 accepted")
	}
	if err := rs[0].Reply(wait(t), 503, "Down", []string{"Retry-After: 5"}, ""); err != nil {
		t.Fatal(err)
	}
	res := out.Replies()
	if len(res) != 1 || res[0].StatusCode != 599 || res[0].Reason != "Failure route saw 503" {
		t.Fatalf("replies upstream: %v", res)
	}
	if ok, err := rs[0].Expire(wait(t)); ok || err != nil {
		t.Fatalf("an answered branch expired: %v %v", ok, err)
	}
}

func relaysString(rs []*engine.Relay) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "[%s -> %s stateless=%v] ", r.URI(), r.Target(), r.Stateless())
	}
	return b.String()
}

// tmx's $T_reply_code, $T_reply_reason and $T(reply_type) in the request
// route (no transaction), a t_on_reply function and a failure route. They
// exist only with tmx loaded, as in Kamailio.
func TestTMReplyPVs(t *testing.T) {
	e, _ := startInjected(t, `loadmodule "tmx.so"`, `
local function show()
	return tostring(KSR.pv.get("$T_reply_code")) .. "/" .. tostring(KSR.pv.get("$T_reply_reason")) .. "/" .. tostring(KSR.pv.get("$T(reply_type)"))
end
function ksr_request_route()
	if KSR.is_MESSAGE() then
		KSR.sl.send_reply(200, show())
		return
	end
	KSR.tm.t_on_reply("onrep")
	KSR.tm.t_on_failure("failed")
	KSR.tm.t_relay_to_proto_addr("udp", "10.0.0.7", 5090)
end
function onrep()
	KSR.pv.sets("$shv(onrep)", show())
end
function failed()
	KSR.tm.t_reply(599, show())
end`)
	out, err := e.Inject(wait(t), request(t, "MESSAGE"), engine.InjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rs := out.Replies(); len(rs) != 1 || rs[0].Reason != "0//nil" {
		t.Fatalf("without a transaction: %v", rs)
	}
	for _, tc := range []struct {
		reply  int
		reason string
		onrep  string
		final  string
	}{
		{0, "", "", "408/Request Timeout/1"},
		{486, "Busy Here", "486/Busy Here/0", "486/Busy Here/0"},
	} {
		out, err := e.Inject(wait(t), request(t, "INVITE"), engine.InjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b := out.Relays()[0]
		if err := b.Reply(wait(t), 180, "Ringing", nil, ""); err != nil {
			t.Fatal(err)
		}
		if got := e.SharedVar("onrep"); got != "180/Ringing/0" {
			t.Fatalf("t_on_reply for a 180 saw %v", got)
		}
		if tc.reply == 0 {
			if ok, err := b.Expire(wait(t)); !ok || err != nil {
				t.Fatalf("expire: %v %v", ok, err)
			}
		} else if err := b.Reply(wait(t), tc.reply, tc.reason, nil, ""); err != nil {
			t.Fatal(err)
		}
		if tc.onrep != "" {
			if got := e.SharedVar("onrep"); got != tc.onrep {
				t.Fatalf("t_on_reply for a %d saw %v", tc.reply, got)
			}
		}
		rs := out.Replies()
		if last := rs[len(rs)-1]; last.StatusCode != 599 || last.Reason != tc.final {
			t.Fatalf("failure route after %d: %d %q", tc.reply, last.StatusCode, last.Reason)
		}
	}
}

// TestTsIsTheMessagesTime: $Ts and $TV(s) are the clock's time when a
// route first reads them, the same for the rest of that message's
// routing, and read anew for the next message.
func TestTsIsTheMessagesTime(t *testing.T) {
	e, _ := startInjected(t, "", `
function ksr_request_route()
	local a = KSR.pv.get("$Ts")
	local b = KSR.pv.get("$TV(s)")
	KSR.hdr.append_to_reply("X-Ts: " .. a .. " " .. b .. " " .. KSR.pv.get("$Ts") .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end`)
	ts := func() string {
		t.Helper()
		out, err := e.Inject(wait(t), request(t, "OPTIONS"), engine.InjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rs := out.Replies()
		if len(rs) != 1 || rs[0].GetHeader("X-Ts") == nil {
			t.Fatalf("replies %v", codes(out))
		}
		return rs[0].GetHeader("X-Ts").Value()
	}
	s := injectStart().Unix()
	if got, want := ts(), fmt.Sprintf("%d %d %d", s, s, s); got != want {
		t.Fatalf("first message: X-Ts %q, want %q", got, want)
	}
	if err := e.Advance(wait(t), 90*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := ts(), fmt.Sprintf("%d %d %d", s+90, s+90, s+90); got != want {
		t.Fatalf("after 90 s: X-Ts %q, want %q", got, want)
	}
}
