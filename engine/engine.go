package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/jsonrpc"
	"kemi/ksr"
	"kemi/luavm"
	"kemi/queues"
	"kemi/sipnet"
	"kemi/timers"
	"kemi/workers"
)

// Version is kemi's version string.
const Version = "0.1.0"

// Options are run-time choices that do not come from the configuration file.
type Options struct {
	// Logger receives every log line; nil builds a text logger on stderr at
	// the configuration's debug level.
	Logger *slog.Logger
	// Level, when set, is the level variable behind Logger (the debug RPC
	// and debug= change it).
	Level *slog.LevelVar
	// Clock drives rtimer and async; nil is the real clock.
	Clock timers.Clock
	// NoNetwork binds no socket (kemi test): the SIP layer is virtual (what
	// a relay sends goes to the injected request's Outcome) and the RPC
	// listener is not started.
	NoNetwork bool
	// RPCListen overrides the configured JSON-RPC address ("-" disables it).
	RPCListen string
	// ReadFile reads scripts; nil is os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

// Subsystem is one started part of the engine, stopped in reverse order.
type Subsystem interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Engine is one running kemi instance.
type Engine struct {
	set   *Settings
	opts  Options
	log   *slog.Logger
	level *slog.LevelVar
	clock timers.Clock

	cur      luavm.Current
	version  atomic.Int64
	reloadMu sync.Mutex
	watchdog *luavm.Watchdog
	memdog   *luavm.MemWatchdog // nil without a memory budget

	deps      *ksr.Deps
	queues    *queues.Registry
	store     queues.Store
	sip       *sipnet.Server
	receivers *workers.Group
	groups    map[string]*workers.Group // async_workers groups, by name
	rpc       *jsonrpc.Server
	rtimer    *rtimerSystem
	async     *asyncSystem

	subsystems []Subsystem
	started    []Subsystem
	start      time.Time
	runCtx     context.Context
	cancelRun  context.CancelFunc

	pending atomic.Int64 // tasks submitted and not finished (kemi test waits on it)
	vmsMu   sync.Mutex
	vms     []*worker
	errLog  rateLimiter
}

// New validates settings, compiles and proves the scripts and builds every
// subsystem; nothing runs until Start.
func New(set *Settings, opts Options) (*Engine, error) {
	e := &Engine{set: set, opts: opts, groups: map[string]*workers.Group{}}
	e.level = opts.Level
	if e.level == nil {
		e.level = new(slog.LevelVar)
		e.level.Set(ksr.LevelFromDebug(set.Debug))
	}
	e.log = opts.Logger
	if e.log == nil {
		e.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: e.level}))
	}
	e.clock = opts.Clock
	if e.clock == nil {
		e.clock = timers.Real()
	}
	for _, n := range set.Notices {
		e.log.Info("config notice: " + n)
	}
	reg, err := queues.NewRegistry(set.Mqueue.Queues...)
	if err != nil {
		return nil, fmt.Errorf("mqueue: %w", err)
	}
	e.queues = reg
	e.deps = &ksr.Deps{
		Log:      e.log,
		Now:      e.clock.Now,
		Version:  Version,
		Queues:   reg,
		Shv:      ksr.NewSharedVars(),
		Myself:   e.myself,
		XdataPV:  set.Sworker.XData,
		Aliases:  set.Aliases,
		Hostname: hostname(),
	}
	if set.MaxExec > 0 {
		e.watchdog = luavm.NewWatchdog()
	}
	if set.MaxMem > 0 {
		e.memdog = luavm.NewMemWatchdog()
	}
	if _, ok := set.Modules["async"]; ok {
		e.async = newAsync(e)
		e.deps.Async = e.async
	}
	e.deps.Relay = &relaySystem{e: e} // t_relay, KSR.forward (relay.go)
	if _, ok := set.Modules["sworker"]; ok {
		e.deps.Sworker = &sworker{e: e}
	}
	g, err := e.build(1)
	if err != nil {
		return nil, err
	}
	e.cur.Store(g)
	e.version.Store(1)
	if err := e.buildSubsystems(); err != nil {
		return nil, err
	}
	return e, nil
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// Settings returns the engine's settings.
func (e *Engine) Settings() *Settings { return e.set }

