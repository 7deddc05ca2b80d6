package rtimer

import (
	"strings"
	"testing"
	"time"

	"kemi/config"
	"kemi/ksr"
)

// configure applies the rtimer modparams of src to a fresh module, as the
// engine's settings parser does, then Finish.
func configure(t *testing.T, src string) (*Module, []string) {
	t.Helper()
	c, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := New()
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
	if err := m.Finish(setup); err != nil {
		t.Fatal(err)
	}
	return m, notices
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
