// Package tls is Kamailio's tls module in kemi: the certificates, keys and
// verification of the tls and wss listeners (listen=tls:IP:PORT) and of
// relays over tls, from the module's parameters and its tls.cfg profile
// file ([server:default], [client:default], [server:IP:PORT],
// [client:IP:PORT], [server:any] with server_name), and the tls.reload,
// tls.list, tls.info and tls.options RPC commands (docs/transports.md).
//
// The network side is sipnet's: a tls listener is a TCP listener whose
// connections are wrapped by crypto/tls, under the same connection cap and
// timeouts; this module hands sipnet a sipnet.TLSConfig whose server
// config and client profiles are read at each handshake from the current
// profiles, so tls.reload swaps certificates without closing a listener.
//
// Concurrency: the module is configured by one goroutine; afterwards the
// profiles are an atomic pointer, replaced whole by a reload (reloads are
// serialised by a mutex).
package tls

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/sipnet"
)

// Module is one configuration's tls module.
type Module struct {
	params   map[string]value // modparams, the default profiles' values
	firstPos config.Pos       // the first tls modparam (errors without a better place)
	cfgFile  value            // modparam config, as written
	dir      string           // the main configuration file's directory
	loaded   bool             // profiles read (Finish or Provision)

	cur    atomic.Pointer[profiles]
	reload sync.Mutex
	log    *slog.Logger
	srv    atomic.Pointer[sipnet.Server] // for tls.list and tls.info (Attach)
}

var (
	_ ksr.Finisher    = (*Module)(nil)
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
)

// New returns an unconfigured tls module.
func New() *Module { return &Module{params: map[string]value{}} }

// Info describes the module. Its modparams are Kamailio 5.6.3's tls_mod.c
// params[]; the ones kemi does not honour are accepted and ignored.
func (m *Module) Info() ksr.ModuleInfo {
	p := func(name string) ksr.Param { return ksr.Param{Name: name, Set: m.setParam} }
	return ksr.ModuleInfo{
		Name: "tls",
		Doc:  "TLS for tls and wss listeners and tls relays: certificates, verification, tls.cfg profiles",
		Params: []ksr.Param{p("tls_method"), p("certificate"), p("private_key"), p("ca_list"),
			p("verify_certificate"), p("require_certificate"), p("server_name"), p("cipher_list"),
			{Name: "config", Set: m.setConfig}},
		Ignored: []string{"verify_depth", "verify_client", "ca_path", "crl", "connection_timeout",
			"engine", "engine_config", "engine_algorithms", "tls_log", "tls_debug", "session_cache",
			"session_id", "tls_disable_compression", "ssl_release_buffers", "ssl_freelist_max_len",
			"ssl_max_send_fragment", "ssl_read_ahead", "send_close_notify", "con_ct_wq_max", "ct_wq_max",
			"ct_wq_blk_size", "tls_force_run", "low_mem_threshold1", "low_mem_threshold2", "renegotiation",
			"xavp_cfg", "event_callback", "rand_engine"},
	}
}

func (m *Module) note(st config.Stmt) {
	if m.firstPos.Line == 0 {
		m.firstPos = st.Pos
	}
}

func (m *Module) setParam(_ *ksr.Setup, st config.Stmt) error {
	m.note(st)
	k := st.Param
	if k == "tls_method" {
		k = "method"
	}
	m.params[k] = value{st.Value.String(), st.Pos}
	return nil
}

func (m *Module) setConfig(_ *ksr.Setup, st config.Stmt) error {
	m.note(st)
	m.cfgFile = value{st.Value.String(), st.Pos}
	return nil
}

// Finish reads tls.cfg and loads every certificate, key and CA list, so
// that `kemi check` reports a missing or unreadable file with its
// file:line. A module loaded without any parameter is read in Provision
// (the engine finishes every module, loaded or not).
func (m *Module) Finish(c *ksr.Setup) error {
	m.dir = filepath.Dir(c.File)
	if len(m.params) == 0 && m.cfgFile.s == "" {
		return nil
	}
	ps, err := m.load(func(pos config.Pos, msg string) { c.Notice(pos, "%s", msg) })
	if err != nil {
		return err
	}
	m.cur.Store(ps)
	m.loaded = true
	return nil
}

// Provision reads the profiles if Finish did not (no modparam: the server
// default profile then has no certificate, which is an error).
func (m *Module) Provision(h ksr.Host) error {
	m.log = h.Logger().With("module", "tls")
	if m.loaded {
		return nil
	}
	ps, err := m.load(func(pos config.Pos, msg string) { m.log.Warn(pos.String() + ": " + msg) })
	if err != nil {
		return err
	}
	m.cur.Store(ps)
	m.loaded = true
	return nil
}

// profiles is one reading of the configuration.
type profiles struct {
	srvDefault, cliDefault *profile
	srv, cli               map[netip.AddrPort]*profile
	srvByName              []*profile // [server:any] (and others) with a server_name: chosen by SNI
	all                    []*profile
	file                   string // tls.cfg read ("" for none)
	at                     time.Time
}

