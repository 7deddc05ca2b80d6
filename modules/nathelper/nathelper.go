// Package nathelper is Kamailio's nathelper module in kemi: the NAT
// detection tests (nat_uac_test and its flag bits), the rewrites of the
// Contact (fix_nated_contact, set_contact_alias, add_contact_alias,
// add_rcv_param), of the R-URI (handle_ruri_alias) and of the SDP
// (fix_nated_sdp), the received AVP for registrar (fix_nated_register),
// $rr_count / $rr_top_count, and the NAT keepalives: every
// natping_interval seconds, each registered contact (the NATed ones with
// ping_nated_only) gets a SIP OPTIONS (sipping_bflag, sipping_from,
// sipping_method) or a 4-byte UDP ping, sent from the socket it
// registered on to its received address. Names, parameters and return
// codes are those of nathelper.c at 5.6.3 (docs/nat.md).
//
// Files: settings, runtime and RPC (this file), the exports on the
// message (funcs.go), the SDP (sdp.go), the keepalives (ping.go).
//
// Concurrency: a Module is configured and provisioned by one goroutine;
// afterwards its exports run on any worker (they act on the calling VM's
// message only) and the keepalive goroutine reads usrloc through its
// locked API.
package nathelper

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"kemi/config"
	"kemi/jsonrpc"
	"kemi/ksr"
	"kemi/modules/usrloc"
)

// Settings are the module's parameters.
type Settings struct {
	NatpingInterval     int    // seconds; 0: no keepalives
	PingNatedOnly       bool   // ping only contacts with usrloc's nat_bflag
	NortpproxyStr       string // the line fix_nated_sdp's flag 4 adds
	ReceivedAVP         string // $avp(name) fix_nated_register sets
	ForceSocket         string // the socket keepalives leave from
	SippingFrom         string
	SippingMethod       string
	SippingBflag        int // -1: none (udp pings only)
	NatpingDisableBflag int // -1: none
	NatpingProcesses    int
	AppendSDPOldMediaIP bool // a=oldmediaip lines with fix_nated_sdp
	NatAddrMode         int  // 1: 192.0.0.0/24 is private too
	AliasName           string
}

// Module is one configuration's nathelper.
type Module struct {
	set  Settings
	ul   *usrloc.Module
	host ksr.Host

	local ksr.Local // per VM: the message whose Contact was rewritten

	// alias and salias are Kamailio's _ksr_contact_alias ("alias=") and
	// _ksr_contact_salias (";alias="), from alias_name.
	alias, salias string

	// The keepalives' state (ping.go).
	enabled   atomic.Bool // nathelper.enable_ping
	pinger    *pinger
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	pingsSent atomic.Int64
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
	_ ksr.Idler       = (*Module)(nil)
	_ ksr.Reporter    = (*Module)(nil)
	_ ksr.ReplyFilter = (*Module)(nil)
)

