package ksr

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/jsonrpc"
	"kemi/luavm"
	"kemi/sipnet"
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
	// AfterWorkers marks a runtime that feeds the worker groups (timers,
	// resumes): it starts after the groups and stops before them. Other
	// runtimes (mqueue's store) start before the groups and stop after.
	AfterWorkers bool
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

// Host is what the engine offers a module's runtime. Its methods are safe
// for concurrent use once the module is provisioned.
type Host interface {
	Logger() *slog.Logger
	Clock() timers.Clock
	// Deps are the services every VM's bindings share; a module may add its
	// own before the first VM is made (Provision).
	Deps() *Deps
	// NewRunner makes a worker outside any group that owns a VM of the
	// published script, for a goroutine of the module's own (rtimer). name
	// is the worker's name in logs and kemi.status ("rtimer/main"), group
	// and index what its Env says ($rtimer_worker is index). Call it from
	// Starter.Start or later, and Close the runner when done.
	NewRunner(name, group string, index int) (Runner, error)
	// NewGroup makes a group of n workers named name/0.., each owning a VM,
	// taking the tasks submitted to it in any order. The module starts and
	// stops it (Start in its own Start, Stop in its own Stop); the engine
	// nudges its workers on reload.
	NewGroup(name string, n int) (Group, error)
	// Group returns the core async_workers group named name (Kamailio's
	// async_workers / async_workers_group), or nil.
	Group(name string) Group
	// Hold counts work in progress outside the groups' tasks, such as a
	// timer's run or a request parked until a timer resumes it (delta 1),
	// and its end (delta -1): kemi test waits until no such work is left
	// but what the modules report as held (Idler, engine.WaitIdle).
	Hold(delta int)
	// Precise reports whether Clock is the real clock, so that a module may
	// wait with the platform's own timers instead (rtimer's timerfd).
	Precise() bool
	// SendUDP sends one datagram outside any transaction (nathelper's
	// keepalives): from the UDP listening socket named socket (Kamailio's
	// "udp:ip:port"; "" or a socket that is not one of the UDP listeners:
	// the first UDP listener of dst's address family) to dst. build
	// receives the address the socket advertises (its Via sent-by) and
	// returns the bytes. Without a network (kemi test) a datagram that
	// parses as SIP goes to the virtual network as a stateless send, and
	// other bytes are dropped.
	SendUDP(socket string, dst netip.AddrPort, build func(local netip.AddrPort) []byte) error
}

// Runner is a worker that owns a VM: one of a Group, or one made by
// Host.NewRunner. It is used by one goroutine at a time: a group's worker
// goroutine while it runs a Task, else its owner.
type Runner interface {
	// Env is the VM's KSR state.
	Env() *Env
	// VM is the Lua state (KSR.async.sleep suspends and resumes its
	// coroutines).
	VM() *luavm.VM
	// Call switches the VM to the published script generation, then
	// calls the global function fn(args...) with msg bound (Env().Msg
	// during the call). An error, a missing function included, is logged
	// (at most once a second per function) and returned.
	Call(msg *Msg, fn string, args ...lua.LValue) error
	// Request routes a received request as a receiver does, and Reply a
	// received reply; delegated skips the pre-routing callback (the
	// message was handed over by KSR.sworker.task).
	Request(r *sipnet.Request, delegated bool)
	Reply(r *sipnet.Response, delegated bool)
	// Continue continues co, a coroutine of this runner's VM suspended by
	// KSR.async.sleep, with msg bound and vals as the results of its
	// yield; errors are logged as Call logs them, and returned.
	Continue(co *luavm.Co, msg *Msg, vals ...lua.LValue) error
	// Finish ends a request whose handler resumed after a suspension (tm's
	// t_continue): unless it was suspended again, a transaction left with
	// neither a final reply nor a relay is answered 500, then the request
	// is released.
	Finish(req *sipnet.Request, msg *Msg)
	// Post queues t for this worker only, ahead of its group's shared
	// tasks (a coroutine of its VM); it fails for a runner outside a group.
	Post(t Task) error
	Close()
}

// Task is work for a group's worker: Run is called on the worker's
// goroutine, with its Runner, once the VM is switched to the published
// script.
type Task interface {
	Run(r Runner)
}

