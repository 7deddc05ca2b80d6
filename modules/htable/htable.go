// Package htable is Kamailio's htable module in kemi: named hash tables
// shared by every worker, declared with modparam("htable", "htable", ...),
// with KEMI's KSR.htable functions, the $sht, $shtex, $shtcn, $shtcv,
// $shtinc, $shtdec, $shtitkey and $shtitval pseudo-variables, the htable.* RPC commands,
// autoexpire driven by the engine's clock, and load/save of a table's
// content in Kamailio's htable database layout (docs/htable.md).
//
// Files: settings and runtime (this file), the tables (table.go), exports
// and pseudo-variables (ksr.go), RPC (rpc.go), the database (db.go, the
// only one that knows gorm).
//
// Concurrency: a Module is configured and provisioned by one goroutine;
// afterwards its set of tables is read-only. Each table is split into
// slots, each with its own mutex (Kamailio's slot locks), so workers
// touching different keys do not wait on each other. A VM's iterators are
// its own (ksr.Local), as Kamailio's are per process.
package htable

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/queues"
	"kemi/timers"
)

// Settings are the module's parameters.
type Settings struct {
	Tables []Spec
	Pos    map[string]config.Pos // table name -> where it was defined

	DBURL         string
	Cols          Columns
	DBExpires     bool   // db_expires: load and save the expires column
	ArraySuffix   string // array_size_suffix
	TimerInterval int    // timer_interval, seconds between autoexpire sweeps

	// kemi's, for dmqreplicate tables (cluster.go): nats_url, nats_replicas,
	// nats_start_wait (ms).
	NATSURL       string
	NATSReplicas  int
	NATSStartWait time.Duration
}

// Columns are the database column names (key_name_column, ...).
type Columns struct {
	Name, KeyType, ValueType, Value, Expires string
}

// Module is one configuration's htable.
type Module struct {
	set    Settings
	tables map[string]*Table
	order  []*Table // definition order
	local  ksr.Local
	host   ksr.Host
	clock  timers.Clock
	db     atomic.Pointer[store] // open between Start and Stop; RPC reads it
	loaded map[*Table]bool       // loaded from the database at start (Kamailio's dbload)

	sweepEvery int64        // timer_interval, seconds; 0 without autoexpire tables
	nextSweep  atomic.Int64 // Unix second of the next sweep

	cluster Cluster           // mqueue's NATS connection, set by the engine
	js      *queues.JetStream // nats_url's connection between Start and Stop
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
	_ ksr.Finisher    = (*Module)(nil)
)

// New returns an htable module with Kamailio's defaults.
func New() *Module {
	return &Module{
		set: Settings{
			Pos:           map[string]config.Pos{},
			Cols:          Columns{"key_name", "key_type", "value_type", "key_value", "expires"},
			ArraySuffix:   "::size",
			TimerInterval: 20,
		},
		tables: map[string]*Table{},
		loaded: map[*Table]bool{},
	}
}

// Settings returns the module's parameters as read from the configuration.
func (m *Module) Settings() *Settings { return &m.set }

// Table returns the named table, or nil (tests and kemi test use it).
func (m *Module) Table(name string) *Table { return m.tables[name] }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	str := func(dst *string) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error {
			*dst = st.Value.String()
			return nil
		}
	}
	params := []ksr.Param{
		{Name: "htable", Set: m.paramHtable},
		{Name: "db_url", Set: m.paramDBURL},
		{Name: "key_name_column", Set: str(&m.set.Cols.Name)},
		{Name: "key_type_column", Set: str(&m.set.Cols.KeyType)},
		{Name: "value_type_column", Set: str(&m.set.Cols.ValueType)},
		{Name: "key_value_column", Set: str(&m.set.Cols.Value)},
		{Name: "expires_column", Set: str(&m.set.Cols.Expires)},
		{Name: "array_size_suffix", Set: str(&m.set.ArraySuffix)},
		{Name: "timer_interval", Set: m.paramTimerInterval},
		{Name: "db_expires", Set: m.paramDBExpires},
	}
	return ksr.ModuleInfo{
		Name:   "htable",
		Doc:    "named hash tables shared by every worker, with autoexpire and database load/save",
		Params: append(params, m.natsParams()...),
		// fetch_rows: kemi reads a table in one query. enable_dmq,
		// dmq_init_sync: no DMQ (dmqreplicate goes through NATS when
		// there is a nats:// URL, and a node always loads the bucket's
		// content at start). timer_procs: the sweep runs lazily (now).
		// event_callback(_mode): no htable:mod-init / htable:expired events.
		Ignored: []string{"fetch_rows", "enable_dmq", "dmq_init_sync", "timer_procs", "event_callback", "event_callback_mode"},
		Exports: m.exports(),
		PVs:     m.pvs(),
	}
}

