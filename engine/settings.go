package engine

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"kemi/config"
	"kemi/queues"
	"kemi/sipnet"
)

// Settings is a configuration file turned into what the engine runs: the
// semantic layer over config's statements. Every error carries file:line.
type Settings struct {
	File   string
	Listen []sipnet.Listen

	Children    int
	TCPChildren int
	Debug       int
	LogStderr   bool
	ServerHdr   string
	Aliases     []string

	// Lua
	Scripts     []string // app_lua load, in load order
	Reload      bool     // app_lua reload (default on)
	MaxExec     time.Duration
	MaxMem      int64 // app_lua max_mem_mb, in bytes; 0 = no memory budget
	RequestCB   string
	ReplyCB     string // "" = none
	PreRouteCB  string // "" = none
	OnsendCB    string
	EventCB     string
	CfgEngine   string
	RPCListen   string
	RPCListenAt config.Pos

	// async_workers / async_workers_group (core)
	AsyncGroups []GroupSpec

	Modules map[string]config.Pos // loaded modules, by normalised name

	Mqueue  MqueueSettings
	Rtimer  RtimerSettings
	Async   AsyncSettings
	Sworker SworkerSettings
	TM      TMSettings

	Notices []string // ignored settings, one line each
}

// GroupSpec is one async worker group (Kamailio's async_workers_group).
type GroupSpec struct {
	Name     string
	Workers  int
	NonBlock bool
	USleep   int // µs each worker sleeps before taking a task
	// Inbox is how many tasks may wait for the group (kemi's inbox=N key,
	// ignored by Kamailio); 0 = 1024 per worker.
	Inbox int
	Pos   config.Pos
}

// MqueueSettings are the mqueue module's parameters.
type MqueueSettings struct {
	Queues []queues.Options
	DBURL  string
	Pos    map[string]config.Pos // queue name -> definition
}

// TimerSpec is one rtimer timer.
type TimerSpec struct {
	Name     string
	Mode     int
	Interval time.Duration
	Execs    []string     // Lua functions, in definition order (they run last first, as in Kamailio)
	ExecPos  []config.Pos // where each exec was defined
	Pos      config.Pos

	defaulted bool // the interval came from default_interval
}

// RtimerSettings are the rtimer module's parameters.
type RtimerSettings struct {
	Timers          []*TimerSpec
	DefaultInterval time.Duration
}

// AsyncSettings are the async module's parameters.
type AsyncSettings struct {
	Workers int // default 1
	MSTimer int
	Return  int
}

// SworkerSettings are the sworker module's parameters.
type SworkerSettings struct {
	XData string
}

// Defaults used when the configuration is silent.
const (
	DefaultChildren  = 8
	DefaultRPCListen = "127.0.0.1:5071"
	// DefaultMaxMemMB is app_lua max_mem_mb when not set: how much one Lua
	// event may grow the heap (docs/reliability.md).
	DefaultMaxMemMB = 256
	defaultPort     = 5060
)

// implemented modules; coreOnly modules matter only to Kamailio's C core and
// are accepted with their parameters ignored.
var (
	implemented = map[string]bool{"app_lua": true, "mqueue": true, "rtimer": true, "async": true, "sworker": true, "jsonrpcs": true}
	coreOnly    = map[string]bool{
		"tm": true, "tmx": true, "sl": true, "pv": true, "xlog": true, "kex": true, "corex": true,
		"textops": true, "textopsx": true, "ctl": true, "cfg_rpc": true, "db_sqlite": true,
		"maxfwd": true, "siputils": true, "sanity": true, "rr": true, "app_lua_sr": true,
	}
)

