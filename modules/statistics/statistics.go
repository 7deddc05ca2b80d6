// Package statistics is Kamailio's statistics module in kemi: script
// statistics declared with modparam("statistics", "variable", "name") (or
// "name/no_reset"), in the "script" group, changed with
// KSR.statistics.update_stat(name, n) and reset_stat(name), read with
// $stat(name), shown by stats.get_statistics and on /metrics
// (kamailio_script_name) like every statistic.
//
// update_stat and reset_stat also take the name of any other statistic
// (core:rcv_requests ...), as Kamailio's get_stat does; $stat(name) reads
// any. In Kamailio $stat is the pv module's: in kemi it comes with
// statistics loaded.
//
// Concurrency: a Module is configured by one goroutine; its exports run on
// every worker at once (the counters are atomic).
package statistics

import (
	"strings"

	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/ksr"
	"kemi/stats"
)

// Group is the group of script statistics.
const Group = "script"

// Variable is one declared statistic.
type Variable struct {
	Name    string
	NoReset bool
}

// Settings are the module's parameters.
type Settings struct {
	Variables []Variable
}

// Module is one configuration's statistics.
type Module struct {
	set Settings
	reg *stats.Registry // nil while not provisioned
}

var _ ksr.Provisioner = (*Module)(nil)

// New returns an unconfigured module.
func New() *Module { return &Module{} }

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name:   "statistics",
		Doc:    "script statistics: declared by modparam variable, changed by update_stat/reset_stat, read by $stat",
		Params: []ksr.Param{{Name: "variable", Set: m.paramVariable}},
		Exports: []ksr.Submodule{{Name: "statistics", Funcs: []ksr.Export{
			{Name: "update_stat", Func: m.update, Ret: ksr.Int, Args: []string{"name", "value"},
				Doc: "Add value (may be negative) to the statistic name: 1, or -1 when it is not defined."},
			{Name: "reset_stat", Func: m.reset, Ret: ksr.Int, Args: []string{"name"},
				Doc: "Reset the statistic name to 0 (not a no_reset one): 1, or -1 when it is not defined."},
		}}},
		PVs: []ksr.PV{{Name: "stat", Named: true, Get: m.pv}},
	}
}

func (m *Module) paramVariable(_ *ksr.Setup, st config.Stmt) error {
	v := strings.TrimSpace(st.Value.String())
	name, flag, hasFlag := strings.Cut(v, "/")
	if name == "" {
		return config.Errorf(st.Pos, "modparam statistics variable: empty name")
	}
	if hasFlag && !strings.EqualFold(flag, "no_reset") {
		return config.Errorf(st.Pos, "modparam statistics variable %q: unsupported flag %q (no_reset)", v, flag)
	}
	m.set.Variables = append(m.set.Variables, Variable{Name: name, NoReset: hasFlag})
	return nil
}

// Provision registers the declared statistics at zero.
func (m *Module) Provision(h ksr.Host) error {
	m.reg = h.Deps().Stats
	if m.reg == nil {
		m.reg = stats.New()
	}
	for _, v := range m.set.Variables {
		if v.NoReset {
			m.reg.NoReset(Group, v.Name)
		} else {
			m.reg.Counter(Group, v.Name)
		}
	}
	return nil
}

// lookup finds name: "group:name", else a script statistic, else a
// statistic of that name in any group.
func (m *Module) lookup(name string) *stats.Stat {
	if m.reg == nil {
		return nil
	}
	if g, n, ok := strings.Cut(name, ":"); ok {
		return m.reg.Lookup(g, n)
	}
	if s := m.reg.Lookup(Group, name); s != nil {
		return s
	}
	if ss := m.reg.Select(name); len(ss) > 0 {
		return ss[0]
	}
	return nil
}

func (m *Module) update(e *ksr.Env, name string, n int) int {
	s := m.lookup(name)
	if s == nil || !s.Add(int64(n)) {
		e.D.Log.Error("statistics: variable not defined", "name", name)
		return -1
	}
	return 1
}

func (m *Module) reset(e *ksr.Env, name string) int {
	s := m.lookup(name)
	if s == nil {
		e.D.Log.Error("statistics: variable not defined", "name", name)
		return -1
	}
	s.Reset()
	return 1
}

// pv is $stat(name): the value, or null when no such statistic.
func (m *Module) pv(e *ksr.Env, name string) lua.LValue {
	if s := m.lookup(name); s != nil {
		return lua.LNumber(s.Value())
	}
	return lua.LNil
}
