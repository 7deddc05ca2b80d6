package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"kemi/config"
	"kemi/engine"
)

// rtimerSettings parses a configuration made of the rtimer lines after the
// module loads (line 3 is the first of lines).
func rtimerSettings(lines ...string) (*engine.Settings, error) {
	src := "loadmodule \"rtimer.so\"\nloadmodule \"app_lua.so\"\n" + strings.Join(lines, "\n") +
		"\nmodparam(\"app_lua\", \"load\", \"script.lua\")\n"
	c, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
	if err != nil {
		return nil, err
	}
	return engine.FromConfig(c, "kemi.cfg")
}

// TestRtimerSettingsErrors: every bad rtimer parameter is a configuration
// error naming the parameter and the file:line of the statement at fault.
func TestRtimerSettingsErrors(t *testing.T) {
	const ta = `modparam("rtimer", "timer", "name=ta;interval=1")`
	cases := []struct {
		name  string
		lines []string
		want  string // the whole message
		line  int
	}{
		{"no name", []string{`modparam("rtimer", "timer", "interval=10;mode=1")`},
			`modparam rtimer timer "interval=10;mode=1": name is required, at kemi.cfg:3`, 3},
		{"empty name", []string{`modparam("rtimer", "timer", "name=;interval=10")`},
			`modparam rtimer timer "name=;interval=10": name is required, at kemi.cfg:3`, 3},
		{"interval not a number", []string{`modparam("rtimer", "timer", "name=ta;interval=ten")`},
			`modparam rtimer timer "name=ta;interval=ten": interval "ten": expected a number of seconds, or of microseconds ending in 'u', at kemi.cfg:3`, 3},
		{"interval with a unit", []string{`modparam("rtimer", "timer", "name=ta;interval=10s")`},
			`modparam rtimer timer "name=ta;interval=10s": interval "10s": expected a number of seconds, or of microseconds ending in 'u', at kemi.cfg:3`, 3},
		{"interval negative", []string{`modparam("rtimer", "timer", "name=ta;interval=-5")`},
			`modparam rtimer timer "name=ta;interval=-5": interval "-5": expected a number of seconds, or of microseconds ending in 'u', at kemi.cfg:3`, 3},
		{"interval only u", []string{`modparam("rtimer", "timer", "name=ta;interval=u")`},
			`modparam rtimer timer "name=ta;interval=u": interval "u": expected a number of seconds, or of microseconds ending in 'u', at kemi.cfg:3`, 3},
		{"interval without value", []string{`modparam("rtimer", "timer", "name=ta;interval")`},
			`modparam rtimer timer "name=ta;interval": interval "": expected a number of seconds, or of microseconds ending in 'u', at kemi.cfg:3`, 3},
		{"interval beyond 32 bits", []string{`modparam("rtimer", "timer", "name=ta;interval=4294967296")`},
			`modparam rtimer timer "name=ta;interval=4294967296": interval "4294967296": expected a number of seconds, or of microseconds ending in 'u', at kemi.cfg:3`, 3},
		{"mode not a number", []string{`modparam("rtimer", "timer", "name=ta;mode=two")`},
			`modparam rtimer timer "name=ta;mode=two": mode "two": expected a non-negative integer, at kemi.cfg:3`, 3},
		{"mode negative", []string{`modparam("rtimer", "timer", "name=ta;mode=-1")`},
			`modparam rtimer timer "name=ta;mode=-1": mode "-1": expected a non-negative integer, at kemi.cfg:3`, 3},
		{"mode too large", []string{`modparam("rtimer", "timer", "name=ta;mode=5000")`},
			`modparam rtimer timer "name=ta;mode=5000": mode 5000: at most 1024 goroutines per timer, at kemi.cfg:3`, 3},
		{"duplicate name", []string{ta, `modparam("rtimer", "timer", "name=tb")`, `modparam("rtimer", "timer", "name=TA;interval=2")`},
			`modparam rtimer timer: timer "TA" already defined at kemi.cfg:3, at kemi.cfg:5`, 5},
		{"exec of an unknown timer", []string{ta, `modparam("rtimer", "exec", "timer=tb;route=f")`},
			`modparam rtimer exec: timer "tb" is not defined (define it with modparam("rtimer", "timer", ...) first), at kemi.cfg:4`, 4},
		{"exec before its timer", []string{`modparam("rtimer", "exec", "timer=ta;route=f")`, ta},
			`modparam rtimer exec: timer "ta" is not defined (define it with modparam("rtimer", "timer", ...) first), at kemi.cfg:3`, 3},
		{"exec without timer", []string{ta, `modparam("rtimer", "exec", "route=f")`},
			`modparam rtimer exec "route=f": timer is required, at kemi.cfg:4`, 4},
		{"exec with an empty timer", []string{ta, `modparam("rtimer", "exec", "timer=;route=f")`},
			`modparam rtimer exec: timer "" is not defined (define it with modparam("rtimer", "timer", ...) first), at kemi.cfg:4`, 4},
		{"exec without route", []string{ta, `modparam("rtimer", "exec", "timer=ta")`},
			`modparam rtimer exec "timer=ta": route is required: the name of the Lua function to call, at kemi.cfg:4`, 4},
		{"exec with an empty route", []string{ta, `modparam("rtimer", "exec", "timer=ta;route=")`},
			`modparam rtimer exec "timer=ta;route=": route is required: the name of the Lua function to call, at kemi.cfg:4`, 4},
		{"exec route too long", []string{ta, `modparam("rtimer", "exec", "timer=ta;route=` + strings.Repeat("f", 63) + `")`},
			fmt.Sprintf(`modparam rtimer exec "timer=ta;route=%s": route name %q too long (at most 62 characters), at kemi.cfg:4`, strings.Repeat("f", 63), strings.Repeat("f", 63)), 4},
		{"default_interval zero", []string{`modparam("rtimer", "default_interval", 0)`},
			`modparam rtimer default_interval: must be 1..2147483647, got 0, at kemi.cfg:3`, 3},
		{"default_interval not a number", []string{`modparam("rtimer", "default_interval", "soon")`},
			`modparam rtimer default_interval: expected an integer, got "soon", at kemi.cfg:3`, 3},
		{"cluster other than one", []string{`modparam("rtimer", "timer", "name=ta;cluster=all")`},
			`modparam rtimer timer "name=ta;cluster=all": cluster "all": the only value is "one" (fire on one node of the cluster at a time), at kemi.cfg:3`, 3},
		{"cluster=one without nats", []string{ta, `modparam("rtimer", "timer", "name=tc;interval=1;cluster=one")`},
			`modparam rtimer timer "tc": cluster=one needs a NATS connection: set modparam("mqueue", "db_url", "nats://host:4222") (the timer's lease lives in NATS JetStream, docs/cluster.md), at kemi.cfg:4`, 4},
		{"unknown parameter", []string{`modparam("rtimer", "timers", "name=ta")`},
			`modparam("rtimer", "timers"): unknown parameter (rtimer has: timer, exec, default_interval), at kemi.cfg:3`, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := rtimerSettings(c.lines...)
			if err == nil {
				t.Fatalf("no error; timers %+v", s.Rtimer().Timers)
			}
			if err.Error() != c.want {
				t.Fatalf("error\n got %s\nwant %s", err, c.want)
			}
			var ce *config.Error
			if !errors.As(err, &ce) || ce.Pos.File != "kemi.cfg" || ce.Pos.Line != c.line {
				t.Fatalf("error %v is not a config error at kemi.cfg:%d", err, c.line)
			}
		})
	}
}