// ignoredGlobals are Kamailio core parameters kemi accepts and ignores.
var ignoredGlobals = map[string]bool{
	"fork": true, "auto_aliases": true, "mpath": true, "log_facility": true, "log_prefix": true,
	"log_name": true, "log_color": true, "memdbg": true, "memlog": true, "mem_summary": true,
	"mhomed": true, "user_agent_header": true, "sip_warning": true, "tcp_connection_lifetime": true,
	"tcp_max_connections": true, "tcp_accept_no_cl": true, "tcp_rd_buf_size": true,
	"tcp_keepalive": true, "tcp_keepidle": true, "tcp_keepintvl": true, "tcp_keepcnt": true,
	"enable_tls": true, "enable_sctp": true, "disable_sctp": true, "dns": true, "rev_dns": true,
	"use_dns_cache": true, "use_dns_failover": true, "dns_try_ipv6": true, "dns_cache_init": true,
	"maxbuffer": true, "shm_mem_size": true, "pkg_mem_size": true, "max_while_loops": true,
	"latency_log": true, "latency_limit_action": true, "latency_limit_db": true, "corelog": true,
	"onsend_route_reply": true, "phone2tel": true, "udp_mtu": true, "udp_mtu_try_proto": true,
	"force_rport": true, "workdir": true, "chroot": true, "user": true, "group": true,
	"mlock_pages": true, "shm_force_alloc": true, "real_time": true, "rt_prio": true,
	"rt_policy": true, "rt_timer1_prio": true, "rt_timer2_prio": true, "tos": true,
	"pmtu_discovery": true, "sock_mode": true, "sock_user": true, "sock_group": true,
	"open_files_limit": true, "statistics": true, "stats_name_separator": true,
	"received_route_mode": true, "http_reply_parse": true, "reply_to_via": true,
	"loadpath": true, "log_engine_type": true, "log_engine_data": true, "tcp_async": true,
	"tcp_conn_wq_max": true, "tcp_wq_max": true, "tcp_crlf_ping": true, "tcp_linger2": true,
	"tcp_reuse_port": true, "tcp_fd_cache": true, "tcp_buf_write": true, "tcp_defer_accept": true,
	"tcp_delayed_ack": true, "tcp_syncnt": true, "tcp_source_ipv4": true, "tcp_source_ipv6": true,
	"tcp_no_connect": true, "tcp_clone_rcvbuf": true, "tcp_check_timer": true, "tcp_send_timeout": true,
	"tcp_connect_timeout": true, "local_rport": true, "server_signature": true, "sip_parser_log": true,
	"sip_parser_log_oneline": true, "version_table": true,
	"advertised_address": true, "advertised_port": true, "max_recursive_level": true,
	"xavp_via_params": true, "xavp_via_fields": true, "route_locks_size": true, "debug_mode": true,
	"bind_ipv6_link_local": true,
}

