package engine

import (
	"context"
	"errors"
	"fmt"
	"kemi/stats"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/jsonrpc"
	"kemi/ksr"
	"kemi/logging"
	"kemi/luavm"
	"kemi/modules/mqueue"
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
	// Build are the scripts' compile-time options (kemi test: coverage,
	// spies and stubs); the zero value compiles them as they are.
	Build luavm.BuildOptions
	// StuckAfter is how long one callback may run before a warning names
	// its worker (once per event); 0 means DefaultStuckAfter.
	StuckAfter time.Duration
}

// rpcTransporter is a module serving the control plane's methods on
// transports of its own (ctl's binrpc sockets, jsonrpcs' FIFO): they start
// after the HTTP listener and stop before it.
type rpcTransporter interface {
	RPCTransports(rpc *jsonrpc.Server) []jsonrpc.Transport
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
	log   *slog.Logger // rate-limited: what can repeat per request
	ctl   *slog.Logger // not limited: what an operator's action causes (a reload)
	level *slog.LevelVar
	clock timers.Clock
	epoch time.Time // monoNow's base: a reading with the monotonic clock

	boxes sync.Pool // recycled request boxes, zeroed (worker.go recycle)

	cur      luavm.Current
	version  atomic.Int64
	reloadMu sync.Mutex
	watchdog *luavm.Watchdog
	memdog   *luavm.MemWatchdog // nil without a memory budget

	deps      *ksr.Deps
	mods      []ksr.Module // the configuration's modules that run (loaded, or always on)
	sip       *sipnet.Server
	receivers *workers.Group[ksr.Task]
	groups    map[string]*taskGroup // async_workers groups, by name
	modGroups []*taskGroup          // groups the modules made (Host.NewGroup)
	rpc       *jsonrpc.Server
	suspender ksr.Suspender // the loaded module that suspends request handlers (async), or nil

	keepReceived bool // sworker is loaded: pre-routing keeps the message as received

	subsystems []Subsystem
	started    []Subsystem
	start      time.Time
	stats      *stats.Registry        // Kamailio's statistics (stats.go)
	reqStats   map[string]*stats.Stat // core:rcv_requests_<method>, by method (read-only after initStats)
	fwd        fwdStats               // core:fwd_* and drop_* (stats.go)
	resStats   map[string]*stats.Stat // core:rcv_replies_<class or code> (read-only after initStats)
	fams       *stats.Families        // kemi's labelled metrics: Lua latency and errors per function (metrics.go)
	metrics    *metricsServer         // xhttp_prom's own listener, nil without (metrics.go)
	runCtx     context.Context
	cancelRun  context.CancelFunc

	pending  atomic.Int64   // tasks submitted and not finished (kemi test waits on it)
	idleMu   sync.Mutex     // held by a WaitIdle using idleBufs
	idleBufs [2][]time.Time // WaitIdle's deadline buffers (inject.go)
	vmsMu    sync.Mutex
	vms      []*worker
}

