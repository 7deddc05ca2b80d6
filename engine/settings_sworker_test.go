package engine

import (
	"fmt"
	"strings"
	"testing"

	"kemi/config"
)

func settingsFrom(t *testing.T, lines ...string) (*Settings, error) {
	t.Helper()
	src := strings.Join(lines, "\n") + "\nloadmodule \"app_lua.so\"\nmodparam(\"app_lua\", \"load\", \"script.lua\")\n"
	c, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
	if err != nil {
		return nil, err
	}
	return FromConfig(c, "")
}

func groupsOf(s *Settings) string {
	var out []string
	for _, g := range s.AsyncGroups {
		out = append(out, fmt.Sprintf("%s:%d:nb=%v:us=%d:in=%d", g.Name, g.Workers, g.NonBlock, g.USleep, g.Inbox))
	}
	return strings.Join(out, " ")
}

// TestAsyncWorkersOrdering checks Kamailio's ordering rules for the core
// async_workers parameters (src/core/async_task.c, reference 2.1).
func TestAsyncWorkersOrdering(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lines   []string
		groups  string
		notices []string // substrings, one per expected notice, in order
	}{
		{"async_workers", []string{"async_workers=4"}, "default:4:nb=false:us=0:in=0", nil},
		{"async_workers zero creates nothing", []string{"async_workers=0"}, "", nil},
		{"second async_workers ignored", []string{"async_workers=4", "async_workers=8"},
			"default:4:nb=false:us=0:in=0", []string{"kemi.cfg:2: async_workers: task workers already set"}},
		{"group first creates default with 1 worker, later async_workers ignored",
			[]string{`async_workers_group="name=reg;workers=2;nonblock=1"`, "async_workers=4"},
			"default:1:nb=false:us=0:in=0 reg:2:nb=true:us=0:in=0", []string{"kemi.cfg:2: async_workers: task workers already set"}},
		{"usleep and nonblock before the default group are ignored",
			[]string{"async_usleep=100", "async_nonblock=1", "async_workers=2"},
			"default:2:nb=false:us=0:in=0", []string{"kemi.cfg:1: async_usleep: set before", "kemi.cfg:2: async_nonblock: set before"}},
		{"usleep and nonblock after the default group apply",
			[]string{"async_workers=2", "async_usleep=100", "async_nonblock=1", "async_nonblock=0"},
			"default:2:nb=true:us=100:in=0", nil},
		{"name=default configures the default group",
			[]string{`async_workers_group="name=default;workers=5;usleep=3;inbox=9"`, "async_workers=2"},
			"default:5:nb=false:us=3:in=9", []string{"kemi.cfg:2: async_workers: task workers already set"}},
		{"name=default after async_workers: workers ignored, nonblock and usleep applied",
			[]string{"async_workers=3", `async_workers_group="name=default;workers=5;nonblock=1;usleep=7"`},
			"default:3:nb=true:us=7:in=0", []string{"kemi.cfg:2: async_workers_group: task workers already set"}},
		{"name=default nonblock=0 does not reset nonblock",
			[]string{"async_workers=3", "async_nonblock=1", `async_workers_group="name=default;workers=1;nonblock=0"`},
			"default:3:nb=true:us=0:in=0", []string{"task workers already set"}},
		{"group keys: case-insensitive, blanks, unknown keys and trailing ';'",
			[]string{`async_workers_group=" NAME = sip ; Workers=2; NonBlock=1; USleep=10; Inbox=4; colour=blue;; "`},
			"default:1:nb=false:us=0:in=0 sip:2:nb=true:us=10:in=4", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := settingsFrom(t, tc.lines...)
			if err != nil {
				t.Fatal(err)
			}
			if got := groupsOf(s); got != tc.groups {
				t.Errorf("groups:\n got %q\nwant %q", got, tc.groups)
			}
			var notices []string
			for _, n := range s.Notices {
				if strings.Contains(n, "async") {
					notices = append(notices, n)
				}
			}
			if len(notices) != len(tc.notices) {
				t.Fatalf("notices %q, want %d like %q", notices, len(tc.notices), tc.notices)
			}
			for i, want := range tc.notices {
				if !strings.Contains(notices[i], want) {
					t.Errorf("notice %d = %q, want it to contain %q", i, notices[i], want)
				}
			}
		})
	}
}

func TestAsyncWorkersErrors(t *testing.T) {
	for _, tc := range []struct{ line, want string }{
		{`async_workers_group="workers=2"`, `async_workers_group "workers=2": name is required, at kemi.cfg:1`},
		{`async_workers_group="name=x"`, `workers must be > 0, at kemi.cfg:1`},
		{`async_workers_group="name=x;workers=0"`, `workers must be > 0`},
		{`async_workers_group="name=x;workers=two"`, `workers "two": expected a non-negative integer`},
		{`async_workers_group="name=x;workers"`, `workers: expected workers=<integer>`},
		{`async_workers_group="name=x;workers=1;nonblock=-1"`, `nonblock "-1": expected a non-negative integer`},
		{`async_workers="four"`, `async_workers: expected an integer >= 0, got "four", at kemi.cfg:1`},
		{`async_usleep=-1`, `async_usleep: expected an integer >= 0`},
	} {
		t.Run(tc.line, func(t *testing.T) {
			_, err := settingsFrom(t, tc.line)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	_, err := settingsFrom(t, `async_workers_group="name=x;workers=1"`, `async_workers_group="name=x;workers=2"`)
	if err == nil || !strings.Contains(err.Error(), `group "x" already defined at kemi.cfg:1, at kemi.cfg:2`) {
		t.Fatalf("duplicate group: error %v", err)
	}
}

func TestPreRoutingAndXdataSettings(t *testing.T) {
	s, err := settingsFrom(t, `kemi.pre_routing_callback="ksr_pre_routing"`, `loadmodule "sworker.so"`,
		`modparam("sworker", "xdata", "$var(xdata)")`)
	if err != nil {
		t.Fatal(err)
	}
	if s.PreRouteCB != "ksr_pre_routing" || s.Sworker().XData != "$var(xdata)" {
		t.Fatalf("pre-routing %q, xdata %q", s.PreRouteCB, s.Sworker().XData)
	}
	if s, err = settingsFrom(t, `kemi.pre_routing_callback="none"`); err != nil || s.PreRouteCB != "" {
		t.Fatalf("\"none\" must disable pre-routing: %q, %v", s.PreRouteCB, err)
	}
	if _, err = settingsFrom(t, `loadmodule "sworker.so"`, `modparam("sworker", "xdata", "$ru")`); err == nil {
		t.Fatal("a read-only xdata variable must be refused")
	}
}