// Group is a group of workers, each owning a VM (Host.NewGroup,
// Host.Group). Submitted tasks are counted as work until they have run
// (kemi test's idle detection).
type Group interface {
	Name() string
	// NonBlock is the group's nonblock setting (async_workers_group):
	// delegating to it must not wait.
	NonBlock() bool
	// Submit queues t, waiting while the group's inbox is full; it fails
	// once the group or the engine stopped (workers.ErrStopped).
	Submit(t Task) error
	// TrySubmit queues t or fails at once (workers.ErrFull).
	TrySubmit(t Task) error
	// Pending is how many tasks wait in the inbox.
	Pending() int
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Suspender is a module that suspends request handlers (async). The
// engine asks it whether a request route may suspend itself as a
// coroutine, and tells it when a handler that suspended its request has
// returned: only then may the request be resumed elsewhere.
type Suspender interface {
	Yields(r Runner) bool
	Released(msg *Msg)
}

// Callback is a Lua function a module's settings name (an rtimer exec
// route): the engine refuses a script that does not define it.
type Callback struct {
	Fn  string
	Why string // where the settings name it, for the error
}

// CallbackUser is a module whose settings name Lua functions.
type CallbackUser interface {
	Callbacks() []Callback
}

// Reporter is a module runtime with counters for kemi.status: Counters
// adds them to c. Safe for concurrent use.
type Reporter interface {
	Counters(c map[string]int64)
}

// Drainer is a module runtime that must stop taking work before the SIP
// listeners close (async answers its suspended requests 503): the engine
// calls Drain at shutdown, before stopping the listeners, when it has a
// network.
type Drainer interface {
	Drain(ctx context.Context) error
}

// Idler is a module runtime with goroutines of its own that wait on the
// engine's clock, or work parked outside the workers' inboxes. kemi test
// asks it, with the clock stopped at now, whether it is idle (busy is ""
// then, else why not) and on which deadlines its goroutines should then
// wait, appended to ds (engine.WaitIdle): nothing happens until the clock
// moves or a request comes. held is how much of what it counts with
// Host.Hold is parked rather than in progress (requests waiting for their
// resume).
type Idler interface {
	Idle(now time.Time, ds []time.Time) (held int, deadlines []time.Time, busy string)
}

// ReplyFilter is a module that absorbs the replies to requests it sent
// itself outside any transaction (nathelper's keepalive OPTIONS), as a
// Kamailio module's response_f returning 0: the engine asks it after the
// core reply route, for a reply no transaction claims, before forwarding
// it by its Via headers.
type ReplyFilter interface {
	AbsorbReply(res *sip.Response) bool
}

// Provisioner is a module with a runtime: Provision builds it once the
// settings are final and before any VM exists. The engine provisions the
// modules in table order, and only those the configuration loads.
type Provisioner interface {
	Provision(h Host) error
}

// Starter is a module runtime the engine starts in table order, before
// traffic, and stops in reverse order: before the worker groups start and
// after they have finished, or, with ModuleInfo.AfterWorkers, after they
// start and before they stop.
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
	// Literal: the inner name is passed as written, not evaluated when it
	// is a pseudo-variable ($T_req($ru) gets "$ru").
	Literal bool
	Get     func(e *Env, name string) lua.LValue
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

// IntSetting is a Param setter storing an integer modparam of module mod
// in dst, checked to be in min..max (config.IntParam: errors name the
// module, the parameter and file:line).
func IntSetting(mod string, dst *int, min, max int) func(*Setup, config.Stmt) error {
	return func(_ *Setup, st config.Stmt) error {
		n, err := config.IntParam(st, mod, min, max)
		if err != nil {
			return err
		}
		*dst = n
		return nil
	}
}

// SwitchSetting is a Param setter for an integer modparam read as a switch
// (0 off, anything else on).
func SwitchSetting(mod string, dst *bool) func(*Setup, config.Stmt) error {
	return func(_ *Setup, st config.Stmt) error {
		n, err := config.IntParam(st, mod, math.MinInt32, math.MaxInt32)
		if err != nil {
			return err
		}
		*dst = n != 0
		return nil
	}
}
