// Package pike is Kamailio's pike module in kemi: flood detection per
// source address, KSR.pike.pike_check_req() and pike_check_ip(ip), with
// Kamailio's IP tree (tree.go), parameters and return codes (pike_funcs.c
// at 5.6.3), on the engine's clock, and the pike.top RPC command (rpc.go).
//
// Concurrency: the module is configured and provisioned by one goroutine;
// afterwards its tree is shared by every worker, with one mutex per branch
// (first byte of the address), as Kamailio's tree has one lock per branch.
package pike

import (
	"context"
	"log/slog"
	"net/netip"
	"sync/atomic"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/timers"
)

// Settings are the module's parameters, with Kamailio's defaults.
type Settings struct {
	TimeUnit int // sampling_time_unit, seconds
	Density  int // reqs_density_per_unit
	Latency  int // remove_latency, seconds
	LogLevel int // pike_log_level, Kamailio's (L_WARN 0, L_NOTICE 1, L_INFO 2, L_DBG 3; negative: errors)
}

// Module is one configuration's pike.
type Module struct {
	set   Settings
	tree  *tree
	clock timers.Clock
	start time.Time
	log   *slog.Logger

	sweepEvery int64        // ticks between full sweeps
	nextSweep  atomic.Int64 // tick of the next full sweep
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
)

// New returns pike with Kamailio's defaults: 2 s units, 30 requests per
// unit, 120 s removal latency, log level L_WARN.
func New() *Module {
	return &Module{set: Settings{TimeUnit: 2, Density: 30, Latency: 120}}
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	param := func(dst *int, min int) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) (err error) {
			*dst, err = config.IntParam(st, "pike", min, 1<<31-1)
			return err
		}
	}
	return ksr.ModuleInfo{
		Name: "pike",
		Doc:  "flood detection per source IP address",
		Params: []ksr.Param{
			{Name: "sampling_time_unit", Set: param(&m.set.TimeUnit, 1)},
			{Name: "reqs_density_per_unit", Set: param(&m.set.Density, 1)},
			{Name: "remove_latency", Set: param(&m.set.Latency, 0)},
			{Name: "pike_log_level", Set: param(&m.set.LogLevel, -1<<31)},
		},
		Exports: []ksr.Submodule{{Name: "pike", Funcs: []ksr.Export{
			{Name: "pike_check_req", Func: m.checkReq, Ret: ksr.Int,
				Doc: "Count a request from the source address: 1 allowed, -2 the address has just been found flooding, -1 it is still flooding."},
			{Name: "pike_check_ip", Func: m.checkIP, Ret: ksr.Int, Args: []string{"ip"},
				Doc: "Count a request from IPv4 address ip: 1 allowed, -2 just found flooding, -1 still flooding or ip is not an IPv4 address."},
		}}},
	}
}

// Provision builds the tree; ticks count from now on the engine's clock.
func (m *Module) Provision(h ksr.Host) error {
	m.clock, m.log = h.Clock(), h.Logger()
	m.start = m.clock.Now()
	m.tree = newTree(m.set.Density, m.set.TimeUnit, m.set.Latency)
	m.sweepEvery = int64(max(m.set.Latency, m.set.TimeUnit, 1))
	m.nextSweep.Store(m.sweepEvery)
	return nil
}

// tick is Kamailio's get_ticks(): whole seconds since start.
func (m *Module) tick() int64 { return int64(m.clock.Now().Sub(m.start) / time.Second) }

// Sweep applies the timers to every branch now (tests).
func (m *Module) Sweep() { m.tree.sweep(m.tick()) }

// Nodes is the number of nodes in the IP tree (tests).
func (m *Module) Nodes() int { return m.tree.nodes() }

func (m *Module) level() slog.Level {
	switch l := m.set.LogLevel; {
	case l < 0:
		return slog.LevelError
	case l == 0:
		return slog.LevelWarn
	case l <= 2:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func (m *Module) checkAddr(e *ksr.Env, a netip.Addr) int {
	if m.tree == nil {
		return 1
	}
	a = a.Unmap()
	tick := m.tick()
	// Branches nobody checks are maintained by a full sweep every
	// remove_latency seconds, run by the first check due: their memory goes.
	if next := m.nextSweep.Load(); tick >= next && m.nextSweep.CompareAndSwap(next, tick+m.sweepEvery) {
		m.tree.sweep(tick)
	}
	code, blocked := m.tree.check(a.AsSlice(), tick)
	if blocked {
		e.D.Log.Log(context.Background(), m.level(), "PIKE - BLOCKing ip", "ip", a.String())
	}
	return code
}

// checkReq is pike_check_req: the source address of the message.
func (m *Module) checkReq(e *ksr.Env) int {
	var src netip.AddrPort
	switch {
	case e.Msg == nil:
	case e.Msg.Req != nil:
		src = e.Msg.Req.Src
	case e.Msg.Res != nil:
		src = e.Msg.Res.Src
	}
	if !src.IsValid() {
		// Kamailio always has a source; without one, count nothing and allow.
		return 1
	}
	return m.checkAddr(e, src.Addr())
}

// checkIP is pike_check_ip. Like Kamailio's (str2ip), it takes IPv4
// addresses only.
func (m *Module) checkIP(e *ksr.Env, ip string) int {
	if ip == "" {
		return -1
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() {
		e.D.Log.Error("failed to parse ip address", "ip", ip)
		return -1
	}
	return m.checkAddr(e, a)
}