// FromConfig turns parsed statements into Settings.
func FromConfig(c *config.Config, file string) (*Settings, error) {
	s := &Settings{
		File:      file,
		Children:  DefaultChildren,
		Debug:     2, // kemi prints info by default; Kamailio's default is 0 (warn)
		LogStderr: true,
		Reload:    true,
		MaxMem:    DefaultMaxMemMB << 20,
		RequestCB: "ksr_request_route",
		ReplyCB:   "ksr_reply_route",
		RPCListen: DefaultRPCListen,
		Modules:   map[string]config.Pos{},
		Async:     AsyncSettings{Workers: 1},
		TM:        TMSettings{FrTimer: sipnet.DefaultFrTimer, FrInvTimer: sipnet.DefaultFrInvTimer},
		Rtimer:    RtimerSettings{DefaultInterval: 120 * time.Second},
		Mqueue:    MqueueSettings{Pos: map[string]config.Pos{}},
	}
	p := &settingsParser{s: s, mqSize: 0, mqAddMode: 0}
	for _, st := range c.Stmts {
		var err error
		switch st.Kind {
		case config.Global:
			err = p.global(st)
		case config.LoadModule:
			err = p.loadModule(st)
		case config.ModParam:
			err = p.modParam(st)
		case config.CfgEngine:
			s.CfgEngine = st.Name
			if st.Name != "lua" {
				err = config.Errorf(st.Pos, "cfgengine %q is not supported: kemi runs only cfgengine \"lua\"", st.Name)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return s, nil
}

type settingsParser struct {
	s         *Settings
	port      int
	mqSize    int
	mqAddMode int
	noPort    []int // indexes of listens written without a port (they take port=)
}

func (p *settingsParser) global(st config.Stmt) error {
	s := p.s
	v := st.Value
	intValue := func(min int) (int, error) {
		if !v.IsInt || v.Int < min {
			return 0, config.Errorf(st.Pos, "%s: expected an integer >= %d, got %q", st.Name, min, v.String())
		}
		return v.Int, nil
	}
	strValue := func() string { return v.String() }
	var err error
	switch name := st.Name; name {
	case "listen":
		ls, hasPort, lerr := parseListen(strValue(), st.Extra)
		if lerr != nil {
			return config.Errorf(st.Pos, "listen %q: %v", strValue(), lerr)
		}
		if st.Extra != "" {
			s.Notices = append(s.Notices, fmt.Sprintf("%s: listen: %q ignored (kemi does not advertise other addresses)", st.Pos, st.Extra))
		}
		for _, l := range ls {
			if !hasPort {
				p.noPort = append(p.noPort, len(s.Listen))
			}
			s.Listen = append(s.Listen, l)
		}
	case "port":
		p.port, err = intValue(1)
	case "children":
		s.Children, err = intValue(1)
	case "tcp_children":
		s.TCPChildren, err = intValue(1)
	case "debug":
		if !v.IsInt {
			return config.Errorf(st.Pos, "debug: expected an integer log level (-5..3), got %q", v.String())
		}
		s.Debug = v.Int
	case "log_stderror":
		s.LogStderr = v.IsInt && v.Int != 0
	case "server_header":
		s.ServerHdr = strings.TrimPrefix(strValue(), "Server: ")
	case "alias":
		s.Aliases = append(s.Aliases, aliasHost(strValue()))
	case "disable_tcp":
		if v.IsInt && v.Int != 0 {
			s.Notices = append(s.Notices, fmt.Sprintf("%s: disable_tcp: tcp listeners are skipped", st.Pos))
			p.s.TCPChildren = -1
		}
	case "async_workers", "async_workers_group", "async_usleep", "async_nonblock":
		err = p.asyncWorkers(st)
	case "kemi.request_route_callback":
		s.RequestCB = callbackName(strValue())
	case "kemi.reply_route_callback":
		s.ReplyCB = callbackName(strValue())
	case "kemi.pre_routing_callback":
		s.PreRouteCB = callbackName(strValue())
	case "kemi.onsend_route_callback":
		s.OnsendCB = callbackName(strValue())
		s.Notices = append(s.Notices, fmt.Sprintf("%s: kemi.onsend_route_callback is not run by kemi (ignored)", st.Pos))
	case "kemi.event_route_callback":
		s.EventCB = callbackName(strValue())
	case "rpc_listen", "kemi.rpc_listen":
		s.RPCListen, s.RPCListenAt = strValue(), st.Pos
	default:
		if ignoredGlobals[name] {
			s.Notices = append(s.Notices, fmt.Sprintf("%s: %s: Kamailio core parameter ignored by kemi", st.Pos, name))
			return nil
		}
		return config.Errorf(st.Pos, "unknown global parameter %q", name)
	}
	return err
}

func (p *settingsParser) group(name string) *GroupSpec {
	for i := range p.s.AsyncGroups {
		if p.s.AsyncGroups[i].Name == name {
			return &p.s.AsyncGroups[i]
		}
	}
	return nil
}

func callbackName(v string) string {
	if v == "none" {
		return ""
	}
	return v
}

func aliasHost(a string) string {
	a = strings.TrimPrefix(strings.TrimPrefix(a, "udp:"), "tcp:")
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

// asyncWorkers applies the core parameters that define the async_workers
// groups, with Kamailio's ordering rules (src/core/async_task.c):
//   - async_workers=N creates the group "default" with N workers; when
//     "default" already exists it is ignored ("task workers already set").
//   - async_workers_group="name=default;..." goes the same way for workers,
//     but its nonblock (only when > 0) and usleep still apply to "default".
//   - another group defined first creates "default" with 1 worker, so a
//     later async_workers=N is ignored.
//   - async_usleep / async_nonblock apply to "default" and are ignored
//     while it does not exist yet.
//
// Unlike Kamailio, a second group with the same name is an error (Kamailio
// starts both and sends every task to the later one).
func (p *settingsParser) asyncWorkers(st config.Stmt) error {
	s, v := p.s, st.Value
	ignored := func(why string) {
		s.Notices = append(s.Notices, fmt.Sprintf("%s: %s: %s (ignored, as Kamailio does)", st.Pos, st.Name, why))
	}
	intValue := func() (int, error) {
		if !v.IsInt || v.Int < 0 {
			return 0, config.Errorf(st.Pos, "%s: expected an integer >= 0, got %q", st.Name, v.String())
		}
		return v.Int, nil
	}
	switch st.Name {
	case "async_workers":
		n, err := intValue()
		if err != nil || n == 0 {
			return err
		}
		p.setDefaultWorkers(st, n, ignored)
	case "async_usleep", "async_nonblock":
		n, err := intValue()
		if err != nil {
			return err
		}
		d := p.group("default")
		if d == nil {
			ignored("set before the default group exists (put async_workers first)")
			return nil
		}
		if st.Name == "async_usleep" {
			d.USleep = n
		} else if n > 0 {
			d.NonBlock = true
		}
	case "async_workers_group":
		g, err := parseGroup(v.String())
		if err != nil {
			return config.Errorf(st.Pos, "async_workers_group %q: %v", v.String(), err)
		}
		g.Pos = st.Pos
		if g.Name == "default" {
			p.setDefaultWorkers(st, g.Workers, ignored)
			d := p.group("default")
			if g.NonBlock {
				d.NonBlock = true
			}
			d.USleep = g.USleep
			if g.Inbox > 0 {
				d.Inbox = g.Inbox
			}
			return nil
		}
		if old := p.group(g.Name); old != nil {
			return config.Errorf(st.Pos, "async_workers_group: group %q already defined at %s", g.Name, old.Pos)
		}
		if p.group("default") == nil {
			// Kamailio creates the default group with one worker first.
			s.AsyncGroups = append(s.AsyncGroups, GroupSpec{Name: "default", Workers: 1, Pos: st.Pos})
		}
		s.AsyncGroups = append(s.AsyncGroups, g)
	}
	return nil
}

// setDefaultWorkers creates the default group with n workers, unless it
// exists (then the statement's worker count is ignored).
func (p *settingsParser) setDefaultWorkers(st config.Stmt, n int, ignored func(string)) {
	if d := p.group("default"); d != nil {
		ignored("task workers already set")
		return
	}
	p.s.AsyncGroups = append(p.s.AsyncGroups, GroupSpec{Name: "default", Workers: n, Pos: st.Pos})
}

// parseGroup parses "name=X;workers=N;nonblock=0|1;usleep=N" as Kamailio
// does: keys case-insensitive, blanks around keys and values trimmed, a
// trailing ';' allowed, unknown keys ignored, name and workers > 0
// required. inbox=N is kemi's own key (Kamailio ignores it). Unlike
// Kamailio, negative nonblock/usleep values are errors.
func parseGroup(spec string) (GroupSpec, error) {
	var g GroupSpec
	for _, part := range strings.Split(strings.TrimSuffix(strings.TrimSpace(spec), ";"), ";") {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "name":
			g.Name = v
		case "workers", "nonblock", "usleep", "inbox":
			if !ok {
				return g, fmt.Errorf("%s: expected %s=<integer>", k, k)
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return g, fmt.Errorf("%s %q: expected a non-negative integer", k, v)
			}
			switch k {
			case "workers":
				g.Workers = n
			case "nonblock":
				g.NonBlock = n != 0
			case "usleep":
				g.USleep = n
			case "inbox":
				g.Inbox = n
			}
		default:
			// Kamailio ignores unknown keys (and empty parts) here.
		}
	}
	if g.Name == "" {
		return g, errors.New("name is required")
	}
	if g.Workers <= 0 {
		return g, errors.New("workers must be > 0")
	}
	return g, nil
}

// parseListen parses Kamailio's listen value: [proto:]addr[:port]. Without
// a protocol it listens on udp and tcp. addr may be an IP, [IPv6], a host
// name or *. hasPort is false when the port was left out (it is then 5060
// or the port= value).
func parseListen(v, extra string) (ls []sipnet.Listen, hasPort bool, err error) {
	if f := strings.Fields(extra); len(f) > 0 && f[0] != "advertise" && f[0] != "name" {
		return nil, false, fmt.Errorf("unexpected %q after the address", extra)
	}
	protos := []string{"udp", "tcp"}
	rest := v
	if i := strings.IndexByte(v, ':'); i > 0 {
		switch p := strings.ToLower(v[:i]); p {
		case "udp", "tcp":
			protos, rest = []string{p}, v[i+1:]
		case "tls", "sctp", "ws", "wss":
			return nil, false, fmt.Errorf("protocol %q is not supported (udp or tcp)", p)
		}
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, false, errors.New("missing ']'")
		}
		host, port = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
	} else if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i+1:]
	}
	if host == "" {
		return nil, false, errors.New("missing address")
	}
	if host == "*" {
		host = "0.0.0.0"
	}
	hasPort = port != ""
	if !hasPort {
		port = strconv.Itoa(defaultPort)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return nil, false, fmt.Errorf("port %q: expected 0..65535", port)
	}
	out := make([]sipnet.Listen, 0, len(protos))
	for _, p := range protos {
		out = append(out, sipnet.Listen{Proto: p, Addr: net.JoinHostPort(host, port)})
	}
	return out, hasPort, nil
}

