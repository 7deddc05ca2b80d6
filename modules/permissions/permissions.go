// Package permissions is Kamailio's permissions module in kemi, its
// address and trusted tables: the address table (Kamailio's layout, through
// package kdb, or address_file) is loaded at start into memory (an
// address hash table, a subnet table ordered by group and a domain name
// table, as Kamailio 5.6's) and reloaded by RPC; KSR.permissions
// allow_source_address, allow_address, allow_source_address_group and
// allow_address_group match it with Kamailio's rules (port 0 matches any
// port, mask 0 is a host, the first match of a bucket wins), setting
// peer_tag_avp to the row's tag. KSR.permissions.allow_trusted matches
// the trusted table (cached with db_mode 1, queried with 0; POSIX basic
// regular expressions on the From URI and R-URI). RPC:
// permissions.addressReload, addressDump, subnetDump, domainDump,
// trustedReload, trustedDump. The allow/deny files are not implemented
// (docs/permissions.md).
//
// Files: settings, exports, RPC (this file), the address tables
// (address.go), the trusted table (trusted.go).
//
// Concurrency: a Module is configured by one goroutine; afterwards the
// loaded tables are an immutable value behind an atomic pointer, replaced
// whole by a reload, so matching takes no lock.
package permissions

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/jsonrpc"
	"kemi/kdb"
	"kemi/ksr"
	"kemi/timers"
)

// addressVersion is the address table's version (address.c TABLE_VERSION).
const addressVersion = 6

// Settings are the module's parameters.
type Settings struct {
	DBURL        string
	DBMode       int // 0 or 1: checked, used by the trusted table only in Kamailio
	AddressTable string
	Cols         kdb.AddressColumns
	PeerTagAVP   string // "$avp(name)", "" none
	AddressFile  string
	MaxSubnets   int
	ReloadDelta  int // seconds between two RPC reloads
	// The trusted table (allow_trusted): its name and columns (the tag
	// column is Cols.Tag), and peer_tag_mode (1: every match's tag).
	TrustedTable, SourceCol, ProtoCol, FromCol, RuriCol, PriorityCol string
	PeerTagMode                                                      int
}

// Module is one configuration's permissions module.
type Module struct {
	set Settings
	t   atomic.Pointer[tables] // nil: allow_address disabled (no db_url nor file)
	// trusted is the cached trusted table (db_mode 1); tdb the database
	// allow_trusted queries with db_mode 0.
	trusted atomic.Pointer[trusted]
	tdb     atomic.Pointer[kdb.DB]
	re      regexCache
	lg      *slog.Logger
	clock   timers.Clock

	reloadMu   sync.Mutex
	lastReload int64 // Unix seconds of the last RPC reload (perm_rpc_reload_time)
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
)