// New validates settings, compiles and proves the scripts and builds every
// subsystem; nothing runs until Start.
func New(set *Settings, opts Options) (*Engine, error) {
	e := &Engine{set: set, opts: opts, groups: map[string]*taskGroup{}, epoch: time.Now()}
	e.level = opts.Level
	if e.level == nil {
		e.level = new(slog.LevelVar)
		e.level.Set(ksr.LevelFromDebug(set.Debug))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: e.level}))
	}
	e.clock = opts.Clock
	if e.clock == nil {
		e.clock = timers.Real()
	}
	// A warning or error that can repeat per request (a failing store, a script error) logs
	// once per second and kind, with the count of suppressed ones; the engine's time, so
	// `kemi test` steps it too. The attributes name what differs: the Lua function, the
	// queue, the timer, the worker group, the async route.
	e.ctl = log // operator-driven events (reloads) are never suppressed
	e.log = slog.New(logging.RateLimit(log.Handler(), logging.RateLimitOptions{
		KeyAttrs: []string{"function", "queue", "timer", "group", "route"},
		Now:      e.clock.Now,
	}))
	for _, n := range set.Notices {
		e.log.Info("config notice: " + n)
	}
	e.deps = &ksr.Deps{
		Log:      e.log,
		Now:      e.clock.Now,
		Version:  Version,
		Shv:      ksr.NewSharedVars(),
		Myself:   e.myself,
		Aliases:  set.Aliases,
		Hostname: hostname(),
	}
	e.initStats()
	if err := e.provisionModules(); err != nil {
		return nil, err
	}
	if set.AppLua().MaxExec > 0 {
		e.watchdog = luavm.NewWatchdog()
	}
	if set.AppLua().MaxMem > 0 {
		e.memdog = luavm.NewMemWatchdog()
	}
	e.deps.Relay = &relaySystem{e: e} // t_relay, KSR.forward (relay.go)
	// With sworker loaded, pre-routing keeps each message as received:
	// that is what KSR.sworker.task hands over.
	_, e.keepReceived = set.Modules["sworker"]
	g, err := e.build(context.Background(), 1)
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
func (e *Engine) Queues() *queues.Registry {
	return e.set.module("mqueue").(*mqueue.Module).Registry()
}

// Table returns every KSR function of the configuration's modules.
func (e *Engine) Table() *ksr.Table { return e.deps.Table }

// Deps returns the services every VM's bindings share (ksr.Host).
func (e *Engine) Deps() *ksr.Deps { return e.deps }

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

// DefaultLoadTimeout bounds the top level of the scripts (at start, in a
// reload's proof, and when a VM switches) unless app_lua load_timeout_ms
// says otherwise.
const DefaultLoadTimeout = 5 * time.Second

// loadTimeout is the bound on the scripts' top level.
func (e *Engine) loadTimeout() time.Duration {
	if e.set.AppLua().LoadTimeout > 0 {
		return e.set.AppLua().LoadTimeout
	}
	return DefaultLoadTimeout
}

