package engine

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/logging"
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
	// LogFacility and LogName are log_facility and log_name (syslog,
	// with log_stderror=no); LogJSON is log_engine_type=json or
	// kemi.log_format=json: one JSON object per record.
	LogFacility string
	LogName     string
	LogJSON     bool
	ServerHdr   string
	Aliases     []string

	// tcp_max_connections, tcp_connection_lifetime (s), tcp_rd_timeout (s,
	// a kemi extension); zero takes sipnet's defaults.
	TCPMaxConns  int
	TCPLifetime  time.Duration
	TCPRdTimeout time.Duration

	// Lua
	RequestCB   string
	ReplyCB     string // "" = none
	PreRouteCB  string // "" = none
	OnsendCB    string
	EventCB     string
	CfgEngine   string
	RPCListen   string
	RPCListenAt config.Pos
	// TLSListenAt is where the first tls or wss listen is (they need the
	// tls module).
	TLSListenAt config.Pos

	// async_workers / async_workers_group (core)
	AsyncGroups []GroupSpec

	Modules map[string]config.Pos // loaded modules, by normalised name
	// Mods are the modules with a home of their own (modules.go), each
	// holding its part of the settings.
	Mods []ksr.Module
	// modIdx is Mods by name (modules.go indexModules), nil until built.
	modIdx map[string]ksr.Module

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

// Defaults used when the configuration is silent.
const (
	DefaultChildren  = 8
	DefaultRPCListen = "127.0.0.1:5071"
	// DefaultMaxAllocMB bounds one string.rep, string.format or
	// table.concat result when app_lua max_mem_mb is not set (0, the
	// default: the heap watchdog is off, as its per-instruction check costs
	// about a fifth of an OPTIONS' CPU; docs/reliability.md).
	DefaultMaxAllocMB = 256
	defaultPort       = 5060
)

// ignoredGlobals are Kamailio core parameters kemi accepts and ignores.
var ignoredGlobals = map[string]bool{
	"fork": true, "auto_aliases": true, "mpath": true, "log_prefix": true,
	"log_color": true, "memdbg": true, "memlog": true, "mem_summary": true,
	"mhomed": true, "user_agent_header": true, "sip_warning": true,
	"tcp_accept_no_cl": true, "tcp_rd_buf_size": true,
	"tcp_keepalive": true, "tcp_keepidle": true, "tcp_keepintvl": true, "tcp_keepcnt": true,
	"enable_tls": true, "tls_enable": true, "disable_tls": true, "tls_disable": true, "tls_max_connections": true,
	"tls_port_no": true, "tls_handshake_timeout": true, "tls_send_timeout": true, "tlslog": true, "tls_log": true,
	"tls_method": true, "tls_certificate": true, "tls_private_key": true, "tls_ca_list": true, "tls_verify": true,
	"tls_require_certificate": true, "enable_sctp": true, "disable_sctp": true, "dns": true, "rev_dns": true,
	"use_dns_cache": true, "use_dns_failover": true, "dns_try_ipv6": true, "dns_cache_init": true,
	"maxbuffer": true, "shm_mem_size": true, "pkg_mem_size": true, "max_while_loops": true,
	"latency_log": true, "latency_cfg_log": true, "latency_limit_action": true, "latency_limit_db": true, "corelog": true,
	"onsend_route_reply": true, "phone2tel": true, "udp_mtu": true, "udp_mtu_try_proto": true,
	"force_rport": true, "workdir": true, "chroot": true, "user": true, "group": true,
	"mlock_pages": true, "shm_force_alloc": true, "real_time": true, "rt_prio": true,
	"rt_policy": true, "rt_timer1_prio": true, "rt_timer2_prio": true, "tos": true,
	"pmtu_discovery": true, "sock_mode": true, "sock_user": true, "sock_group": true,
	"open_files_limit": true, "statistics": true, "stats_name_separator": true,
	"received_route_mode": true, "http_reply_parse": true, "reply_to_via": true,
	"loadpath": true, "log_engine_data": true, "tcp_async": true,
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
		RequestCB: "ksr_request_route",
		ReplyCB:   "ksr_reply_route",
		RPCListen: DefaultRPCListen,
		Modules:   map[string]config.Pos{},
		Mods:      moduleTable(),
	}
	s.indexModules() // modules.go
	s.wireModules()
	p := &settingsParser{s: s, setup: ksr.NewSetup(file, &s.Notices)}
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
	s.giveDefines(c.Defines) // modules.go
	return s, nil
}

