package ksr

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/jsonrpc"
	"kemi/timers"
)

// Module is one Kamailio module (or Kamailio's core) as kemi implements
// it, in one home: its settings and modparam parser, its KSR exports, its
// pseudo-variables, its runtime, its RPC methods and its test hooks. The
// engine keeps the modules in one ordered table (engine/modules.go) and
// reads each through Info and the optional interfaces below; a new module
// is a new home plus one line in that table.
//
// A Module value is made fresh for each configuration (New... in its
// package) and holds that configuration's settings and runtime: there is
// no package-level state.
type Module interface {
	Info() ModuleInfo
}

// ModuleInfo describes a module as data.
type ModuleInfo struct {
	// Name is Kamailio's module name, as loadmodule names it ("mqueue"),
	// or "core" for what Kamailio's core exports.
	Name string
	// Doc is one line on what the module does.
	Doc string
	// Params are the modparams kemi honours.
	Params []Param
	// Ignored are modparams Kamailio 5.6 knows that kemi accepts with a
	// notice: they change nothing in kemi. Any other name is refused.
	Ignored []string
	// Exports are the module's KSR functions.
	Exports []Submodule
	// PVs are the module's pseudo-variables.
	PVs []PV
	// RuntimeFree marks a module with nothing to run in kemi (Kamailio's
	// kex, ctl, cfg_rpc): loading it is accepted although it has no
	// exports. A module with neither exports nor this flag cannot be loaded.
	RuntimeFree bool
}

// Param is one modparam a module honours. Set reads the statement into the
// module's settings; its errors carry the statement's file:line
// (config.Errorf).
type Param struct {
	Name string
	Set  func(c *Setup, st config.Stmt) error
}

// ParamNames lists the module's modparams, honoured and ignored, for
// error messages.
func (i ModuleInfo) ParamNames() string {
	var n []string
	for _, p := range i.Params {
		n = append(n, p.Name)
	}
	return strings.Join(append(n, i.Ignored...), ", ")
}

// Setup is what a module's parameter parser may use while a configuration
// file is read.
type Setup struct {
	// File is the configuration file ("" for one built in memory).
	File    string
	notices *[]string
}

// NewSetup returns a Setup for file whose notices are appended to notices.
func NewSetup(file string, notices *[]string) *Setup {
	return &Setup{File: file, notices: notices}
}

// Notice records a line about a setting that kemi accepts but treats
// differently (ignored, defaulted); kemi prints these at start and
// `kemi check` lists them.
func (c *Setup) Notice(pos config.Pos, format string, args ...any) {
	*c.notices = append(*c.notices, pos.String()+": "+fmt.Sprintf(format, args...))
}

// Finisher is a module whose settings are checked once the whole
// configuration is read (settings that depend on each other).
type Finisher interface {
	Finish(c *Setup) error
}

// Host is what the engine offers a module's runtime.
type Host interface {
	Logger() *slog.Logger
	Clock() timers.Clock
	// Deps are the services every VM's bindings share; a module may add its
	// own before the first VM is made (Provision).
	Deps() *Deps
}

// Provisioner is a module with a runtime: Provision builds it once the
// settings are final and before any VM exists. The engine provisions the
// modules in table order, and only those the configuration loads.
type Provisioner interface {
	Provision(h Host) error
}

// Starter is a module runtime the engine starts in table order, before
// traffic, and stops in reverse order, after the workers have finished.
type Starter interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// RPCProvider is a module with RPC commands, served once it is provisioned.
type RPCProvider interface {
	RPC() []jsonrpc.Method
}

// PV is a pseudo-variable class a module adds: $<Name> or, when Named,
// $<Name>(inner). The inner name may itself be a pseudo-variable
// ($mqk($var(q))); Get and Set receive it evaluated.
type PV struct {
	Name  string
	Named bool
	Get   func(e *Env, name string) lua.LValue
	// Set is nil for a read-only variable.
	Set func(e *Env, name string, v lua.LValue) bool
}

// Provision provisions m through h when it has a runtime and adds its
// pseudo-variables to d. The engine calls it for every module the
// configuration loads, in table order, before building d.Table with
// NewTable from every module.
func (d *Deps) Provision(h Host, m Module) error {
	if p, ok := m.(Provisioner); ok {
		if err := p.Provision(h); err != nil {
			return err
		}
	}
	for _, pv := range m.Info().PVs {
		if d.PVs == nil {
			d.PVs = map[string]*PV{}
		}
		d.PVs[pv.Name] = &pv
	}
	return nil
}

// Local is a module's slot in every VM's Env: per-VM state, Kamailio's
// per-process memory. Deps.NewLocal hands them out while modules are
// provisioned.
type Local int

// NewLocal returns a new per-VM slot. Call it only while provisioning.
func (d *Deps) NewLocal() Local {
	d.locals++
	return Local(d.locals - 1)
}

// LocalOf returns the VM's value of slot k, made on first use.
func LocalOf[T any](e *Env, k Local) *T {
	if int(k) < len(e.locals) {
		if v, ok := e.locals[k].(*T); ok {
			return v
		}
	} else {
		e.locals = append(e.locals, make([]any, int(k)+1-len(e.locals))...)
	}
	v := new(T)
	e.locals[k] = v
	return v
}