func (p *settingsParser) loadModule(st config.Stmt) error {
	name := config.ModuleName(st.Name)
	if !implemented[name] && !coreOnly[name] {
		return config.Errorf(st.Pos, "module %q is not available in kemi (implemented: app_lua, mqueue, rtimer, async, sworker, jsonrpcs; accepted and ignored: tm, tmx, sl, pv, xlog, kex, corex, textops, ctl, cfg_rpc, db_sqlite, ...)", name)
	}
	if prev, ok := p.s.Modules[name]; ok {
		return config.Errorf(st.Pos, "module %q already loaded at %s", name, prev)
	}
	p.s.Modules[name] = st.Pos
	return nil
}

func (p *settingsParser) modParam(st config.Stmt) error {
	mods := strings.Split(st.Name, "|")
	for _, m := range mods {
		m = config.ModuleName(m)
		if _, ok := p.s.Modules[m]; !ok {
			return config.Errorf(st.Pos, "modparam(%q, %q): module %q is not loaded (loadmodule must come before its modparam)", st.Name, st.Param, m)
		}
		var err error
		switch m {
		case "app_lua":
			err = p.appLua(st)
		case "mqueue":
			err = p.mqueue(st)
		case "rtimer":
			err = p.rtimer(st)
		case "async":
			err = p.async(st)
		case "sworker":
			err = p.sworker(st)
		case "jsonrpcs":
			err = p.jsonrpcs(st)
		case "tm":
			err = p.tm(st)
		default:
			p.s.Notices = append(p.s.Notices, fmt.Sprintf("%s: modparam(%q, %q) ignored: kemi does not need it", st.Pos, m, st.Param))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func unknownParam(st config.Stmt, mod string, known string) error {
	return config.Errorf(st.Pos, "modparam(%q, %q): unknown parameter (%s has: %s)", mod, st.Param, mod, known)
}

func intParam(st config.Stmt, mod string, min, max int) (int, error) {
	v := st.Value
	n := v.Int
	if !v.IsInt {
		var err error
		if n, err = strconv.Atoi(strings.TrimSpace(v.Str)); err != nil {
			return 0, config.Errorf(st.Pos, "modparam %s %s: expected an integer, got %q", mod, st.Param, v.Str)
		}
	}
	if n < min || n > max {
		return 0, config.Errorf(st.Pos, "modparam %s %s: must be %d..%d, got %d", mod, st.Param, min, max, n)
	}
	return n, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func (p *settingsParser) appLua(st config.Stmt) error {
	switch st.Param {
	case "load":
		path := st.Value.String()
		if path == "" {
			return config.Errorf(st.Pos, "modparam app_lua load: empty script path")
		}
		if !filepath.IsAbs(path) && p.s.File != "" {
			// Relative to the config file when it is there (a project
			// directory can move), else relative to the working directory
			// as Kamailio resolves it.
			if c := filepath.Join(filepath.Dir(p.s.File), path); fileExists(c) {
				path = c
			}
		}
		p.s.Scripts = append(p.s.Scripts, path)
	case "reload":
		n, err := intParam(st, "app_lua", 0, 1)
		if err != nil {
			return err
		}
		p.s.Reload = n == 1
	case "log_mode":
		p.s.Notices = append(p.s.Notices, fmt.Sprintf("%s: modparam app_lua log_mode ignored", st.Pos))
	case "max_exec_ms":
		n, err := intParam(st, "app_lua", 0, 3600_000)
		if err != nil {
			return err
		}
		p.s.MaxExec = time.Duration(n) * time.Millisecond
	case "max_mem_mb":
		n, err := intParam(st, "app_lua", 0, 1<<20)
		if err != nil {
			return err
		}
		p.s.MaxMem = int64(n) << 20
	default:
		return unknownParam(st, "app_lua", "load, reload, log_mode, max_exec_ms, max_mem_mb")
	}
	return nil
}

func (p *settingsParser) addQueue(st config.Stmt, o queues.Options) error {
	if prev, ok := p.s.Mqueue.Pos[o.Name]; ok {
		return config.Errorf(st.Pos, "modparam mqueue %s: duplicate queue name %q (first defined at %s)", st.Param, o.Name, prev)
	}
	p.s.Mqueue.Pos[o.Name] = st.Pos
	p.s.Mqueue.Queues = append(p.s.Mqueue.Queues, o)
	return nil
}

func (p *settingsParser) mqueue(st config.Stmt) error {
	switch st.Param {
	case "mqueue":
		o, err := queues.ParseSpec(st.Value.String())
		if err != nil {
			return config.Errorf(st.Pos, "modparam mqueue mqueue %q: %v", st.Value.String(), err)
		}
		return p.addQueue(st, o)
	case "mqueue_name":
		name := st.Value.String()
		if name == "" {
			return config.Errorf(st.Pos, "modparam mqueue mqueue_name: empty name")
		}
		return p.addQueue(st, queues.Options{Name: name, Size: p.mqSize, AddMode: p.mqAddMode})
	case "mqueue_size":
		n, err := intParam(st, "mqueue", -1<<31, 1<<31-1)
		p.mqSize = n
		return err
	case "mqueue_addmode":
		n, err := intParam(st, "mqueue", 0, 2)
		p.mqAddMode = n
		return err
	case "db_url":
		url := st.Value.String()
		// Checked here for a file:line; only the scheme is printed (a url may hold a password).
		if scheme, _, ok := strings.Cut(url, "://"); ok && !strings.ContainsAny(scheme, `/\`) && !strings.EqualFold(scheme, "sqlite") {
			return config.Errorf(st.Pos, "modparam mqueue db_url: unsupported scheme %q: kemi stores queues in SQLite (\"sqlite:///path/file.db\" or a plain path)", scheme)
		}
		p.s.Mqueue.DBURL = url
	default:
		return unknownParam(st, "mqueue", "mqueue, mqueue_name, mqueue_size, mqueue_addmode, db_url")
	}
	return nil
}

func (p *settingsParser) rtimer(st config.Stmt) error {
	switch st.Param {
	case "timer":
		t, notes, err := parseTimer(st.Value.String(), p.s.Rtimer.DefaultInterval)
		if err != nil {
			return config.Errorf(st.Pos, "modparam rtimer timer %q: %v", st.Value.String(), err)
		}
		for _, n := range notes {
			p.s.Notices = append(p.s.Notices, fmt.Sprintf("%s: modparam rtimer timer %q: %s", st.Pos, st.Value.String(), n))
		}
		t.Pos = st.Pos
		for _, o := range p.s.Rtimer.Timers {
			if strings.EqualFold(o.Name, t.Name) {
				return config.Errorf(st.Pos, "modparam rtimer timer: timer %q already defined at %s", t.Name, o.Pos)
			}
		}
		p.s.Rtimer.Timers = append(p.s.Rtimer.Timers, t)
	case "exec":
		tname, route, notes, err := parseExec(st.Value.String())
		if err != nil {
			return config.Errorf(st.Pos, "modparam rtimer exec %q: %v", st.Value.String(), err)
		}
		for _, n := range notes {
			p.s.Notices = append(p.s.Notices, fmt.Sprintf("%s: modparam rtimer exec %q: %s", st.Pos, st.Value.String(), n))
		}
		for _, t := range p.s.Rtimer.Timers {
			if strings.EqualFold(t.Name, tname) {
				t.Execs = append(t.Execs, route)
				t.ExecPos = append(t.ExecPos, st.Pos)
				return nil
			}
		}
		return config.Errorf(st.Pos, "modparam rtimer exec: timer %q is not defined (define it with modparam(\"rtimer\", \"timer\", ...) first)", tname)
	case "default_interval":
		n, err := intParam(st, "rtimer", 1, 1<<31-1)
		if err != nil {
			return err
		}
		// As in Kamailio, the default is applied when a timer is parsed:
		// timers defined earlier keep the previous one.
		for _, t := range p.s.Rtimer.Timers {
			if t.defaulted {
				p.s.Notices = append(p.s.Notices, fmt.Sprintf("%s: modparam rtimer default_interval: timer %q (%s) was defined before and keeps its interval; default_interval applies to timers defined after it, as in Kamailio", st.Pos, t.Name, t.Pos))
			}
		}
		p.s.Rtimer.DefaultInterval = time.Duration(n) * time.Second
	default:
		return unknownParam(st, "rtimer", "timer, exec, default_interval")
	}
	return nil
}

// maxTimerMode bounds mode=N: each of the N goroutines owns a Lua VM.
const maxTimerMode = 1024

// parseTimer parses "name=X;mode=N;interval=V[u]" as Kamailio's rtimer does
// (rtimer_mod.c stm_t_param, kamailio-reference.md §4): keys
// case-insensitive, a trailing ';' allowed, unknown keys ignored (reported in
// notes); an interval ending in 'u' or 'U' is in microseconds and sets mode
// 1 while mode is still 0, and mode= is read only while mode is 0, so
// "mode=3;interval=500000u" runs 3 goroutines while "interval=500000u;mode=3"
// runs 1. An absent or zero interval takes def's number of seconds, or of
// microseconds with 'u' ("interval=0u" is 120 µs by default).
//
// Kamailio accepts an empty name and reads past the value of a bare
// "interval"; kemi refuses both, and bounds mode by maxTimerMode.
func parseTimer(spec string, def time.Duration) (t *TimerSpec, notes []string, err error) {
	t = &TimerSpec{}
	var n uint64
	micro := false
	for _, part := range strings.Split(spec, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "name":
			t.Name = v
		case "mode":
			if t.Mode != 0 {
				notes = append(notes, fmt.Sprintf("mode=%s ignored: mode is already %d (an interval in microseconds before mode= sets mode 1; as in Kamailio, put mode= first)", v, t.Mode))
				continue
			}
			m, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, nil, fmt.Errorf("mode %q: expected a non-negative integer", v)
			}
			if m > maxTimerMode {
				return nil, nil, fmt.Errorf("mode %d: at most %d goroutines per timer", m, maxTimerMode)
			}
			t.Mode = int(m)
		case "interval":
			num := v
			micro = false
			if strings.HasSuffix(v, "u") || strings.HasSuffix(v, "U") {
				num, micro = v[:len(v)-1], true
				if t.Mode == 0 {
					t.Mode = 1
				}
			}
			if n, err = strconv.ParseUint(num, 10, 32); err != nil {
				return nil, nil, fmt.Errorf("interval %q: expected a number of seconds, or of microseconds ending in 'u'", v)
			}
		default:
			notes = append(notes, fmt.Sprintf("unknown key %q ignored (as in Kamailio; known keys: name, mode, interval)", k))
		}
	}
	if t.Name == "" {
		return nil, nil, errors.New("name is required")
	}
	if n == 0 {
		n = uint64(def / time.Second)
		t.defaulted = true
	}
	if micro {
		t.Interval = time.Duration(n) * time.Microsecond
	} else {
		t.Interval = time.Duration(n) * time.Second
	}
	return t, notes, nil
}

// parseExec parses "timer=X;route=NAME" as Kamailio does (stm_e_param):
// keys case-insensitive, unknown keys ignored (reported in notes), a route
// name shorter than 63 characters. The timer must be defined before; the
// caller looks it up.
func parseExec(spec string) (timer, route string, notes []string, err error) {
	hasTimer, hasRoute := false, false
	for _, part := range strings.Split(spec, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		switch k {
		case "timer":
			timer, hasTimer = v, true
		case "route":
			route, hasRoute = v, true
		default:
			notes = append(notes, fmt.Sprintf("unknown key %q ignored (as in Kamailio; known keys: timer, route)", k))
		}
	}
	switch {
	case !hasTimer:
		return "", "", nil, errors.New("timer is required")
	case !hasRoute || route == "":
		return "", "", nil, errors.New("route is required: the name of the Lua function to call")
	case len(route) >= 63:
		return "", "", nil, fmt.Errorf("route name %q too long (at most 62 characters)", route)
	}
	return timer, route, notes, nil
}

func (p *settingsParser) async(st config.Stmt) error {
	var err error
	switch st.Param {
	case "workers":
		p.s.Async.Workers, err = intParam(st, "async", 0, 1024)
	case "ms_timer":
		p.s.Async.MSTimer, err = intParam(st, "async", 0, 1000)
	case "return":
		p.s.Async.Return, err = intParam(st, "async", -1<<31, 1<<31-1)
	case "mode":
		p.s.Notices = append(p.s.Notices, fmt.Sprintf("%s: modparam async mode ignored", st.Pos))
	default:
		return unknownParam(st, "async", "workers, ms_timer, return, mode")
	}
	return err
}

func (p *settingsParser) sworker(st config.Stmt) error {
	switch st.Param {
	case "xdata":
		v := st.Value.String()
		if !strings.HasPrefix(v, "$var(") || !strings.HasSuffix(v, ")") {
			return config.Errorf(st.Pos, "modparam sworker xdata %q: expected a writable $var(name) variable", v)
		}
		p.s.Sworker.XData = v
	default:
		return unknownParam(st, "sworker", "xdata")
	}
	return nil
}

func (p *settingsParser) jsonrpcs(st config.Stmt) error {
	switch st.Param {
	case "http_listen":
		p.s.RPCListen, p.s.RPCListenAt = st.Value.String(), st.Pos
	default:
		p.s.Notices = append(p.s.Notices, fmt.Sprintf("%s: modparam(\"jsonrpcs\", %q) ignored: kemi serves JSON-RPC over HTTP on %s", st.Pos, st.Param, p.s.RPCListen))
	}
	return nil
}

// finish applies defaults that depend on the whole file.
func (p *settingsParser) finish() error {
	s := p.s
	if p.port == 0 {
		p.port = defaultPort
	}
	if len(s.Listen) == 0 {
		s.Listen = []sipnet.Listen{
			{Proto: "udp", Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))},
			{Proto: "tcp", Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))},
		}
	} else {
		for _, i := range p.noPort {
			h, _, _ := net.SplitHostPort(s.Listen[i].Addr)
			s.Listen[i].Addr = net.JoinHostPort(h, strconv.Itoa(p.port))
		}
	}
	if s.TCPChildren < 0 { // disable_tcp
		var l []sipnet.Listen
		for _, x := range s.Listen {
			if x.Proto != "tcp" {
				l = append(l, x)
			}
		}
		s.Listen, s.TCPChildren = l, 0
	}
	if _, ok := s.Modules["app_lua"]; ok && s.CfgEngine == "" {
		s.CfgEngine = "lua"
	}
	if len(s.Scripts) == 0 {
		return &config.Error{Pos: config.Pos{File: s.File}, Err: errors.New("no Lua script: add loadmodule \"app_lua.so\" and modparam(\"app_lua\", \"load\", \"/path/script.lua\")")}
	}
	for _, t := range s.Rtimer.Timers {
		if len(t.Execs) == 0 {
			s.Notices = append(s.Notices, fmt.Sprintf("%s: rtimer timer %q has no exec route", t.Pos, t.Name))
		}
	}
	for _, q := range s.Mqueue.Queues {
		if q.DBMode != 0 && s.Mqueue.DBURL == "" {
			return config.Errorf(s.Mqueue.Pos[q.Name], "modparam mqueue mqueue: queue %q has dbmode %d but modparam(\"mqueue\", \"db_url\", ...) is not set", q.Name, q.DBMode)
		}
	}
	return nil
}

// TMSettings are the tm parameters kemi's relay honours (the others are
// accepted and ignored).
type TMSettings struct {
	FrTimer    time.Duration // fr_timer: wait for a final reply (INVITE: until a provisional one)
	FrInvTimer time.Duration // fr_inv_timer: wait for the final reply to INVITE after a provisional
}

// tm reads modparam("tm", ...): fr_timer and fr_inv_timer in milliseconds,
// as Kamailio; other tm parameters are ignored with a notice.
func (p *settingsParser) tm(st config.Stmt) error {
	switch st.Param {
	case "fr_timer", "fr_inv_timer":
		n, err := intParam(st, "tm", 1, 24*3600*1000)
		if err != nil {
			return err
		}
		if st.Param == "fr_timer" {
			p.s.TM.FrTimer = time.Duration(n) * time.Millisecond
		} else {
			p.s.TM.FrInvTimer = time.Duration(n) * time.Millisecond
		}
	default:
		p.s.Notices = append(p.s.Notices, fmt.Sprintf("%s: modparam(\"tm\", %q) ignored: kemi's relay honours fr_timer and fr_inv_timer only", st.Pos, st.Param))
	}
	return nil
}
