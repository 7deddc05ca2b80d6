// Package jsonrpcs is Kamailio's jsonrpcs module in kemi: the settings of
// the JSON-RPC control plane's transports. HTTP (kemi's own, always on,
// loopback-only unless -rpc says otherwise) listens on http_listen (a
// kemi parameter; the core's rpc_listen too); the FIFO that kamctl writes
// to (fifo_name, fifo_reply_dir, fifo_mode) and the datagram socket
// (dgram_socket: a unix path or udp:IP:port) are served when the module
// is loaded, as transport (Kamailio's bits: 2 FIFO, 4 datagram, 0 all)
// selects. The transports themselves are in the jsonrpc leaf package.
//
// Relative FIFO and socket names are under RunDir (/run/kamailio, Kamailio's
// runtime_dir). A default path that cannot be made (its directory missing
// on a developer's machine) is a warning; a configured one stops the start.
//
// Concurrency: a Module is configured by one goroutine; RPCTransports is
// called once by the engine, whose subsystem list starts and stops them.
package jsonrpcs

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"kemi/config"
	"kemi/jsonrpc"
	"kemi/ksr"
)

// Kamailio's defaults.
const (
	RunDir             = "/run/kamailio"
	DefaultFIFO        = "kamailio_rpc.fifo"
	DefaultReplyDir    = "/tmp/"
	DefaultFIFOMode    = 0o660
	DefaultDgramSocket = "kamailio_rpc.sock"
	DefaultTransport   = 6 // FIFO and datagram
)

// Settings are the jsonrpcs module's parameters.
type Settings struct {
	// HTTPListen is the HTTP listen address (http_listen), "" when unset;
	// HTTPListenAt is where it was set.
	HTTPListen   string
	HTTPListenAt config.Pos
	// Transport selects the FIFO (2) and the datagram socket (4); 0 is all.
	Transport int
	FIFOName  string
	ReplyDir  string
	FIFOMode  os.FileMode
	Dgram     string
	DgramMode os.FileMode
	// explicit marks the transports the configuration named: their
	// failure to start is fatal.
	explicitFIFO, explicitDgram bool
}

// Module is one configuration's jsonrpcs.
type Module struct {
	set Settings
	log *slog.Logger
}

var _ ksr.Provisioner = (*Module)(nil)

// New returns a jsonrpcs module with Kamailio's defaults.
func New() *Module {
	return &Module{set: Settings{Transport: DefaultTransport, FIFOName: DefaultFIFO, ReplyDir: DefaultReplyDir,
		FIFOMode: DefaultFIFOMode, Dgram: DefaultDgramSocket, DgramMode: DefaultFIFOMode}}
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	str := func(f func(string)) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error { f(st.Value.String()); return nil }
	}
	return ksr.ModuleInfo{
		Name: "jsonrpcs",
		Doc:  "JSON-RPC control plane: HTTP (http_listen), the FIFO kamctl uses, the datagram socket",
		Params: []ksr.Param{
			{Name: "http_listen", Set: func(_ *ksr.Setup, st config.Stmt) error {
				m.set.HTTPListen, m.set.HTTPListenAt = st.Value.String(), st.Pos
				return nil
			}},
			{Name: "transport", Set: func(_ *ksr.Setup, st config.Stmt) (err error) {
				m.set.Transport, err = config.IntParam(st, "jsonrpcs", 0, 7)
				m.set.explicitFIFO = m.set.Transport&2 != 0
				m.set.explicitDgram = m.set.Transport&4 != 0
				return err
			}},
			{Name: "fifo_name", Set: str(func(v string) { m.set.FIFOName, m.set.explicitFIFO = v, v != "" })},
			{Name: "fifo_reply_dir", Set: str(func(v string) { m.set.ReplyDir = v })},
			{Name: "fifo_mode", Set: m.mode(&m.set.FIFOMode)},
			{Name: "dgram_socket", Set: func(_ *ksr.Setup, st config.Stmt) error {
				v := st.Value.String()
				if v != "" {
					if _, _, err := jsonrpc.ParseDgramSocket(v, RunDir); err != nil {
						return config.Errorf(st.Pos, "modparam jsonrpcs dgram_socket: %v", err)
					}
				}
				m.set.Dgram, m.set.explicitDgram = v, v != ""
				return nil
			}},
			{Name: "dgram_mode", Set: m.mode(&m.set.DgramMode)},
		},
		Ignored: []string{"pretty_format", "fifo_group", "fifo_user", "dgram_workers", "dgram_timeout",
			"dgram_group", "dgram_user"},
		RuntimeFree: true, // no KSR functions
	}
}

func (m *Module) mode(dst *os.FileMode) func(*ksr.Setup, config.Stmt) error {
	return func(_ *ksr.Setup, st config.Stmt) error {
		n, err := config.IntParam(st, "jsonrpcs", 0, 0o777)
		*dst = os.FileMode(n)
		return err
	}
}

// Provision keeps the logger.
func (m *Module) Provision(h ksr.Host) error {
	m.log = h.Logger().With("module", "jsonrpcs")
	return nil
}

// RPCTransports returns the FIFO and datagram transports of s that the
// settings select.
func (m *Module) RPCTransports(s *jsonrpc.Server) []jsonrpc.Transport {
	log := m.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var ts []jsonrpc.Transport
	all := m.set.Transport == 0
	if (all || m.set.Transport&2 != 0) && m.set.FIFOName != "" {
		p := m.set.FIFOName
		if !filepath.IsAbs(p) {
			p = filepath.Join(RunDir, p)
		}
		ts = append(ts, soft(jsonrpc.NewFIFO(s, p, m.set.ReplyDir, m.set.FIFOMode, log), !m.set.explicitFIFO, log))
	}
	if (all || m.set.Transport&4 != 0) && m.set.Dgram != "" {
		network, addr, err := jsonrpc.ParseDgramSocket(m.set.Dgram, RunDir)
		if err == nil {
			ts = append(ts, soft(jsonrpc.NewDatagram(s, network, addr, m.set.DgramMode, log), !m.set.explicitDgram, log))
		}
	}
	return ts
}

func soft(t jsonrpc.Transport, optional bool, log *slog.Logger) jsonrpc.Transport {
	if !optional {
		return t
	}
	return optionalTransport{t, log}
}

// optionalTransport is a default path: failing to start is a warning.
type optionalTransport struct {
	jsonrpc.Transport
	log *slog.Logger
}

func (o optionalTransport) Start(ctx context.Context) error {
	if err := o.Transport.Start(ctx); err != nil {
		o.log.Warn("jsonrpcs: default transport not available (set its modparam)", "transport", o.Name(), "error", err)
	}
	return nil
}