// New returns a permissions module with Kamailio's defaults.
func New() *Module {
	return &Module{set: Settings{
		AddressTable: "address",
		Cols:         kdb.AddressColumns{Grp: "grp", IPAddr: "ip_addr", Mask: "mask", Port: "port", Tag: "tag"},
		MaxSubnets:   512,
		ReloadDelta:  5,
		TrustedTable: "trusted", SourceCol: "src_ip", ProtoCol: "proto", FromCol: "from_pattern",
		RuriCol: "ruri_pattern", PriorityCol: "priority",
	}}
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

func (m *Module) log() *slog.Logger {
	if m.lg == nil {
		return slog.Default()
	}
	return m.lg
}

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	str := func(dst *string) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error { *dst = st.Value.String(); return nil }
	}
	num := func(dst *int) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error {
			n, err := strconv.Atoi(st.Value.String())
			if err != nil {
				return config.Errorf(st.Pos, "permissions %s: %q is not an integer", st.Name, st.Value.String())
			}
			*dst = n
			return nil
		}
	}
	return ksr.ModuleInfo{
		Name: "permissions",
		Doc:  "source address checks against the address table",
		Params: []ksr.Param{
			{Name: "db_url", Set: func(c *ksr.Setup, st config.Stmt) error {
				m.set.DBURL = kdb.Resolve(st.Value.String(), c.File)
				return nil
			}},
			{Name: "db_mode", Set: func(c *ksr.Setup, st config.Stmt) error {
				if err := num(&m.set.DBMode)(c, st); err != nil {
					return err
				}
				if m.set.DBMode != 0 && m.set.DBMode != 1 {
					return config.Errorf(st.Pos, "permissions db_mode: invalid db_mode value: %d", m.set.DBMode)
				}
				return nil
			}},
			{Name: "address_table", Set: str(&m.set.AddressTable)},
			{Name: "grp_col", Set: str(&m.set.Cols.Grp)},
			{Name: "ip_addr_col", Set: str(&m.set.Cols.IPAddr)},
			{Name: "mask_col", Set: str(&m.set.Cols.Mask)},
			{Name: "port_col", Set: str(&m.set.Cols.Port)},
			{Name: "tag_col", Set: str(&m.set.Cols.Tag)},
			{Name: "peer_tag_avp", Set: func(_ *ksr.Setup, st config.Stmt) error {
				v := st.Value.String()
				if v != "" && (!strings.HasPrefix(v, "$avp(") || !strings.HasSuffix(v, ")")) {
					return config.Errorf(st.Pos, "permissions peer_tag_avp: malformed or non AVP %s peer_tag_avp definition", v)
				}
				// $avp(s:name) is $avp(name) (a string name).
				m.set.PeerTagAVP = strings.Replace(v, "$avp(s:", "$avp(", 1)
				return nil
			}},
			{Name: "address_file", Set: func(c *ksr.Setup, st config.Stmt) error {
				v := st.Value.String()
				if v != "" && !filepath.IsAbs(v) && c.File != "" {
					v = filepath.Join(filepath.Dir(c.File), v) // get_pathname: beside the cfg
				}
				m.set.AddressFile = v
				return nil
			}},
			{Name: "max_subnets", Set: num(&m.set.MaxSubnets)},
			{Name: "trusted_table", Set: str(&m.set.TrustedTable)},
			{Name: "source_col", Set: str(&m.set.SourceCol)},
			{Name: "proto_col", Set: str(&m.set.ProtoCol)},
			{Name: "from_col", Set: str(&m.set.FromCol)},
			{Name: "ruri_col", Set: str(&m.set.RuriCol)},
			{Name: "priority_col", Set: str(&m.set.PriorityCol)},
			{Name: "peer_tag_mode", Set: num(&m.set.PeerTagMode)},
			{Name: "reload_delta", Set: func(c *ksr.Setup, st config.Stmt) error {
				if err := num(&m.set.ReloadDelta)(c, st); err != nil {
					return err
				}
				if m.set.ReloadDelta < 0 {
					m.set.ReloadDelta = 5
				}
				return nil
			}},
		},
		// Kamailio 5.6.3's other permissions parameters: the allow/deny
		// files (allow_routing, allow_register, allow_uri), which kemi
		// does not implement, the backends selection and the cleanup of
		// old trusted tables.
		Ignored: []string{"default_allow_file", "default_deny_file", "check_all_branches", "allow_suffix", "deny_suffix",
			"load_backends", "trusted_cleanup_interval"},
		Exports: []ksr.Submodule{{Name: "permissions", Funcs: []ksr.Export{
			{Name: "allow_source_address", Func: m.allowSourceAddress, Ret: ksr.Int, Args: []string{"igroup"},
				Doc: "1 when the source address and port match an address or subnet of group in the address table, else -1."},
			{Name: "allow_address", Func: m.allowAddress, Ret: ksr.Int, Args: []string{"igroup", "saddr", "iport"},
				Doc: "1 when addr (an IP address or a domain name) and port match an entry of group, else -1."},
			{Name: "allow_source_address_group", Func: m.allowSourceAddressGroup, Ret: ksr.Int,
				Doc: "The group of the first address or subnet entry matching the source address and port, or -1."},
			{Name: "allow_address_group", Func: m.allowAddressGroup, Ret: ksr.Int, Args: []string{"saddr", "iport"},
				Doc: "The group of the first entry matching addr and port, or -1."},
			{Name: "allow_trusted", Func: m.allowTrusted, Ret: ksr.Int,
				Doc: "1 when a trusted table row matches the source address, protocol, From URI and R-URI (with peer_tag_mode 1: the number of matches), else -1."},
		}}},
	}
}

// Provision keeps the logger and the clock.
func (m *Module) Provision(h ksr.Host) error {
	m.lg, m.clock = h.Logger(), h.Clock()
	if m.set.MaxSubnets <= 0 {
		m.set.MaxSubnets = 512
	}
	return nil
}

// Start loads the address table (init_addresses): without db_url nor
// address_file the address functions are disabled (they return -1); a
// missing table, a wrong version or an invalid row fails the start.
func (m *Module) Start(ctx context.Context) error {
	if err := m.startTrusted(); err != nil {
		return err
	}
	if m.set.AddressFile == "" {
		if m.set.DBURL == "" {
			m.log().Info("db_url parameter of permissions module not set, disabling allow_address")
			return nil
		}
		db, err := kdb.Open(m.set.DBURL)
		if err != nil {
			return fmt.Errorf("permissions: %w", err)
		}
		err = db.CheckVersion(m.set.AddressTable, addressVersion)
		db.Close()
		if err != nil {
			return fmt.Errorf("permissions: %w", err)
		}
	}
	t, err := m.load()
	if err != nil {
		return fmt.Errorf("permissions: reload of address table failed: %w", err)
	}
	m.t.Store(t)
	return nil
}

