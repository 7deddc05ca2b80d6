// Package ctl is Kamailio's ctl module in kemi: the binrpc control sockets
// that kamcmd talks to (modparam("ctl", "binrpc", "unix:/run/kamailio/kamailio_ctl"),
// "tcp:127.0.0.1:2049", "udp:...", "unixd:/path"). Every socket serves the
// same methods as the JSON-RPC control plane (the engine's jsonrpc.Server);
// the codec and the socket servers are in the binrpc leaf package.
//
// Loaded without a binrpc parameter, ctl listens where Kamailio's does,
// unixs:/run/kamailio/kamailio_ctl (kamcmd's default); a failure to listen
// there is a warning (the directory may not exist on a developer's
// machine), while a configured address that cannot be listened on stops
// the start.
//
// Concurrency: a Module is configured by one goroutine; RPCTransports is
// called once by the engine, whose subsystem list starts and stops the
// servers.
package ctl

import (
	"context"
	"log/slog"
	"os"

	"kemi/binrpc"
	"kemi/config"
	"kemi/jsonrpc"
	"kemi/ksr"
)

// DefaultSocket is where ctl listens when no binrpc parameter is set.
const DefaultSocket = "unixs:/run/kamailio/kamailio_ctl"

// Settings are the ctl module's parameters.
type Settings struct {
	// Binrpc are the configured socket addresses, in order.
	Binrpc []binrpc.Addr
	// Mode is the permission of unix socket files (default 0600).
	Mode os.FileMode
}

// Module is one configuration's ctl.
type Module struct {
	set Settings
	log *slog.Logger
}

var _ ksr.Provisioner = (*Module)(nil)

// New returns an unconfigured ctl module.
func New() *Module { return &Module{set: Settings{Mode: 0o600}} }

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "ctl",
		Doc:  "binrpc control sockets (kamcmd): every RPC method of the control plane",
		Params: []ksr.Param{
			{Name: "binrpc", Set: m.paramBinrpc},
			{Name: "mode", Set: m.paramMode},
		},
		Ignored: []string{"fifo", "user", "group", "autoconversion", "binrpc_max_body_size",
			"binrpc_struct_max_body_size", "binrpc_buffer_size"},
		RuntimeFree: true, // no KSR functions
	}
}

func (m *Module) paramBinrpc(_ *ksr.Setup, st config.Stmt) error {
	a, err := binrpc.ParseAddr(st.Value.String())
	if err != nil {
		return config.Errorf(st.Pos, "modparam ctl binrpc: %v", err)
	}
	m.set.Binrpc = append(m.set.Binrpc, a)
	return nil
}

func (m *Module) paramMode(_ *ksr.Setup, st config.Stmt) error {
	n, err := config.IntParam(st, "ctl", 0, 0o777)
	m.set.Mode = os.FileMode(n)
	return err
}

// Provision keeps the logger.
func (m *Module) Provision(h ksr.Host) error {
	m.log = h.Logger().With("module", "ctl")
	return nil
}

// RPCTransports returns a binrpc server per socket, answering from d.
func (m *Module) RPCTransports(d *jsonrpc.Server) []jsonrpc.Transport {
	log := m.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if len(m.set.Binrpc) == 0 {
		a, _ := binrpc.ParseAddr(DefaultSocket)
		return []jsonrpc.Transport{optional{binrpc.NewServer(a, d, m.set.Mode, log), log}}
	}
	var ts []jsonrpc.Transport
	for _, a := range m.set.Binrpc {
		ts = append(ts, binrpc.NewServer(a, d, m.set.Mode, log))
	}
	return ts
}

// optional is the default socket: failing to listen is a warning.
type optional struct {
	*binrpc.Server
	log *slog.Logger
}

func (o optional) Start(ctx context.Context) error {
	if err := o.Server.Start(ctx); err != nil {
		o.log.Warn("ctl: default binrpc socket not available (set modparam ctl binrpc)", "error", err)
	}
	return nil
}
