package rtimer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxTimerMode bounds mode=N: each of the N goroutines owns a Lua VM.
const maxTimerMode = 1024

// parseTimer parses "name=X;mode=N;interval=V[u]" as Kamailio's rtimer does
// (rtimer_mod.c stm_t_param at 5.6.3): keys case-insensitive, a trailing ';'
// allowed, unknown keys ignored (reported in notes).
//
// stm_t_param walks the list that parse_params builds, and parse_params
// (core/parser/parse_param.c parse_params2) prepends each attribute to it:
// the attributes are read last to first. An interval ending in 'u' or 'U' is
// in microseconds and sets mode 1 while mode is still 0, and mode= is read
// only while mode is 0; so the attribute written last wins:
// "mode=3;interval=500000u" runs 1 goroutine (the u, read first, set mode 1
// and mode=3 is then ignored) while "interval=500000u;mode=3" runs 3. For
// the same reason the first name= and the first interval= of the string are
// the ones kept, and any interval ending in 'u' makes the interval
// microseconds. An absent or zero interval takes def's number of seconds, or
// of microseconds with 'u' ("interval=0u" is 120 µs by default).
//
// Kamailio accepts an empty name and reads past the value of a bare
// "interval"; kemi refuses both, and bounds mode by maxTimerMode. kemi adds
// "cluster=one" (cluster.go), which Kamailio would ignore.
func parseTimer(spec string, def time.Duration) (t *TimerSpec, notes []string, err error) {
	type attr struct{ k, v string }
	var attrs []attr
	cluster := false
	for _, part := range strings.Split(spec, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "name", "mode", "interval":
			attrs = append(attrs, attr{k, v})
		case "cluster": // kemi: cluster.go
			if !strings.EqualFold(v, "one") {
				return nil, nil, fmt.Errorf("cluster %q: the only value is \"one\" (fire on one node of the cluster at a time)", v)
			}
			cluster = true
		default:
			notes = append(notes, fmt.Sprintf("unknown key %q ignored (as in Kamailio; known keys: name, mode, interval, and kemi's cluster)", k))
		}
	}
	t = &TimerSpec{Cluster: cluster}
	var n uint64
	micro, hasName, hasInterval := false, false, false
	for i := len(attrs) - 1; i >= 0; i-- { // last to first, as Kamailio
		k, v := attrs[i].k, attrs[i].v
		switch k {
		case "name":
			if hasName {
				notes = append(notes, fmt.Sprintf("name=%s ignored: the first name= is kept (%q), as in Kamailio", t.Name, v))
			}
			t.Name, hasName = v, true
		case "mode":
			if t.Mode != 0 {
				if m, err := strconv.ParseUint(v, 10, 32); err == nil && int(m) == t.Mode {
					continue // ignored, but says the same
				}
				notes = append(notes, fmt.Sprintf("mode=%s ignored: a later attribute set mode %d (Kamailio reads the attributes last to first, so the last mode= or interval=...u wins)", v, t.Mode))
				continue
			}
			m, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, nil, fmt.Errorf("mode %q: expected a non-negative integer", v)
			}
			if m > maxTimerMode {
				return nil, nil, fmt.Errorf("mode %d: at most %d goroutines per timer", m, maxTimerMode)
			}
			t.Mode = int(m)
		case "interval":
			num := v
			if strings.HasSuffix(v, "u") || strings.HasSuffix(v, "U") {
				num, micro = v[:len(v)-1], true
				if t.Mode == 0 {
					t.Mode = 1
				}
			}
			prev := n
			if n, err = strconv.ParseUint(num, 10, 32); err != nil {
				return nil, nil, fmt.Errorf("interval %q: expected a number of seconds, or of microseconds ending in 'u'", v)
			}
			if hasInterval {
				notes = append(notes, fmt.Sprintf("interval value %d ignored: the first interval= is kept (%s), as in Kamailio", prev, v))
			}
			hasInterval = true
		}
	}
	if t.Name == "" {
		return nil, nil, errors.New("name is required")
	}
	if n == 0 {
		n = uint64(def / time.Second)
		t.defaulted = true
	}
	if micro {
		t.Interval = time.Duration(n) * time.Microsecond
	} else {
		t.Interval = time.Duration(n) * time.Second
	}
	return t, notes, nil
}

// parseExec parses "timer=X;route=NAME" as Kamailio does (stm_e_param):
// keys case-insensitive, unknown keys ignored (reported in notes), a route
// name shorter than 63 characters. The timer must be defined before; the
// caller looks it up.
func parseExec(spec string) (timer, route string, notes []string, err error) {
	hasTimer, hasRoute := false, false
	for _, part := range strings.Split(spec, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "timer":
			timer, hasTimer = v, true
		case "route":
			route, hasRoute = v, true
		default:
			notes = append(notes, fmt.Sprintf("unknown key %q ignored (as in Kamailio; known keys: timer, route)", k))
		}
	}
	switch {
	case !hasTimer:
		return "", "", nil, errors.New("timer is required")
	case !hasRoute || route == "":
		return "", "", nil, errors.New("route is required: the name of the Lua function to call")
	case len(route) >= 63:
		return "", "", nil, fmt.Errorf("route name %q too long (at most 62 characters)", route)
	}
	return timer, route, notes, nil
}