// startTrusted loads the trusted table (db_mode 1: a missing table, a
// version other than 6 or an invalid row fails the start) or opens the
// database allow_trusted queries (db_mode 0), when db_url is set.
func (m *Module) startTrusted() error {
	if m.set.DBURL == "" {
		return nil
	}
	if m.set.DBMode == 0 {
		db, err := kdb.Open(m.set.DBURL)
		if err != nil {
			return fmt.Errorf("permissions: %w", err)
		}
		m.tdb.Store(db)
		return nil
	}
	db, err := kdb.Open(m.set.DBURL)
	if err != nil {
		return fmt.Errorf("permissions: %w", err)
	}
	err = db.CheckVersion(m.set.TrustedTable, 6)
	db.Close()
	if err != nil {
		return fmt.Errorf("permissions: %w", err)
	}
	t, err := m.loadTrusted()
	if err != nil {
		return fmt.Errorf("permissions: reload of trusted table failed: %w", err)
	}
	m.trusted.Store(t)
	return nil
}

// Stop closes allow_trusted's database (db_mode 0); the tables are read
// with a connection of their own per load.
func (m *Module) Stop(ctx context.Context) error {
	if db := m.tdb.Swap(nil); db != nil {
		return db.Close()
	}
	return nil
}

// Reload reloads the address table; on failure the loaded one stays.
func (m *Module) Reload() error {
	if m.t.Load() == nil && m.set.AddressFile == "" && m.set.DBURL == "" {
		return fmt.Errorf("permissions: db_url not set")
	}
	t, err := m.load()
	if err != nil {
		m.log().Error("permissions: address table reload failed", "error", err)
		return err
	}
	m.t.Store(t)
	return nil
}

// source is the request's source address and port ($si, $sp).
func source(e *ksr.Env) (netip.Addr, uint32, bool) {
	if e.Msg == nil {
		return netip.Addr{}, 0, false
	}
	var ap netip.AddrPort
	switch {
	case e.Msg.Req != nil:
		ap = e.Msg.Req.Src
	case e.Msg.Res != nil:
		ap = e.Msg.Res.Src
	}
	if !ap.IsValid() {
		return netip.Addr{}, 0, false
	}
	return ap.Addr().Unmap(), uint32(ap.Port()), true
}

// tagged sets peer_tag_avp to the matching entry's tag, when both are set.
func (m *Module) tagged(e *ksr.Env, x *entry) int {
	if m.set.PeerTagAVP != "" && x.hasTag {
		if !e.SetPV(m.set.PeerTagAVP, lua.LString(x.tag)) {
			m.log().Error("permissions: setting of tag_avp failed", "avp", m.set.PeerTagAVP)
			return -1
		}
	}
	return 1
}

// match is allow_address on a parsed address: the address table, then
// the subnet table.
func (m *Module) match(e *ksr.Env, t *tables, group uint32, a netip.Addr, port uint32) int {
	if x := t.matchAddr(false, group, a, port); x != nil {
		return m.tagged(e, x)
	}
	if x := t.matchSubnet(false, group, a, port); x != nil {
		return m.tagged(e, x)
	}
	return -1
}

func (m *Module) allowSourceAddress(e *ksr.Env, group int) int {
	t := m.t.Load()
	a, port, ok := source(e)
	if t == nil || !ok {
		return -1
	}
	return m.match(e, t, uint32(group), a, port)
}

func (m *Module) allowAddress(e *ksr.Env, group int, addr string, port int) int {
	t := m.t.Load()
	if t == nil {
		return -1
	}
	if a, ok := parseIP(addr); ok {
		return m.match(e, t, uint32(group), a, uint32(port))
	}
	if x := t.matchDomain(false, uint32(group), addr, uint32(port)); x != nil {
		return m.tagged(e, x)
	}
	return -1
}

// groupOf is find_group_in_*: the group of the first matching entry.
func (m *Module) groupOf(e *ksr.Env, t *tables, a netip.Addr, port uint32) int {
	x := t.matchAddr(true, 0, a, port)
	if x == nil {
		x = t.matchSubnet(true, 0, a, port)
	}
	if x == nil {
		return -1
	}
	if m.tagged(e, x) < 0 {
		return -1
	}
	return int(int32(x.grp))
}

