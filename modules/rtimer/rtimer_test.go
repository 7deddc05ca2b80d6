package rtimer

import (
	"strings"
	"testing"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/timers"
)

// configure applies the rtimer modparams of src to a fresh module, as the
// engine's settings parser does, then Finish.
func configure(t *testing.T, src string) (*Module, []string) {
	t.Helper()
	m, notices, err := configureWith(t, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m, notices
}

// configureWith is configure with a cluster hook, returning Finish's error.
func configureWith(t *testing.T, src string, cl Cluster) (*Module, []string, error) {
	t.Helper()
	c, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := New()
	if cl != nil {
		m.SetCluster(cl)
	}
	var notices []string
	setup := ksr.NewSetup("kemi.cfg", &notices)
	for _, st := range c.Stmts {
		if st.Kind != config.ModParam {
			continue
		}
		found := false
		for _, p := range m.Info().Params {
			if p.Name == st.Param {
				found = true
				if err := p.Set(setup, st); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !found {
			t.Fatalf("unknown parameter %q", st.Param)
		}
	}
	return m, notices, m.Finish(setup)
}

// TestCallbacksAndNotices: every exec route is a callback the script must
// define, named with its timer and position; a timer without exec is a
// notice.
func TestCallbacksAndNotices(t *testing.T) {
	m, notices := configure(t, `
modparam("rtimer", "timer", "name=ta;interval=1")
modparam("rtimer", "timer", "name=tb;interval=2")
modparam("rtimer", "exec", "timer=ta;route=f1")
modparam("rtimer", "exec", "timer=TA;route=f2")
`)
	var got []string
	for _, c := range m.Callbacks() {
		got = append(got, c.Fn+" ("+c.Why+")")
	}
	want := `f1 (rtimer exec of timer "ta" at kemi.cfg:4), f2 (rtimer exec of timer "ta" at kemi.cfg:5)`
	if strings.Join(got, ", ") != want {
		t.Errorf("callbacks %s, want %s", strings.Join(got, ", "), want)
	}
	if len(notices) != 1 || notices[0] != `kemi.cfg:3: rtimer timer "tb" has no exec route` {
		t.Errorf("notices %q", notices)
	}
	if f := runOrder(m.Settings().Timers[0]); strings.Join(f, ",") != "f2,f1" {
		t.Errorf("run order %v, want f2,f1 (Kamailio prepends)", f)
	}
}

// TestNextTick: the next tick is one interval step strictly after now.
func TestNextTick(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, c := range []struct {
		now  time.Duration // after start
		want time.Duration
	}{
		{-time.Second, 10 * time.Second},
		{0, 10 * time.Second},
		{9 * time.Second, 10 * time.Second},
		{10 * time.Second, 20 * time.Second},
		{25 * time.Second, 30 * time.Second},
	} {
		if got := NextTick(start, 10*time.Second, start.Add(c.now)); !got.Equal(start.Add(c.want)) {
			t.Errorf("NextTick(+%s) = +%s, want +%s", c.now, got.Sub(start), c.want)
		}
	}
}

// TestIdleBeforeStart: without running timers the module holds nothing
// and waits on no deadline; Stop before Start is a no-op.
func TestIdleBeforeStart(t *testing.T) {
	m, _ := configure(t, `modparam("rtimer", "timer", "name=ta;interval=1")`)
	if held, ds, busy := m.Idle(time.Now(), nil); held != 0 || len(ds) != 0 || busy != "" {
		t.Errorf("Idle = %d, %v, %q", held, ds, busy)
	}
	if err := m.Stop(t.Context()); err != nil {
		t.Error(err)
	}
	c := map[string]int64{}
	m.Counters(c)
	if len(c) != 0 {
		t.Errorf("counters before Start: %v", c)
	}
}

// TestTicksOnTheHostClock runs the timers on a fake clock through
// ksrtest's host, without an engine: a mode=0 timer's exec routes run last
// defined first on the shared VM "rtimer/main", a mode=2 timer runs on two
// goroutines with $rtimer_worker 0 and 1, a Lua error is counted and the
// timer keeps firing.
func TestTicksOnTheHostClock(t *testing.T) {
	m, _ := configure(t, `
modparam("rtimer", "timer", "name=shared;interval=1")
modparam("rtimer", "exec", "timer=shared;route=first")
modparam("rtimer", "exec", "timer=shared;route=second")
modparam("rtimer", "timer", "name=pair;mode=2;interval=2")
modparam("rtimer", "exec", "timer=pair;route=bad")
`)
	start := time.Unix(1000, 0)
	clk := timers.NewFake(start)
	var log syncBuf
	ksrtest.DepsWith(t, &log, ksrtest.Options{Clock: clk, Script: `
order = ""
function first(ev) order = order .. "1" .. ev:sub(1, 1); KSR.pv.sets("$shv(order)", order) end
function second(ev) order = order .. "2"; KSR.pv.sets("$shv(order)", order) end
function bad() KSR.pv.seti("$shv(w" .. KSR.pv.get("$rtimer_worker") .. ")", 1); error("boom") end
`}, m)
	ctx := t.Context()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	// Three goroutines wait on their first tick; two seconds later each
	// has run: shared twice, each pair goroutine once.
	if err := clk.BlockUntilContext(ctx, 3); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := clk.BlockUntilContext(ctx, 3); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	want := map[string][2]uint64{"shared": {2, 0}, "pair": {2, 2}} // ticks, errors
	for deadline := time.Now().Add(10 * time.Second); ; {
		got := map[string][2]uint64{}
		for _, st := range m.Stats() {
			got[st.Name] = [2]uint64{st.Ticks, st.Errors}
		}
		if got["shared"] == want["shared"] && got["pair"] == want["pair"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %v, want %v\n%s", got, want, log.String())
		}
		time.Sleep(time.Millisecond)
	}
	d := m.host.Deps()
	if got := d.Shv.Get("order"); got != "2"+"1r"+"2"+"1r" {
		t.Errorf("order %v, want 21r21r (last defined first, arg \"rtimer\")", got)
	}
	if d.Shv.Get("w0") != int64(1) || d.Shv.Get("w1") != int64(1) {
		t.Errorf("$rtimer_worker: w0=%v w1=%v", d.Shv.Get("w0"), d.Shv.Get("w1"))
	}
	c := map[string]int64{}
	m.Counters(c)
	if c["rtimer_ticks"] != 4 || c["rtimer_errors"] != 2 {
		t.Errorf("counters %v", c)
	}
}

// syncBuf is a log sink for the timer goroutines.
type syncBuf = ksrtest.LogBuffer