// TestRtimerSettings: the accepted forms, with Kamailio's mode and "u"
// rules (kamailio-reference.md §4).
func TestRtimerSettings(t *testing.T) {
	s, err := rtimerSettings(
		`modparam("rtimer", "timer", "name=ta;interval=10;mode=1;")`,            // 3
		`modparam("rtimer", "timer", "name=tb;interval=100000u")`,               // 4: u sets mode 1
		`modparam("rtimer", "timer", "name=tc;mode=3;interval=500000u")`,        // 5: the u, read first, sets 1; mode=3 ignored
		`modparam("rtimer", "timer", "name=td;interval=500000u;mode=3")`,        // 6: the last mode= wins
		`modparam("rtimer", "timer", "name=te;interval=0u")`,                    // 7: default_interval in µs
		`modparam("rtimer", "timer", "name=tf")`,                                // 8: default_interval in s, mode 0
		`modparam("rtimer", "timer", " NAME = tg ; Interval=250U ; MODE=2 ; ")`, // 9
		`modparam("rtimer", "timer", "name=th;mode=0;mode=4;interval=2")`,       // 10: mode=0 keeps mode= readable
		`modparam("rtimer", "default_interval", 30)`,                            // 11: too late for te, tf
		`modparam("rtimer", "timer", "name=ti;interval=0")`,                     // 12: 30 s
		`modparam("rtimer", "timer", "name=tj;foo=bar;interval=1;nokey")`,       // 13: unknown keys ignored
		`modparam("rtimer", "exec", "timer=ta;route=f1")`,
		`modparam("rtimer", "exec", "TIMER=TA;Route=f2;extra=1")`,
		`modparam("rtimer", "exec", "timer=ta;route=f1;")`,
		`modparam("rtimer", "exec", "timer=tb;route=g")`,
	)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		name     string
		mode     int
		interval time.Duration
		execs    string
	}
	wants := []want{
		{"ta", 1, 10 * time.Second, "f1,f2,f1"},
		{"tb", 1, 100 * time.Millisecond, "g"},
		{"tc", 1, 500 * time.Millisecond, ""},
		{"td", 3, 500 * time.Millisecond, ""},
		{"te", 1, 120 * time.Microsecond, ""},
		{"tf", 0, 120 * time.Second, ""},
		{"tg", 2, 250 * time.Microsecond, ""},
		{"th", 4, 2 * time.Second, ""},
		{"ti", 0, 30 * time.Second, ""},
		{"tj", 0, time.Second, ""},
	}
	got := s.Rtimer().Timers
	if len(got) != len(wants) {
		t.Fatalf("%d timers, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		g := got[i]
		if g.Name != w.name || g.Mode != w.mode || g.Interval != w.interval || strings.Join(g.Execs, ",") != w.execs {
			t.Errorf("timer %d: got name=%s mode=%d interval=%s execs=%s, want %+v", i, g.Name, g.Mode, g.Interval, strings.Join(g.Execs, ","), w)
		}
		if g.Pos.File != "kemi.cfg" || g.Pos.Line != 3+i+boolInt(i >= 8) {
			t.Errorf("timer %s at %s", g.Name, g.Pos)
		}
	}
	if s.Rtimer().DefaultInterval != 30*time.Second {
		t.Errorf("default_interval %s", s.Rtimer().DefaultInterval)
	}
	notices := strings.Join(s.Notices, "\n")
	for _, n := range []string{
		`kemi.cfg:5: modparam rtimer timer "name=tc;mode=3;interval=500000u": mode=3 ignored: a later attribute set mode 1`,
		`kemi.cfg:11: modparam rtimer default_interval: timer "te" (kemi.cfg:7) was defined before and keeps its interval`,
		`kemi.cfg:11: modparam rtimer default_interval: timer "tf" (kemi.cfg:8) was defined before`,
		`kemi.cfg:13: modparam rtimer timer "name=tj;foo=bar;interval=1;nokey": unknown key "foo" ignored`,
		`kemi.cfg:13: modparam rtimer timer "name=tj;foo=bar;interval=1;nokey": unknown key "nokey" ignored`,
		`kemi.cfg:15: modparam rtimer exec "TIMER=TA;Route=f2;extra=1": unknown key "extra" ignored`,
		`kemi.cfg:5: rtimer timer "tc" has no exec route`,
	} {
		if !strings.Contains(notices, n) {
			t.Errorf("notices lack %q:\n%s", n, notices)
		}
	}
	if strings.Contains(notices, `"ti" (`) || strings.Contains(notices, `"ta" (`) {
		t.Errorf("default_interval notice for a timer with its own interval:\n%s", notices)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
