// Package pv is Kamailio's pv module in kemi: the pseudo-variables
// themselves are kemi's core (ksr/pv.go, ksr/xavp.go, KSR.pv); this home
// exports KSR.pvx (ksr/pvx.go) and reads the module's parameters: shvset gives $shv variables
// their initial values, varset the $var ones of every worker, as
// pv_shv.c's param_set_xvar ("name=i:12" or "name=s:text").
//
// Concurrency: the module is configured by one goroutine; Provision writes
// the initial $shv values before any VM exists, and the $var ones are
// copied by each VM from Deps.VarInit, read-only afterwards.
package pv

import (
	"strconv"
	"strings"

	"kemi/config"
	"kemi/ksr"
)

// Module is one configuration's pv.
type Module struct {
	shv, vars []initial
}

// initial is one shvset or varset value.
type initial struct {
	name string
	val  any // string or int64
}

// New returns the pv module.
func New() *Module { return &Module{} }

// Info describes the module: shvset and varset honoured, avp_aliases (the
// third of pv's modparams in Kamailio 5.6.3) accepted and ignored.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "pv",
		Doc:  "pseudo-variables: $var, $shv, $avp, $xavp and the others are kemi's core; shvset and varset",
		Params: []ksr.Param{
			{Name: "shvset", Set: func(_ *ksr.Setup, st config.Stmt) error { return m.set(st, &m.shv) }},
			{Name: "varset", Set: func(_ *ksr.Setup, st config.Stmt) error { return m.set(st, &m.vars) }},
		},
		Ignored: []string{"avp_aliases"},
		Exports: []ksr.Submodule{ksr.PVXExports()},
	}
}

// parseXvar parses "name=i:12" or "name=s:text" (the type letter in
// either case), as param_set_xvar.
func parseXvar(s string) (initial, bool) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" || len(rest) < 2 || rest[1] != ':' {
		return initial{}, false
	}
	v := rest[2:]
	switch rest[0] {
	case 's', 'S':
		return initial{name, v}, true
	case 'i', 'I':
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return initial{}, false
		}
		return initial{name, n}, true
	}
	return initial{}, false
}

func (m *Module) set(st config.Stmt, into *[]initial) error {
	in, ok := parseXvar(st.Value.Str)
	if st.Value.IsInt || !ok {
		return config.Errorf(st.Pos, "modparam pv %s: expected \"name=i:number\" or \"name=s:text\", got %q", st.Param, st.Value.Str)
	}
	*into = append(*into, in)
	return nil
}

// Provision sets the initial $shv values and hands the $var ones to every
// VM.
func (m *Module) Provision(h ksr.Host) error {
	d := h.Deps()
	for _, in := range m.shv {
		if d.Shv != nil {
			d.Shv.Set(in.name, in.val)
		}
	}
	if len(m.vars) > 0 {
		d.VarInit = map[string]any{}
		for _, in := range m.vars {
			d.VarInit[in.name] = in.val
		}
	}
	return nil
}