// build compiles the scripts into generation version and proves it in a
// scratch VM: the top-level chunks run, within the load timeout and until
// ctx ends, and every callback the configuration names must exist.
func (e *Engine) build(ctx context.Context, version int64) (*luavm.Generation, error) {
	g, err := luavm.BuildWith(version, e.set.AppLua().Scripts, e.opts.ReadFile, e.opts.Build)
	if err != nil {
		return nil, err
	}
	env := ksr.NewEnv(e.deps, "scratch", "scratch", 0)
	init := func(L *lua.LState) error { ksr.Register(L, env); return nil }
	err = luavm.Prove(ctx, g, e.loadTimeout(), init, func(L *lua.LState) error {
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
		for _, m := range e.mods {
			if u, ok := m.(ksr.CallbackUser); ok {
				for _, c := range u.Callbacks() {
					need(c.Fn, c.Why)
				}
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("script lacks function %s", strings.Join(missing, ", "))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

// provisionModules builds the export table of every module and the
// runtimes of those the configuration loads (the core always runs), in
// table order.
func (e *Engine) provisionModules() error {
	for _, m := range e.set.Mods {
		info := m.Info()
		if _, loaded := e.set.Modules[info.Name]; !loaded && info.Name != "core" {
			continue
		}
		if err := e.deps.Provision(e, m); err != nil {
			return err
		}
		e.mods = append(e.mods, m)
		if s, ok := m.(ksr.Suspender); ok {
			e.suspender = s
		}
	}
	t, err := ksr.NewTable(e.set.Mods...)
	if err != nil {
		return err
	}
	e.deps.Table = t
	return nil
}

// buildSubsystems creates the subsystems in start order: the modules'
// runtimes that the workers use (mqueue), the watchdog, the worker groups,
// the modules' runtimes that feed the workers (AfterWorkers: rtimer,
// async), then the SIP layer and the RPC listener.
func (e *Engine) buildSubsystems() error {
	var feeders []Subsystem
	for _, m := range e.mods {
		if st, ok := m.(ksr.Starter); ok {
			s := funcSystem{m.Info().Name, st.Start, st.Stop}
			if m.Info().AfterWorkers {
				feeders = append(feeders, s)
			} else {
				e.subsystems = append(e.subsystems, s)
			}
		}
	}
	stuck := e.opts.StuckAfter
	if stuck <= 0 {
		stuck = DefaultStuckAfter
	}
	e.subsystems = append(e.subsystems, stuckMonitor{e: e, after: stuck})
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
		e.subsystems = append(e.subsystems, groupSystem{g.g})
	}
	n := e.set.Children + e.set.TCPChildren
	recv, err := e.newGroup("receiver", "receivers", n, 0, 0, false)
	if err != nil {
		return err
	}
	e.receivers = recv
	e.subsystems = append(e.subsystems, groupSystem{recv})
	e.subsystems = append(e.subsystems, feeders...)
	sopts := sipnet.Options{Listen: e.set.Listen, ServerHeader: e.set.ServerHdr, Logger: e.log.With("module", "sip"),
		TCPMaxConnections: e.set.TCPMaxConns, TCPLifetime: e.set.TCPLifetime, TCPReadTimeout: e.set.TCPRdTimeout}
	if e.opts.NoNetwork {
		sopts.Outbound = e.outbound // kemi test: relays go to the injected request's Outcome (inject.go)
	}
	tlsm := e.set.tlsModule()
	if tlsm != nil {
		sopts.TLS = tlsm.Config()
	}
	if xm := e.set.xhttpModule(); xm != nil {
		sopts.HTTP = xm.Handle
	}
	srv, err := sipnet.New(sopts, e)
	if err != nil {
		return err
	}
	e.sip = srv
	if tlsm != nil {
		tlsm.Attach(srv)
	}
	e.subsystems = append(e.subsystems, funcSystem{"sip", srv.Start, srv.Stop})
	if !e.opts.NoNetwork {
		for _, m := range e.mods {
			if d, ok := m.(ksr.Drainer); ok {
				// Stopped before the listeners: suspended requests get their 503.
				e.subsystems = append(e.subsystems, funcSystem{m.Info().Name + " drain", nil, d.Drain})
			}
		}
	}
	addr, addrAt := e.set.rpcListen()
	if e.opts.RPCListen != "" {
		addr = e.opts.RPCListen
	}
	listen := addr
	if addr == "-" {
		listen = "" // no listener: the server still serves in-process calls
	}
	rpc, err := jsonrpc.NewServer(jsonrpc.Options{Addr: listen, Logger: e.log.With("module", "jsonrpc")})
	if err != nil {
		if addrAt.Line > 0 {
			return fmt.Errorf("%w, at %s", err, addrAt)
		}
		return err
	}
	e.rpc = rpc
	e.registerRPC()
	if !e.opts.NoNetwork && addr != "-" {
		e.subsystems = append(e.subsystems, funcSystem{"jsonrpc", rpc.Start, rpc.Stop})
	}
	if err := e.serveMetrics(); err != nil {
		return err
	}
	if !e.opts.NoNetwork {
		for _, m := range e.mods {
			if t, ok := m.(rpcTransporter); ok {
				for _, tr := range t.RPCTransports(rpc) {
					e.subsystems = append(e.subsystems, tr)
				}
			}
		}
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
type groupSystem struct{ g *workers.Group[ksr.Task] }

func (s groupSystem) Name() string                    { return "group " + s.g.Name() }
func (s groupSystem) Start(ctx context.Context) error { return s.g.Start(ctx) }
func (s groupSystem) Stop(ctx context.Context) error  { return s.g.Stop(ctx) }

// SharedVar returns the $shv value of name (string or int64), or nil.
func (e *Engine) SharedVar(name string) any { return e.deps.Shv.Get(name) }