// New returns a nathelper over ul (its keepalives read ul's contacts, as
// Kamailio's nathelper binds usrloc) with Kamailio's defaults.
func New(ul *usrloc.Module) *Module {
	return &Module{ul: ul, set: Settings{
		NortpproxyStr: "a=nortpproxy:yes", SippingMethod: "OPTIONS", SippingBflag: -1, NatpingDisableBflag: -1,
		NatpingProcesses: 1, AppendSDPOldMediaIP: true, NatAddrMode: 1, AliasName: "alias",
	}}
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

func intParam(dst *int, lo, hi int) func(*ksr.Setup, config.Stmt) error {
	return ksr.IntSetting("nathelper", dst, lo, hi)
}

func boolParam(dst *bool) func(*ksr.Setup, config.Stmt) error {
	return ksr.SwitchSetting("nathelper", dst)
}

func strParam(dst *string) func(*ksr.Setup, config.Stmt) error {
	return func(_ *ksr.Setup, st config.Stmt) error { *dst = st.Value.String(); return nil }
}

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "nathelper",
		Doc:  "NAT detection, Contact/R-URI/SDP rewrites for NATed user agents, and NAT keepalives to registered contacts",
		Params: []ksr.Param{
			{Name: "natping_interval", Set: intParam(&m.set.NatpingInterval, 0, 1<<30)},
			{Name: "ping_nated_only", Set: boolParam(&m.set.PingNatedOnly)},
			{Name: "nortpproxy_str", Set: strParam(&m.set.NortpproxyStr)},
			{Name: "received_avp", Set: func(_ *ksr.Setup, st config.Stmt) error {
				v := st.Value.String()
				if v != "" && (!strings.HasPrefix(v, "$avp(") || !strings.HasSuffix(v, ")")) {
					return config.Errorf(st.Pos, "nathelper received_avp: malformed or non AVP %q definition", v)
				}
				m.set.ReceivedAVP = v
				return nil
			}},
			{Name: "force_socket", Set: strParam(&m.set.ForceSocket)},
			{Name: "sipping_from", Set: strParam(&m.set.SippingFrom)},
			{Name: "sipping_method", Set: strParam(&m.set.SippingMethod)},
			{Name: "sipping_bflag", Set: intParam(&m.set.SippingBflag, -1, 31)},
			{Name: "natping_disable_bflag", Set: intParam(&m.set.NatpingDisableBflag, -1, 31)},
			{Name: "natping_processes", Set: intParam(&m.set.NatpingProcesses, 0, 1<<10)},
			{Name: "append_sdp_oldmediaip", Set: boolParam(&m.set.AppendSDPOldMediaIP)},
			{Name: "nat_addr_mode", Set: intParam(&m.set.NatAddrMode, -1<<31, 1<<31-1)},
			{Name: "alias_name", Set: strParam(&m.set.AliasName)},
		},
		// Kamailio 5.6.3's other nathelper parameters: the raw-socket UDP
		// pings (natping_socket, udpping_from_path), usrloc's keepalive
		// tracking of replies (keepalive_timeout) and server_id filtering
		// change nothing in kemi.
		Ignored: []string{"natping_socket", "keepalive_timeout", "udpping_from_path", "filter_server_id"},
		Exports: []ksr.Submodule{{Name: "nathelper", Funcs: m.exports()}},
		PVs: []ksr.PV{
			{Name: "rr_count", Get: rrCount},
			{Name: "rr_top_count", Get: rrTopCount},
		},
	}
}

// Provision checks the keepalive settings against usrloc, as mod_init.
func (m *Module) Provision(h ksr.Host) error {
	m.host = h
	m.local = h.Deps().NewLocal()
	m.alias, m.salias = m.set.AliasName+"=", ";"+m.set.AliasName+"="
	if m.set.NatpingInterval <= 0 {
		return nil
	}
	if !m.ul.Provisioned() {
		return fmt.Errorf("nathelper: natping_interval needs usrloc: can't find usrloc module (loadmodule \"usrloc.so\")")
	}
	if m.set.PingNatedOnly && m.ul.Settings().NatBflag < 0 {
		return fmt.Errorf("nathelper: bad config - ping_nated_only enabled, but no nat bflag set in usrloc module (modparam(\"usrloc\", \"nat_bflag\", N))")
	}
	if m.set.SippingBflag >= 0 {
		if m.set.SippingFrom == "" {
			return fmt.Errorf("nathelper: SIP ping enabled (sipping_bflag), but SIP ping FROM is empty (modparam(\"nathelper\", \"sipping_from\", ...))")
		}
		if m.set.SippingMethod == "" {
			return fmt.Errorf("nathelper: SIP ping enabled, but SIP ping method is empty")
		}
	}
	m.enabled.Store(true)
	m.pinger = newPinger(m)
	return nil
}

// Start starts the keepalive timer when natping_interval is set.
func (m *Module) Start(ctx context.Context) error {
	if m.pinger == nil {
		return nil
	}
	ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.wg.Add(1)
	go m.pinger.run(ctx)
	return nil
}

// Stop ends the keepalive timer.
func (m *Module) Stop(ctx context.Context) error {
	if m.cancel != nil {
		m.cancel()
		m.wg.Wait()
	}
	return nil
}

// Counters adds the number of keepalives sent (kemi.status).
func (m *Module) Counters(c map[string]int64) {
	if m.pinger != nil {
		c["nathelper.pings_sent"] = m.pingsSent.Load()
	}
}

// RPC is nathelper.enable_ping.
func (m *Module) RPC() []jsonrpc.Method {
	return []jsonrpc.Method{{Name: "nathelper.enable_ping", Doc: "Set (enable/disable) nat ping", Handler: m.rpcEnablePing}}
}

func (m *Module) rpcEnablePing(_ context.Context, p jsonrpc.Params) (any, error) {
	if m.pinger == nil {
		return nil, &jsonrpc.Fault{Code: 500, Message: "NATping disabled"}
	}
	v, ok := p.Int(0)
	if !ok {
		return nil, &jsonrpc.Fault{Code: 500, Message: "No parameter"}
	}
	m.enabled.Store(v != 0)
	return nil, nil
}