// load reads tls.cfg (when configured) and builds every profile.
func (m *Module) load(report func(config.Pos, string)) (*profiles, error) {
	seen := map[string]bool{} // a modparam is read by both default profiles: one notice
	notice := func(pos config.Pos, msg string) {
		if k := pos.String() + msg; !seen[k] {
			seen[k] = true
			report(pos, msg)
		}
	}
	var specs []*spec
	ps := &profiles{srv: map[netip.AddrPort]*profile{}, cli: map[netip.AddrPort]*profile{}, at: time.Now()}
	if m.cfgFile.s != "" {
		ps.file = resolvePath(m.dir, m.cfgFile.s)
		var err error
		if specs, err = parseConfigFile(ps.file, notice); err != nil {
			var ce *config.Error
			if errors.As(err, &ce) {
				return nil, err
			}
			return nil, config.Errorf(m.cfgFile.pos, "modparam tls config: %v", err)
		}
	}
	pos := m.firstPos
	if pos.Line == 0 {
		pos = config.Pos{File: filepath.Join(m.dir, "kamailio.cfg")}
	}
	// The default profiles: a tls.cfg section, else the modparams alone; a
	// key left out of the section takes the modparam's value.
	defaults := map[role]*spec{}
	for _, r := range []role{roleServer, roleClient} {
		sp := &spec{role: r, domain: "default", pos: pos, keys: map[string]value{}}
		for _, s := range specs {
			if s.role == r && s.domain == "default" {
				sp = s
			}
		}
		merged := map[string]value{}
		for k, v := range m.params {
			merged[k] = v
		}
		for k, v := range sp.keys {
			merged[k] = v
		}
		sp.keys = merged
		defaults[r] = sp
	}
	var err error
	if ps.srvDefault, err = build(defaults[roleServer], nil, m.dir, notice); err != nil {
		return nil, err
	}
	if ps.cliDefault, err = build(defaults[roleClient], nil, m.dir, notice); err != nil {
		return nil, err
	}
	ps.all = append(ps.all, ps.srvDefault, ps.cliDefault)
	for _, s := range specs {
		if s.domain == "default" {
			continue
		}
		p, err := build(s, defaults[s.role].keys, m.dir, notice)
		if err != nil {
			return nil, err
		}
		ps.all = append(ps.all, p)
		switch {
		case s.role == roleClient && s.addr.IsValid():
			ps.cli[s.addr] = p
		case s.role == roleClient:
			notice(s.pos, "tls.cfg: [client:any] is used only for its server_name; kemi picks client profiles by address")
		case s.addr.IsValid():
			ps.srv[s.addr] = p
		}
		if s.role == roleServer && p.serverName != "" && !s.addr.IsValid() {
			ps.srvByName = append(ps.srvByName, p)
		}
	}
	return ps, nil
}

// Config is what sipnet's tls and wss listeners and tls relays use: read
// at each handshake, so a reload applies to new connections.
func (m *Module) Config() *sipnet.TLSConfig {
	return &sipnet.TLSConfig{
		Server: &tls.Config{
			MinVersion:         tls.VersionTLS12,
			GetConfigForClient: m.serverConfig,
		},
		Client: m.clientConfig,
	}
}

// serverConfig picks the server profile for a handshake: the one of the
// listening address, else one whose server_name is the client's SNI, else
// [server:default].
func (m *Module) serverConfig(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	ps := m.cur.Load()
	if ps == nil {
		return nil, errors.New("tls: no profiles loaded")
	}
	if hello.Conn != nil {
		if a, ok := hello.Conn.LocalAddr().(*net.TCPAddr); ok {
			ap := a.AddrPort()
			if p := ps.srv[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())]; p != nil {
				return p.cfg, nil
			}
		}
	}
	if hello.ServerName != "" {
		for _, p := range ps.srvByName {
			if p.serverName == hello.ServerName {
				return p.cfg, nil
			}
		}
	}
	return ps.srvDefault.cfg, nil
}

// clientConfig is the client profile for a connection to dst.
func (m *Module) clientConfig(dst netip.AddrPort) *tls.Config {
	ps := m.cur.Load()
	if ps == nil {
		return nil
	}
	if p := ps.cli[dst]; p != nil {
		return p.cfg
	}
	return ps.cliDefault.cfg
}

// Attach gives the module the network layer whose connections tls.list
// and tls.info report (the engine calls it once the server exists).
func (m *Module) Attach(s *sipnet.Server) { m.srv.Store(s) }

// Reload reads tls.cfg and every certificate again; on any error the
// current profiles stay. Connections open keep their session; new ones
// use the new profiles.
func (m *Module) Reload() error {
	m.reload.Lock()
	defer m.reload.Unlock()
	log := m.log
	if log == nil {
		log = slog.Default()
	}
	ps, err := m.load(func(pos config.Pos, msg string) { log.Warn(pos.String() + ": " + msg) })
	if err != nil {
		log.Error("tls.reload failed, previous certificates kept", "error", err)
		return fmt.Errorf("tls reload: %w", err)
	}
	m.cur.Store(ps)
	log.Info("tls configuration reloaded", "profiles", len(ps.all))
	return nil
}