type settingsParser struct {
	s      *Settings
	setup  *ksr.Setup
	port   int
	noPort []int // indexes of listens written without a port (they take port=)
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
			if (l.Proto == "tls" || l.Proto == "wss") && s.TLSListenAt.Line == 0 {
				s.TLSListenAt = st.Pos
			}
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
	case "log_facility":
		if _, err := logging.Facility(strValue()); err != nil {
			return config.Errorf(st.Pos, "%v", err)
		}
		s.LogFacility = strValue()
	case "log_name":
		s.LogName = strValue()
	case "log_engine_type":
		s.LogJSON = strings.EqualFold(strValue(), "json")
		if !s.LogJSON {
			s.Notices = append(s.Notices, fmt.Sprintf("%s: log_engine_type %q: kemi knows only \"json\" (one JSON object per record)", st.Pos, strValue()))
		}
	case "kemi.log_format":
		switch strValue() {
		case "json":
			s.LogJSON = true
		case "text":
			s.LogJSON = false
		default:
			return config.Errorf(st.Pos, "kemi.log_format %q: expected \"text\" or \"json\"", strValue())
		}
	case "tcp_max_connections":
		s.TCPMaxConns, err = intValue(1)
	case "tcp_connection_lifetime":
		var n int
		n, err = intValue(1)
		s.TCPLifetime = time.Duration(n) * time.Second
	case "tcp_rd_timeout":
		var n int
		n, err = intValue(1)
		s.TCPRdTimeout = time.Duration(n) * time.Second
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
// or the port= value; 5061 for tls, as Kamailio's tls_port_no). ws and wss
// are kemi's (Kamailio reaches WebSocket through xhttp on a tcp or tls
// listener, which kemi accepts too: docs/transports.md).
func parseListen(v, extra string) (ls []sipnet.Listen, hasPort bool, err error) {
	if f := strings.Fields(extra); len(f) > 0 && f[0] != "advertise" && f[0] != "name" {
		return nil, false, fmt.Errorf("unexpected %q after the address", extra)
	}
	protos := []string{"udp", "tcp"}
	rest := v
	if i := strings.IndexByte(v, ':'); i > 0 {
		switch p := strings.ToLower(v[:i]); p {
		case "udp", "tcp", "tls", "ws", "wss":
			protos, rest = []string{p}, v[i+1:]
		case "sctp":
			return nil, false, fmt.Errorf("protocol %q is not supported (udp, tcp, tls, ws or wss)", p)
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
	if !hasPort && len(protos) == 1 && protos[0] == "tls" {
		port, hasPort = "5061", true
	}
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
	if m := p.s.module(name); m != nil {
		_, runs := m.(ksr.Provisioner)
		if info := m.Info(); len(info.Exports) == 0 && len(info.PVs) == 0 && !info.RuntimeFree && !runs {
			return config.Errorf(st.Pos, "module %q is not available in kemi: none of its functions is implemented", name)
		}
	} else {
		return config.Errorf(st.Pos, "module %q is not available in kemi (kemi has: %s)", name, p.s.moduleNames())
	}
	if prev, ok := p.s.Modules[name]; ok {
		return config.Errorf(st.Pos, "module %q already loaded at %s", name, prev)
	}
	p.s.Modules[name] = st.Pos
	return nil
}

func (p *settingsParser) modParam(st config.Stmt) error {
	// "a|b" is Kamailio's regular expression ^(a|b)$ over the loaded
	// modules: the parameter is set on each loaded one, and at least one
	// must be loaded.
	mods := strings.Split(st.Name, "|")
	found := false
	for _, m := range mods {
		m = config.ModuleName(m)
		if _, ok := p.s.Modules[m]; !ok {
			if len(mods) > 1 {
				continue
			}
			return config.Errorf(st.Pos, "modparam(%q, %q): module %q is not loaded (loadmodule must come before its modparam)", st.Name, st.Param, m)
		}
		found = true
		var err error
		if mod := p.s.module(m); mod != nil {
			err = p.moduleParam(mod.Info(), st)
			if err != nil {
				return err
			}
			continue
		}
		switch m {
		default:
			p.s.Notices = append(p.s.Notices, fmt.Sprintf("%s: modparam(%q, %q) ignored: kemi does not need it", st.Pos, m, st.Param))
		}
		if err != nil {
			return err
		}
	}
	if !found {
		return config.Errorf(st.Pos, "modparam(%q, %q): no loaded module matches %q (loadmodule must come before its modparam)", st.Name, st.Param, st.Name)
	}
	return nil
}

// moduleParam hands a modparam to the module's parameter table: honoured,
// ignored with a notice when Kamailio 5.6 knows it, refused otherwise.
func (p *settingsParser) moduleParam(info ksr.ModuleInfo, st config.Stmt) error {
	for _, prm := range info.Params {
		if prm.Name == st.Param {
			return prm.Set(p.setup, st)
		}
	}
	for _, n := range info.Ignored {
		if n == st.Param {
			p.setup.Notice(st.Pos, "modparam(%q, %q) ignored: kemi does not need it", info.Name, st.Param)
			return nil
		}
	}
	return unknownParam(st, info.Name, info.ParamNames())
}

func unknownParam(st config.Stmt, mod string, known string) error {
	return config.Errorf(st.Pos, "modparam(%q, %q): unknown parameter (%s has: %s)", mod, st.Param, mod, known)
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
	if _, ok := s.Modules["tls"]; !ok && s.TLSListenAt.Line > 0 {
		return config.Errorf(s.TLSListenAt, "listen: tls and wss need the tls module: add loadmodule \"tls.so\" with its certificate and private_key")
	}
	if _, ok := s.Modules["app_lua"]; ok && s.CfgEngine == "" {
		s.CfgEngine = "lua"
	}
	for _, m := range s.Mods {
		if f, ok := m.(ksr.Finisher); ok {
			if err := f.Finish(p.setup); err != nil {
				return err
			}
		}
	}
	return nil
}