// maxSizeExp is the largest size= kemi accepts: 2^20 slots. Kamailio takes
// up to 31 and then fails for lack of shared memory.
const maxSizeExp = 20

// ParseSpec parses a table definition as ht_table_spec does:
// "name=>size=8;autoexpire=300;initval=0;updateexpire=1;dbtable=t;dbmode=1".
func ParseSpec(spec string) (Spec, error) {
	const ws = " \t\r\n"
	in := strings.TrimLeft(spec, ws)
	i := strings.IndexAny(in, "="+ws)
	if in == "" || i <= 0 {
		return Spec{}, fmt.Errorf("missing table name (want \"name=>param=value;...\")")
	}
	s := Spec{Name: in[:i], UpdateExpire: true}
	rest := strings.TrimLeft(in[i:], ws)
	if !strings.HasPrefix(rest, "=>") {
		return Spec{}, fmt.Errorf("missing \"=>\" after table name %q", s.Name)
	}
	rest = strings.TrimLeft(rest[2:], ws)
	rest = strings.TrimSuffix(rest, ";")
	size := 4
	if rest != "" {
		for _, p := range strings.Split(rest, ";") {
			k, v, ok := strings.Cut(p, "=")
			k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"`)
			if !ok || k == "" {
				return Spec{}, fmt.Errorf("invalid parameter %q", p)
			}
			uint := func() (int, error) {
				n, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return 0, fmt.Errorf("%s: %q is not an unsigned integer", k, v)
				}
				return int(n), nil
			}
			var err error
			switch k {
			case "dbtable":
				s.DBTable = v
			case "autoexpire":
				s.AutoExpire, err = uint()
			case "size":
				size, err = uint()
			case "dbmode":
				s.DBMode, err = uint()
			case "initval":
				var n int64
				if n, err = strconv.ParseInt(v, 10, 32); err != nil {
					err = fmt.Errorf("initval: %q is not an integer", v)
				}
				s.InitVal, s.HasInit = int32(n), true
			case "updateexpire":
				var n int
				n, err = uint()
				s.UpdateExpire = n != 0
			case "dmqreplicate":
				s.DMQReplicate, err = uint()
			case "cols":
				err = fmt.Errorf("cols: custom database columns are not supported by kemi")
			default:
				err = fmt.Errorf("unknown parameter %q (want size, autoexpire, initval, updateexpire, dbtable, dbmode, dmqreplicate)", k)
			}
			if err != nil {
				return Spec{}, err
			}
		}
	}
	switch {
	case size <= 1:
		s.Size = 8
	case size > 31:
		s.Size = 1 << 14
	case size > maxSizeExp:
		return Spec{}, fmt.Errorf("size=%d: %d slots is too many (kemi accepts size up to %d)", size, 1<<size, maxSizeExp)
	default:
		s.Size = 1 << size
	}
	return s, nil
}

func (m *Module) paramHtable(c *ksr.Setup, st config.Stmt) error {
	s, err := ParseSpec(st.Value.String())
	if err != nil {
		return config.Errorf(st.Pos, "modparam htable htable %q: %v", st.Value.String(), err)
	}
	if prev, ok := m.set.Pos[s.Name]; ok {
		return config.Errorf(st.Pos, "modparam htable htable: duplicate table name %q (first defined at %s)", s.Name, prev)
	}
	m.set.Pos[s.Name] = st.Pos
	m.set.Tables = append(m.set.Tables, s)
	return nil
}