// Logger returns the engine's logger.
func (e *Engine) Logger() *slog.Logger { return e.log }

// Queues returns the mqueue registry.
func (e *Engine) Queues() *queues.Registry { return e.queues }

// SIP returns the network layer (a virtual one with NoNetwork).
func (e *Engine) SIP() *sipnet.Server { return e.sip }

// RPC returns the JSON-RPC server.
func (e *Engine) RPC() *jsonrpc.Server { return e.rpc }

// Clock returns the engine's clock.
func (e *Engine) Clock() timers.Clock { return e.clock }

// Pending returns how many submitted tasks have not finished yet.
func (e *Engine) Pending() int64 { return e.pending.Load() }

func (e *Engine) myself() []netip.AddrPort {
	if e.sip == nil || e.sip.Virtual() {
		return e.configuredAddrs() // no network (kemi test): the listen= addresses, inject.go
	}
	var out []netip.AddrPort
	for _, l := range e.sip.Listeners() {
		out = append(out, l.Addr)
	}
	return out
}

// build compiles the scripts into generation version and proves it in a
// scratch VM: the top-level chunks run, and every callback the
// configuration names must exist.
func (e *Engine) build(version int64) (*luavm.Generation, error) {
	g, err := luavm.Build(version, e.set.Scripts, e.opts.ReadFile)
	if err != nil {
		return nil, err
	}
	env := ksr.NewEnv(e.deps, "scratch", "scratch", 0)
	init := func(L *lua.LState) error { ksr.Register(L, env); return nil }
	err = luavm.Prove(g, init, func(L *lua.LState) error {
		var missing []string
		need := func(fn, why string) {
			if fn == "" {
				return
			}
			if _, ok := L.GetGlobal(fn).(*lua.LFunction); !ok {
				missing = append(missing, fmt.Sprintf("%s (%s)", fn, why))
			}
		}
		need(e.set.RequestCB, "request route")
		need(e.set.PreRouteCB, "kemi.pre_routing_callback")
		for _, t := range e.set.Rtimer.Timers {
			for i, x := range t.Execs {
				need(x, fmt.Sprintf("rtimer exec of timer %q at %s", t.Name, t.ExecPos[i]))
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("script lacks function %s", joinAnd(missing))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func joinAnd(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}

// buildSubsystems creates the subsystems in start order.
func (e *Engine) buildSubsystems() error {
	e.subsystems = append(e.subsystems, &queueSystem{e: e})
	if e.watchdog != nil {
		e.subsystems = append(e.subsystems, funcSystem{"watchdog", func(ctx context.Context) error {
			go e.watchdog.Run(ctx)
			return nil
		}, nil})
	}
	if e.memdog != nil {
		e.subsystems = append(e.subsystems, funcSystem{"memory watchdog", func(ctx context.Context) error {
			go e.memdog.Run(ctx)
			return nil
		}, nil})
	}
	for _, gs := range e.set.AsyncGroups {
		g, err := e.newTaskGroup(gs)
		if err != nil {
			return err
		}
		e.groups[gs.Name] = g
		e.subsystems = append(e.subsystems, groupSystem{g})
	}
	if e.async != nil {
		e.subsystems = append(e.subsystems, e.async)
	}
	n := e.set.Children + e.set.TCPChildren
	recv, err := workers.NewGroup(workers.Options{Name: "receivers", Workers: n, OnPanic: e.onPanic},
		func(i int) (workers.Runner, error) {
			return e.newWorker(fmt.Sprintf("receiver/%d", i), "receivers", i, false)
		})
	if err != nil {
		return err
	}
	e.receivers = recv
	e.subsystems = append(e.subsystems, groupSystem{recv})
	if len(e.set.Rtimer.Timers) > 0 {
		e.rtimer = &rtimerSystem{e: e}
		e.subsystems = append(e.subsystems, e.rtimer)
	}
	sopts := sipnet.Options{Listen: e.set.Listen, ServerHeader: e.set.ServerHdr, Logger: e.log.With("module", "sip")}
	if e.opts.NoNetwork {
		sopts.Outbound = e.outbound // kemi test: relays go to the injected request's Outcome (inject.go)
	}
	srv, err := sipnet.New(sopts, e)
	if err != nil {
		return err
	}
	e.sip = srv
	e.subsystems = append(e.subsystems, funcSystem{"sip", srv.Start, srv.Stop})
	if !e.opts.NoNetwork {
		if e.async != nil {
			// Stopped before the listeners: suspended requests get their 503.
			e.subsystems = append(e.subsystems, funcSystem{"async drain", nil, e.async.drain})
		}
	}
	addr := e.set.RPCListen
	if e.opts.RPCListen != "" {
		addr = e.opts.RPCListen
	}
	listen := addr
	if addr == "-" {
		listen = "" // no listener: the server still serves in-process calls
	}
	rpc, err := jsonrpc.NewServer(jsonrpc.Options{Addr: listen, Logger: e.log.With("module", "jsonrpc")})
	if err != nil {
		if e.set.RPCListenAt.Line > 0 {
			return fmt.Errorf("%w, at %s", err, e.set.RPCListenAt)
		}
		return err
	}
	e.rpc = rpc
	e.registerRPC()
	if !e.opts.NoNetwork && addr != "-" {
		e.subsystems = append(e.subsystems, funcSystem{"jsonrpc", rpc.Start, rpc.Stop})
	}
	return nil
}

// Start starts the subsystems in order; if one fails, those already started
// are stopped and the error returned.
func (e *Engine) Start(ctx context.Context) error {
	e.start = time.Now()
	e.deps.Started = e.start
	e.runCtx, e.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range e.subsystems {
		if err := s.Start(e.runCtx); err != nil {
			e.stopStarted(context.Background())
			return fmt.Errorf("start %s: %w", s.Name(), err)
		}
		e.started = append(e.started, s)
	}
	if e.sip != nil && !e.sip.Virtual() {
		for _, l := range e.sip.Listeners() {
			e.log.Info("listening", "proto", l.Proto, "addr", l.Addr.String())
		}
	}
	if e.rpc != nil && e.rpc.Addr() != nil {
		e.log.Info("json-rpc control plane", "url", "http://"+e.rpc.Addr().String()+"/RPC")
	}
	return nil
}

// Stop stops everything in reverse start order: listeners first, then the
// workers finish what they hold, then queues are saved.
func (e *Engine) Stop(ctx context.Context) error {
	err := e.stopStarted(ctx)
	if e.cancelRun != nil {
		e.cancelRun()
	}
	return err
}

func (e *Engine) stopStarted(ctx context.Context) error {
	var errs []error
	for i := len(e.started) - 1; i >= 0; i-- {
		s := e.started[i]
		if err := s.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", s.Name(), err))
		}
	}
	e.started = nil
	return errors.Join(errs...)
}

func (e *Engine) onPanic(worker int, v any) {
	e.log.Error("worker task panicked (recovered)", "worker", worker, "panic", fmt.Sprint(v))
}

// funcSystem adapts a pair of functions to Subsystem.
type funcSystem struct {
	name        string
	start, stop func(context.Context) error
}

func (f funcSystem) Name() string { return f.name }
func (f funcSystem) Start(ctx context.Context) error {
	if f.start == nil {
		return nil
	}
	return f.start(ctx)
}
func (f funcSystem) Stop(ctx context.Context) error {
	if f.stop == nil {
		return nil
	}
	return f.stop(ctx)
}

// groupSystem adapts a worker group to Subsystem.
type groupSystem struct{ g *workers.Group }

func (s groupSystem) Name() string                    { return "group " + s.g.Name() }
func (s groupSystem) Start(ctx context.Context) error { return s.g.Start(ctx) }
func (s groupSystem) Stop(ctx context.Context) error  { return s.g.Stop(ctx) }

// rateLimiter lets through at most one log line per key and second.
type rateLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
	drop map[string]int
}

// allow reports whether a line for key may be logged now, and how many were
// suppressed since the last one.
func (r *rateLimiter) allow(key string) (bool, int) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		r.last, r.drop = map[string]time.Time{}, map[string]int{}
	}
	if now.Sub(r.last[key]) < time.Second {
		r.drop[key]++
		return false, 0
	}
	n := r.drop[key]
	r.last[key], r.drop[key] = now, 0
	return true, n
}

// SharedVar returns the $shv value of name (string or int64), or nil.
func (e *Engine) SharedVar(name string) any { return e.deps.Shv.Get(name) }
