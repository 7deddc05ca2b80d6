package rtimer

import (
	"strings"
	"testing"
	"time"
)

// TestParseTimerOrder: Kamailio's stm_t_param reads the attributes last to
// first (parse_params prepends each one to its list), so the last mode= or
// interval=...u wins, and the first name= and interval= are kept.
func TestParseTimerOrder(t *testing.T) {
	for _, c := range []struct {
		spec     string
		name     string
		mode     int
		interval time.Duration
		note     string // a notice that must be there ("" for none)
	}{
		{"name=t;mode=2;interval=300000u", "t", 1, 300 * time.Millisecond, "mode=2 ignored: a later attribute set mode 1"},
		{"name=t;interval=300000u;mode=2", "t", 2, 300 * time.Millisecond, ""},
		{"name=t;interval=100000u;mode=1", "t", 1, 100 * time.Millisecond, ""},
		{"name=t;mode=1;interval=100000u", "t", 1, 100 * time.Millisecond, ""},
		{"name=t;mode=2;mode=3;interval=1", "t", 3, time.Second, "mode=2 ignored"},
		{"name=t;mode=4;mode=0;interval=1", "t", 4, time.Second, ""}, // mode=0, read first, leaves mode= readable
		{"name=t;interval=7;interval=5", "t", 0, 7 * time.Second, "interval value 5 ignored"},
		{"name=t;interval=7;interval=5u", "t", 1, 7 * time.Microsecond, "interval value 5 ignored"}, // the u flag sticks, as in Kamailio
		{"name=a;name=b", "a", 0, 120 * time.Second, "name=b ignored"},
	} {
		ts, notes, err := parseTimer(c.spec, 120*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if ts.Name != c.name || ts.Mode != c.mode || ts.Interval != c.interval {
			t.Errorf("%s: name=%s mode=%d interval=%s, want name=%s mode=%d interval=%s", c.spec, ts.Name, ts.Mode, ts.Interval, c.name, c.mode, c.interval)
		}
		all := strings.Join(notes, "\n")
		if c.note == "" && all != "" {
			t.Errorf("%s: unexpected notices %q", c.spec, all)
		}
		if c.note != "" && !strings.Contains(all, c.note) {
			t.Errorf("%s: notices %q lack %q", c.spec, all, c.note)
		}
	}
}

// TestParseTimerCluster: kemi's cluster=one (case-insensitive value), in
// any position; any other value is an error.
func TestParseTimerCluster(t *testing.T) {
	for _, spec := range []string{"name=t;cluster=one", "cluster=ONE;name=t;interval=1"} {
		ts, notes, err := parseTimer(spec, time.Second)
		if err != nil || !ts.Cluster || len(notes) != 0 {
			t.Errorf("%s: %+v %q %v", spec, ts, notes, err)
		}
	}
	if ts, _, _ := parseTimer("name=t", time.Second); ts.Cluster {
		t.Error("cluster set without cluster=one")
	}
	if _, _, err := parseTimer("name=t;cluster=", time.Second); err == nil {
		t.Error("cluster= accepted")
	}
}