func (m *Module) paramDBURL(_ *ksr.Setup, st config.Stmt) error {
	url := st.Value.String()
	if scheme, _, ok := strings.Cut(url, "://"); ok && !strings.ContainsAny(scheme, `/\`) && !strings.EqualFold(scheme, "sqlite") {
		return config.Errorf(st.Pos, "modparam htable db_url: unsupported scheme %q: kemi stores htables in SQLite (\"sqlite:///path/file.db\" or a plain path)", scheme)
	}
	m.set.DBURL = url
	return nil
}

func (m *Module) paramTimerInterval(_ *ksr.Setup, st config.Stmt) (err error) {
	m.set.TimerInterval, err = config.IntParam(st, "htable", -1<<31, 1<<31-1)
	return err
}

func (m *Module) paramDBExpires(_ *ksr.Setup, st config.Stmt) error {
	n, err := config.IntParam(st, "htable", -1<<31, 1<<31-1)
	m.set.DBExpires = n != 0
	return err
}

// Finish refuses a table with a dbtable but no db_url: Kamailio silently
// never loads it.
func (m *Module) Finish(c *ksr.Setup) error {
	m.finishCluster(c)
	for _, s := range m.set.Tables {
		if s.DBTable != "" && m.set.DBURL == "" {
			return config.Errorf(m.set.Pos[s.Name], "modparam htable htable: table %q has dbtable %q but modparam(\"htable\", \"db_url\", ...) is not set", s.Name, s.DBTable)
		}
	}
	return nil
}

// Provision builds the tables and the per-VM slot of iterators.
func (m *Module) Provision(h ksr.Host) error {
	m.host, m.clock = h, h.Clock()
	m.tables, m.order = map[string]*Table{}, nil
	for _, s := range m.set.Tables {
		t := newTable(s)
		m.tables[s.Name] = t
		m.order = append(m.order, t)
	}
	m.local = h.Deps().NewLocal()
	if m.hasAutoExpire() {
		m.sweepEvery = int64(m.set.TimerInterval)
		if m.sweepEvery <= 0 {
			m.sweepEvery = 20
		}
		m.nextSweep.Store(m.clock.Now().Unix() + m.sweepEvery)
	}
	return nil
}

// Start loads the tables that have a dbtable (whatever their dbmode, as
// Kamailio). A database that cannot be
// opened, written or read fails the start.
func (m *Module) Start(ctx context.Context) error {
	if m.set.DBURL != "" && m.hasDBTables() {
		db, err := openStore(m.set.DBURL, m.set.Cols)
		if err != nil {
			return fmt.Errorf("htable: %w", err)
		}
		for _, t := range m.order {
			if t.DBTable == "" {
				continue
			}
			items, err := db.load(ctx, t, m.set.DBExpires && t.AutoExpire > 0, m.set.ArraySuffix, m.clock.Now().Unix())
			if err != nil {
				db.close()
				return fmt.Errorf("htable: load table %q from %q: %w", t.Name, t.DBTable, err)
			}
			now := m.clock.Now().Unix()
			for _, it := range items {
				t.load(it, now)
			}
			m.loaded[t] = true
		}
		m.db.Store(db)
	}
	if err := m.startCluster(ctx); err != nil {
		if db := m.db.Swap(nil); db != nil {
			db.close()
		}
		return err
	}
	return nil
}

func (m *Module) hasDBTables() bool {
	for _, t := range m.order {
		if t.DBTable != "" {
			return true
		}
	}
	return false
}

func (m *Module) hasAutoExpire() bool {
	for _, t := range m.order {
		if t.AutoExpire > 0 {
			return true
		}
	}
	return false
}

// now is Kamailio's time(NULL), on the engine's clock. It also runs
// Kamailio's autoexpire timer, ht_timer, lazily: the first call after each
// point of the timer's grid (start + k*timer_interval seconds) removes the
// expired items of every table (who is the calling VM, whose own held
// slots are swept re-entrantly). As in Kamailio, functions reading one key
// test expiry themselves, while sht_match_*, sht_rm_*, $shtcn/$shtcv,
// iterators, htable.dump and htable.stats see expired items until the
// sweep removes them.
func (m *Module) now(who any) int64 {
	now := m.clock.Now().Unix()
	if next := m.nextSweep.Load(); now >= next && m.sweepEvery > 0 &&
		m.nextSweep.CompareAndSwap(next, next+((now-next)/m.sweepEvery+1)*m.sweepEvery) {
		m.sweep(now, who)
	}
	return now
}

// Sweep removes the expired items of every table now, as one run of
// Kamailio's timer; it returns how many went.
func (m *Module) Sweep() int { return m.sweep(m.clock.Now().Unix(), nil) }

func (m *Module) sweep(now int64, who any) int {
	n := 0
	for _, t := range m.order {
		n += t.Sweep(now, who)
	}
	return n
}

// Stop saves the tables with a dbtable and a dbmode (those loaded at
// start) and closes the database.
func (m *Module) Stop(ctx context.Context) error {
	m.stopCluster(ctx)
	db := m.db.Swap(nil)
	if db == nil {
		return nil
	}
	var err error
	for _, t := range m.order {
		if t.DBTable == "" || t.DBMode == 0 || !m.loaded[t] {
			continue
		}
		if e := db.save(context.WithoutCancel(ctx), t, m.set.DBExpires, m.clock.Now().Unix()); e != nil && err == nil {
			err = fmt.Errorf("htable: save table %q to %q: %w", t.Name, t.DBTable, e)
		}
	}
	if e := db.close(); e != nil && err == nil {
		err = fmt.Errorf("htable: close db_url: %w", e)
	}
	return err
}
