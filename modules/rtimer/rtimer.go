// Package rtimer is Kamailio's rtimer module in kemi: timers that call Lua
// functions at a fixed interval (kamailio-reference.md §4; docs/rtimer.md).
//
// The home holds the settings and modparam parser (this file and parse.go),
// the runtime (run.go: the timer goroutines, each owning a VM made through
// ksr.Host.NewRunner) and the waits (wait.go: the engine's clock, or a
// Linux timerfd with the real clock). rtimer exports no KSR function; its
// $rtimer_worker variable is the worker's Env.Index.
//
// Concurrency: a Module is configured and provisioned by one goroutine.
// Start and Stop are called once each, by the engine. Stats, Counters and
// Idle are safe for concurrent use while the timers run: the counters are
// atomic and the timer list is read-only once Start has returned.
package rtimer

import (
	"fmt"
	"strings"
	"time"

	"kemi/config"
	"kemi/ksr"
)

// TimerSpec is one rtimer timer.
type TimerSpec struct {
	Name     string
	Mode     int
	Interval time.Duration
	Execs    []string     // Lua functions, in definition order (they run last first, as in Kamailio)
	ExecPos  []config.Pos // where each exec was defined
	Pos      config.Pos
	// Cluster is cluster=one (kemi): the timer fires on one node of the
	// cluster at a time (cluster.go).
	Cluster bool

	defaulted bool // the interval came from default_interval
}

// Settings are the rtimer module's parameters.
type Settings struct {
	Timers          []*TimerSpec
	DefaultInterval time.Duration
}

// Module is one configuration's rtimer.
type Module struct {
	set     Settings
	host    ksr.Host
	run     timerRun
	cluster Cluster // the engine's hook for cluster=one timers (SetCluster)
}

var (
	_ ksr.Provisioner  = (*Module)(nil)
	_ ksr.Starter      = (*Module)(nil)
	_ ksr.Finisher     = (*Module)(nil)
	_ ksr.Idler        = (*Module)(nil)
	_ ksr.Reporter     = (*Module)(nil)
	_ ksr.CallbackUser = (*Module)(nil)
)

// New returns an unconfigured rtimer module: no timer, a default interval
// of 120 s as in Kamailio.
func New() *Module {
	return &Module{set: Settings{DefaultInterval: 120 * time.Second}}
}

// Settings returns the module's parameters as read from the configuration.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "rtimer",
		Doc:  "timers calling Lua functions at a fixed interval, on goroutines of their own",
		// Timer routes may feed the groups (KSR.async.task_data): started
		// after them, stopped before.
		AfterWorkers: true,
		Params: []ksr.Param{
			{Name: "timer", Set: m.paramTimer},
			{Name: "exec", Set: m.paramExec},
			{Name: "default_interval", Set: m.paramDefaultInterval},
		},
	}
}

func (m *Module) paramTimer(c *ksr.Setup, st config.Stmt) error {
	t, notes, err := parseTimer(st.Value.String(), m.set.DefaultInterval)
	if err != nil {
		return config.Errorf(st.Pos, "modparam rtimer timer %q: %v", st.Value.String(), err)
	}
	for _, n := range notes {
		c.Notice(st.Pos, "modparam rtimer timer %q: %s", st.Value.String(), n)
	}
	t.Pos = st.Pos
	for _, o := range m.set.Timers {
		if strings.EqualFold(o.Name, t.Name) {
			return config.Errorf(st.Pos, "modparam rtimer timer: timer %q already defined at %s", t.Name, o.Pos)
		}
	}
	m.set.Timers = append(m.set.Timers, t)
	return nil
}

func (m *Module) paramExec(c *ksr.Setup, st config.Stmt) error {
	tname, route, notes, err := parseExec(st.Value.String())
	if err != nil {
		return config.Errorf(st.Pos, "modparam rtimer exec %q: %v", st.Value.String(), err)
	}
	for _, n := range notes {
		c.Notice(st.Pos, "modparam rtimer exec %q: %s", st.Value.String(), n)
	}
	for _, t := range m.set.Timers {
		if strings.EqualFold(t.Name, tname) {
			t.Execs = append(t.Execs, route)
			t.ExecPos = append(t.ExecPos, st.Pos)
			return nil
		}
	}
	return config.Errorf(st.Pos, "modparam rtimer exec: timer %q is not defined (define it with modparam(\"rtimer\", \"timer\", ...) first)", tname)
}

func (m *Module) paramDefaultInterval(c *ksr.Setup, st config.Stmt) error {
	n, err := config.IntParam(st, "rtimer", 1, 1<<31-1)
	if err != nil {
		return err
	}
	// As in Kamailio, the default is applied when a timer is parsed:
	// timers defined earlier keep the previous one.
	for _, t := range m.set.Timers {
		if t.defaulted {
			c.Notice(st.Pos, "modparam rtimer default_interval: timer %q (%s) was defined before and keeps its interval; default_interval applies to timers defined after it, as in Kamailio", t.Name, t.Pos)
		}
	}
	m.set.DefaultInterval = time.Duration(n) * time.Second
	return nil
}

// Finish notes the timers without an exec route and refuses cluster=one
// timers without a cluster connection.
func (m *Module) Finish(c *ksr.Setup) error {
	for _, t := range m.set.Timers {
		if len(t.Execs) == 0 {
			c.Notice(t.Pos, "rtimer timer %q has no exec route", t.Name)
		}
	}
	return m.finishCluster()
}

// Callbacks are the exec routes: the script must define each.
func (m *Module) Callbacks() []ksr.Callback {
	var out []ksr.Callback
	for _, t := range m.set.Timers {
		for i, x := range t.Execs {
			out = append(out, ksr.Callback{Fn: x, Why: fmt.Sprintf("rtimer exec of timer %q at %s", t.Name, t.ExecPos[i])})
		}
	}
	return out
}

// Provision keeps the host; the timers start with Start.
func (m *Module) Provision(h ksr.Host) error {
	m.host = h
	return nil
}