func (m *Module) allowSourceAddressGroup(e *ksr.Env) int {
	t := m.t.Load()
	a, port, ok := source(e)
	if t == nil || !ok {
		return -1
	}
	return m.groupOf(e, t, a, port)
}

func (m *Module) allowAddressGroup(e *ksr.Env, addr string, port int) int {
	t := m.t.Load()
	if t == nil {
		return -1
	}
	if a, ok := parseIP(addr); ok {
		return m.groupOf(e, t, a, uint32(port))
	}
	// find_group_in_domain_name_table sets no tag.
	if x := t.matchDomain(true, 0, addr, uint32(port)); x != nil {
		return int(int32(x.grp))
	}
	return -1
}

// obj is a JSON object whose keys keep their order (and may repeat, as
// Kamailio's domainDump's do).
type obj []kv

type kv struct {
	K string
	V any
}

// MarshalJSON writes the pairs in order.
func (o obj) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, p := range o {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, p.K)
		b = append(b, ':')
		v, err := json.Marshal(p.V)
		if err != nil {
			return nil, err
		}
		b = append(b, v...)
	}
	return append(b, '}'), nil
}

// reloadAllowed is rpc_check_reload: no two reloads (of either table)
// closer than reload_delta seconds.
func (m *Module) reloadAllowed() bool {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	now := m.clock.Now().Unix()
	if m.lastReload != 0 && m.lastReload > now-int64(m.set.ReloadDelta) {
		m.log().Error("permissions: ongoing reload")
		return false
	}
	m.lastReload = now
	return true
}

func fault(msg string) error { return &jsonrpc.Fault{Code: 500, Message: msg} }

// RPC returns permissions.addressReload, addressDump, subnetDump and
// domainDump with the reply shapes of rpc.c and hash.c at 5.6.3.
func (m *Module) RPC() []jsonrpc.Method {
	return []jsonrpc.Method{
		{Name: "permissions.addressReload", Doc: "Reload permissions address file", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			if !m.reloadAllowed() {
				return nil, fault("ongoing reload")
			}
			if err := m.Reload(); err != nil {
				return nil, fault("Reload failed.")
			}
			return "Reload OK", nil
		}},
		{Name: "permissions.trustedReload", Doc: "Reload permissions trusted table", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			if !m.reloadAllowed() {
				return nil, fault("ongoing reload")
			}
			if m.set.DBMode != 1 || m.trusted.Load() == nil {
				m.log().Error("permissions: in-memory hash table not initialized")
				return nil, fault("Reload failed.")
			}
			t, err := m.loadTrusted()
			if err != nil {
				m.log().Error("permissions: trusted table reload failed", "error", err)
				return nil, fault("Reload failed.")
			}
			m.trusted.Store(t)
			return "Reload OK", nil
		}},
		{Name: "permissions.trustedDump", Doc: "Print trusted entries", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t := m.trusted.Load()
			if t == nil {
				return nil, fault("No trusted table")
			}
			return t.dump(), nil
		}},
		{Name: "permissions.addressDump", Doc: "Print all addresses in memory", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t := m.t.Load()
			if t == nil {
				return nil, fault("No address table")
			}
			out := []any{}
			for i := range t.addrs {
				for _, x := range t.addrs[i] {
					tag := "NULL"
					if x.tag != "" {
						tag = x.tag
					}
					out = append(out, obj{{"table", i}, {"group", int32(x.grp)},
						{"item", obj{{"ip", x.addr.String()}, {"port", int32(x.port)}, {"tag", tag}}}})
				}
			}
			return out, nil
		}},
		{Name: "permissions.subnetDump", Doc: "Print subnet entries", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t := m.t.Load()
			if t == nil {
				return nil, fault("No subnet table")
			}
			out := []any{}
			for i, x := range t.subnets {
				out = append(out, obj{{"id", i}, {"group", int32(x.grp)},
					{"item", obj{{"ip", x.addr.String()}, {"mask", x.mask}, {"port", int32(x.port)}, {"tag", x.tag}}}})
			}
			return out, nil
		}},
		{Name: "permissions.domainDump", Doc: "Print domain name entries", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t := m.t.Load()
			if t == nil {
				return nil, fault("No domain list table")
			}
			out := obj{}
			for i := range t.domains {
				for _, x := range t.domains[i] {
					tag := "NULL"
					if x.tag != "" {
						tag = x.tag
					}
					out = append(out, kv{"table", i}, kv{"group", int32(x.grp)},
						kv{"item", obj{{"domain_name", x.domain}, {"port", int32(x.port)}, {"tag", tag}}})
				}
			}
			return out, nil
		}},
	}
}
