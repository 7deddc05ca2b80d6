// Package sworker is Kamailio's sworker module in kemi: the pre-routing
// callback hands a received message to an async_workers group
// (KSR.sworker.task), where it is routed as freshly received
// (docs/sworker.md).
//
// The home holds the settings and modparam parser (xdata), the exports
// (KSR.sworker.task and active) and the runtime: the delegated message as
// a typed task (ksr.Task) run by a group's worker. The groups themselves
// are the core's async_workers groups, reached through ksr.Host.Group.
//
// Concurrency: a Module is configured and provisioned by one goroutine;
// afterwards it is read-only and its exports may run on every worker at
// once. Whether a worker is processing a delegated message is per-VM state
// (a ksr.Local).
package sworker

import (
	"errors"
	"strings"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/sipnet"
	"kemi/workers"
)

// Settings are the sworker module's parameters.
type Settings struct {
	// XData is the $var(name) whose value travels with a delegated
	// message, "" when unset.
	XData string
}

// Module is one configuration's sworker.
type Module struct {
	set   Settings
	host  ksr.Host  // nil while not loaded
	local ksr.Local // vmState of each VM
}

var _ ksr.Provisioner = (*Module)(nil)

// vmState is one VM's sworker state.
type vmState struct {
	active   bool      // a delegated message is being processed (KSR.sworker.active)
	lastWarn time.Time // of the xdata error, logged at most once a second per VM
}

// New returns an unconfigured sworker module.
func New() *Module { return &Module{} }

// Settings returns the module's parameters as read from the configuration.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name:   "sworker",
		Doc:    "hand a received message from the pre-routing callback to an async_workers group",
		Params: []ksr.Param{{Name: "xdata", Set: m.paramXData}},
		Exports: []ksr.Submodule{{Name: "sworker", Funcs: []ksr.Export{
			{Name: "task", Func: m.task, Ret: ksr.Int, Args: []string{"group"},
				Doc: "In pre-routing, hand the message to an async_workers group: 1 delegated (then KSR.x.drop()), -1 not."},
			{Name: "active", Func: m.active, Ret: ksr.Int,
				Doc: "1 while a delegated message is processed in a group worker, -1 otherwise."},
		}}},
	}
}

func (m *Module) paramXData(_ *ksr.Setup, st config.Stmt) error {
	v := st.Value.String()
	if !strings.HasPrefix(v, "$var(") || !strings.HasSuffix(v, ")") {
		return config.Errorf(st.Pos, "modparam sworker xdata %q: expected a writable $var(name) variable", v)
	}
	m.set.XData = v
	return nil
}

// Provision keeps the host and takes the per-VM slot.
func (m *Module) Provision(h ksr.Host) error {
	m.host = h
	m.local = h.Deps().NewLocal()
	return nil
}

// task is KSR.sworker.task: it delegates the message (request or reply)
// to an async_workers group; only valid in the pre-routing callback. It
// returns 1 when delegated (the script must then KSR.x.drop(), or the
// message is routed here too), -1 otherwise. Unlike Kamailio (which
// returns 1 and loses the message for an unknown group or a full nonblock
// queue), kemi returns -1 and the message carries on in this worker.
func (m *Module) task(e *ksr.Env, group string) int {
	log := e.D.Log
	switch {
	case e.Msg == nil || e.Msg.Faked || (e.Msg.Req == nil && e.Msg.Res == nil):
		log.Error("sworker task: invalid usage for null or faked message", "group", group)
		return -1
	case !e.Msg.PreRouting:
		log.Warn("sworker task: not used in pre-routing phase", "group", group, "worker", e.Name)
		return -1
	case m.host == nil:
		log.Error("sworker task: module not loaded (loadmodule \"sworker.so\")", "group", group)
		return -1
	}
	return m.delegate(e, group)
}

// delegate hands the current message to group. The group gets the message
// as it was received (edits, flags and AVPs of the pre-routing callback do
// not travel) and the xdata value. The caller goes on unless the script
// drops the message (KSR.x.drop): Kamailio stops the receiving process
// only on the drop flag, so a task without drop routes the message in both
// places.
func (m *Module) delegate(e *ksr.Env, group string) int {
	log := e.D.Log
	g := m.host.Group(group)
	if g == nil {
		log.Error("sworker task: async workers group not found", "group", group)
		return -1
	}
	msg := e.Msg
	d := &delegated{m: m}
	if x := m.set.XData; x != "" {
		d.xset = true
		d.xdata, _ = e.PVString(x)
	}
	if msg.Req != nil {
		d.req = msg.Req.Handoff()
	} else {
		d.res = msg.Res.Handoff()
	}
	var err error
	if g.NonBlock() {
		err = g.TrySubmit(d)
	} else {
		err = g.Submit(d)
	}
	if err != nil {
		if d.req != nil {
			msg.Req.TakeBack(d.req)
		} else {
			msg.Res.TakeBack(d.res)
		}
		if errors.Is(err, workers.ErrFull) {
			log.Error("sworker task: group queue full (nonblock), message kept by the caller", "group", group, "inbox", g.Pending())
		} else {
			log.Error("sworker task: delegation failed, message kept by the caller", "group", group, "error", err)
		}
		return -1
	}
	msg.Delegated = true
	return 1
}

// active is KSR.sworker.active. Not loaded, the module has no per-VM
// slot (its Local would be another module's).
func (m *Module) active(e *ksr.Env) int {
	if m.host != nil && ksr.LocalOf[vmState](e, m.local).active {
		return 1
	}
	return -1
}

// delegated is a message handed to a group: processed there as freshly
// received (pre-routing skipped), with xdata set first.
type delegated struct {
	m     *Module
	req   *sipnet.Request
	res   *sipnet.Response
	xdata string
	xset  bool // the xdata parameter is set
}

// Run processes the delegated message on a group worker: xdata first
// (null when empty, as Kamailio), then the request or reply route without
// pre-routing.
func (d *delegated) Run(r ksr.Runner) {
	env := r.Env()
	st := ksr.LocalOf[vmState](env, d.m.local)
	st.active = true
	defer func() { st.active = false }()
	if d.xset {
		if x := d.m.set.XData; !env.SetPVString(x, d.xdata) {
			if now := time.Now(); now.Sub(st.lastWarn) >= time.Second {
				st.lastWarn = now
				env.D.Log.Error("sworker: cannot set the xdata variable", "pv", x)
			}
		}
	}
	if d.req != nil {
		r.Request(d.req, true)
		return
	}
	r.Reply(d.res, true)
}
