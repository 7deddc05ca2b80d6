// Package usrloc is Kamailio's usrloc module in kemi: the location table
// of registered contacts, shared by every worker, one domain per table
// name ("location"), with expiry on the engine's clock and Kamailio's
// location table in a database (db_url, db_mode 0 memory only, 1
// write-through, 2 write-back on a timer and at stop, 3 treated as 1),
// and the ul.dump, ul.lookup and ul.rm RPC commands. registrar is its
// user (registrar.New takes the usrloc module), as Kamailio's registrar
// binds usrloc's API (docs/registrar.md).
//
// Files: settings, runtime and the table (this file), the database
// (db.go, through package kdb), RPC (rpc.go).
//
// Concurrency: a Module is configured and provisioned by one goroutine;
// afterwards its methods are safe for concurrent use. Each domain has one
// mutex; the database is written under it, so the table and the rows
// never disagree for long. Expiry is lazy: every operation drops the
// contacts expired at the engine's clock's now (as Kamailio's timer
// would have); the timer's sweep of every table (and db_mode 2's flush)
// runs at the first operation after timer_interval has passed, and the
// flush at stop.
package usrloc

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"kemi/config"
	"kemi/kdb"
	"kemi/ksr"
	"kemi/timers"
)

// Settings are the module's parameters.
type Settings struct {
	DBURL         string
	DBMode        int // 0 memory, 1 write-through, 2 write-back, 3 DB only (as 1)
	TimerInterval int // seconds
	UseDomain     bool
	NatBflag      int // -1: none
	DescTimeOrder bool
	// Preload are the tables (usrloc domains) registered at start, as
	// modparam("usrloc", "preload", "location") does: with KEMI, the only
	// tables registrar may use.
	Preload []string
}

// Contact is one registered contact (Kamailio's ucontact_t).
type Contact struct {
	Ruid      string
	AOR       string
	Contact   string
	Received  string
	Path      string
	Expires   int64 // Unix seconds; 0: permanent
	Q         int   // q * 1000; -1: none (Q_UNSPECIFIED)
	CallID    string
	CSeq      int
	Flags     int
	CFlags    int
	UserAgent string
	Socket    string
	Methods   int64 // -1: not set (all)
	Instance  string
	RegID     int
	Modified  int64 // Unix seconds, last_modified
	// stored records whether the row exists in the database (db_mode 2).
	stored bool
	dirty  bool
}

// Valid reports whether c has not expired at now (VALID_CONTACT).
func (c *Contact) Valid(now int64) bool { return c.Expires == 0 || c.Expires > now }

// Domain is one location table: the records of every AOR.
type Domain struct {
	Name    string
	mu      sync.Mutex
	recs    map[string][]*Contact // AOR -> contacts, best first
	deleted []string              // ruids to delete from the database (db_mode 2)
}

// Module is one configuration's usrloc.
type Module struct {
	set   Settings
	host  ksr.Host
	clock timers.Clock

	// domains is the tables by name, replaced (under mu) when one is
	// added, so a lookup takes no lock.
	mu      sync.Mutex
	domains atomic.Pointer[map[string]*Domain]
	db      atomic.Pointer[store]
	started atomic.Bool

	nextFlush atomic.Int64
	ruidSeq   atomic.Uint64
	ruidBase  string
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
)

// New returns a usrloc module with Kamailio's defaults.
func New() *Module {
	m := &Module{set: Settings{TimerInterval: 60, UseDomain: false, NatBflag: -1}}
	m.domains.Store(&map[string]*Domain{})
	return m
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "usrloc",
		Doc:  "the location table of registered contacts, in memory and in Kamailio's location table",
		Params: []ksr.Param{
			{Name: "db_url", Set: func(c *ksr.Setup, st config.Stmt) error {
				m.set.DBURL = kdb.Resolve(st.Value.String(), c.File)
				return nil
			}},
			{Name: "db_mode", Set: m.intParam(&m.set.DBMode, 0, 3)},
			{Name: "timer_interval", Set: m.intParam(&m.set.TimerInterval, 1, 1<<30)},
			{Name: "use_domain", Set: m.boolParam(&m.set.UseDomain)},
			{Name: "nat_bflag", Set: m.intParam(&m.set.NatBflag, -1, 31)},
			{Name: "desc_time_order", Set: m.boolParam(&m.set.DescTimeOrder)},
			{Name: "preload", Set: func(_ *ksr.Setup, st config.Stmt) error {
				m.set.Preload = append(m.set.Preload, st.Value.String())
				return nil
			}},
		},
		// Kamailio 5.6.3's other usrloc parameters: custom column names,
		// db_load/db_insert_update tuning, keepalives, TCP handling,
		// preload and the hash size change nothing in kemi.
		Ignored: []string{"ruid_column", "user_column", "domain_column", "contact_column", "expires_column", "q_column",
			"callid_column", "cseq_column", "flags_column", "cflags_column", "db_load", "db_insert_update",
			"user_agent_column", "received_column", "path_column", "socket_column", "methods_column", "instance_column",
			"reg_id_column", "server_id_column", "connection_id_column", "keepalive_column", "partition_column",
			"matching_mode", "cseq_delay", "fetch_rows", "hash_size", "handle_lost_tcp", "close_expired_tcp",
			"skip_remote_socket", "db_update_as_insert", "timer_procs", "db_check_update", "xavp_contact",
			"db_ops_ruid", "expires_type", "db_raw_fetch_type", "db_insert_null", "server_id_filter", "db_timer_clean",
			"rm_expired_delay", "version_table", "ka_mode", "ka_from", "ka_domain", "ka_method", "ka_filter",
			"ka_timeout", "ka_loglevel", "ka_logmsg", "load_rank", "db_clean_tcp"},
		RuntimeFree: true,
	}
}

func (m *Module) intParam(dst *int, lo, hi int) func(*ksr.Setup, config.Stmt) error {
	return ksr.IntSetting("usrloc", dst, lo, hi)
}

func (m *Module) boolParam(dst *bool) func(*ksr.Setup, config.Stmt) error {
	return ksr.SwitchSetting("usrloc", dst)
}

// Provision keeps the engine's clock.
func (m *Module) Provision(h ksr.Host) error {
	m.host, m.clock = h, h.Clock()
	m.ruidBase = fmt.Sprintf("uloc-%x-%x", m.clock.Now().Unix(), time.Now().UnixNano()&0xffff)
	if m.set.DBMode != 0 && m.set.DBURL == "" {
		return fmt.Errorf("usrloc: db_mode %d needs db_url", m.set.DBMode)
	}
	return nil
}

// Start opens db_url (db_mode 1..3): a read-only or unusable database,
// or one without a location table of version 9, fails the start.
func (m *Module) Start(ctx context.Context) error {
	if m.set.DBMode != 0 {
		s, err := openStore(m.set.DBURL, m.host.Deps().DBOptions(m.set.DBURL))
		if err != nil {
			return fmt.Errorf("usrloc: %w", err)
		}
		m.db.Store(s)
	}
	for _, name := range m.set.Preload {
		if _, err := m.loadDomain(name); err != nil {
			return err
		}
	}
	m.nextFlush.Store(m.clock.Now().Unix() + int64(m.set.TimerInterval))
	m.started.Store(true)
	return nil
}

// Stop flushes (db_mode 2) and closes the database.
func (m *Module) Stop(ctx context.Context) error {
	m.started.Store(false)
	s := m.db.Load()
	if s == nil {
		return nil
	}
	err := m.Flush()
	m.db.Store(nil)
	if e := s.close(); e != nil && err == nil {
		err = e
	}
	return err
}

// Now is the engine's clock in Unix seconds.
func (m *Module) Now() int64 { return m.clock.Now().Unix() }

// UseDomain is use_domain: AORs are user@domain.
func (m *Module) UseDomain() bool { return m.set.UseDomain }

// Domain returns the domain (table) named name; only preloaded tables
// exist, as in Kamailio with KEMI (usrloc domain [name] not found).
func (m *Module) Domain(name string) (*Domain, error) {
	d := (*m.domains.Load())[name]
	if d == nil {
		return nil, fmt.Errorf("usrloc domain [%s] not found (preload it: modparam(\"usrloc\", \"preload\", %q))", name, name)
	}
	return d, nil
}

func (m *Module) loadDomain(name string) (*Domain, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.domains.Load()
	if d := old[name]; d != nil {
		return d, nil
	}
	d := &Domain{Name: name, recs: map[string][]*Contact{}}
	if s := m.db.Load(); s != nil {
		cs, err := s.load(name, m.set.UseDomain)
		if err != nil {
			return nil, fmt.Errorf("usrloc: load table %q from %q: %w", name, s.db.Path, err)
		}
		now := m.Now()
		for _, c := range cs {
			if c.Valid(now) {
				d.recs[c.AOR] = insertSorted(d.recs[c.AOR], c, m.set.DescTimeOrder)
			}
		}
	}
	all := make(map[string]*Domain, len(old)+1)
	for k, v := range old {
		all[k] = v
	}
	all[name] = d
	m.domains.Store(&all)
	return d, nil
}

// Domains returns the domains in name order.
func (m *Module) Domains() []*Domain {
	all := *m.domains.Load()
	out := make([]*Domain, 0, len(all))
	for _, d := range all {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// insertSorted puts c among cs as mem_insert_ucontact does: by q,
// highest first, after the contacts of equal q; at the head with
// desc_time_order.
func insertSorted(cs []*Contact, c *Contact, byTime bool) []*Contact {
	i := 0
	if !byTime {
		for i < len(cs) && cs[i].Q >= c.Q {
			i++
		}
	}
	cs = append(cs, nil)
	copy(cs[i+1:], cs[i:])
	cs[i] = c
	return cs
}

// Tx runs f with the domain locked, on the AOR's contacts (valid ones
// only: the expired ones are dropped first) and replaces them with
// what f returns; removed contacts are deleted from the database, and
// the ones f added or replaced (f changes copies, never the contacts it
// is given) are written. It is how registrar changes a record atomically.
func (m *Module) Tx(d *Domain, aor string, f func(cs []*Contact) ([]*Contact, error)) error {
	now := m.Now()
	d.mu.Lock()
	old := m.expire(d, aor, now)
	keep := append([]*Contact(nil), old...)
	cs, err := f(keep)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	in, was := map[*Contact]bool{}, map[*Contact]bool{}
	for _, c := range cs {
		in[c] = true
	}
	for _, c := range old {
		was[c] = true
	}
	var gone, changed []*Contact
	for _, c := range old {
		if !in[c] {
			gone = append(gone, c)
		}
	}
	// A contact f made or replaced (a changed copy) is written.
	for _, c := range cs {
		if !was[c] {
			changed = append(changed, c)
		}
	}
	// Order by q (stable for equal q: the order f gave); with
	// desc_time_order, the contacts f added or changed first, the last
	// one at the head, then the others as they were.
	sorted := make([]*Contact, 0, len(cs))
	if m.set.DescTimeOrder {
		for i := len(changed) - 1; i >= 0; i-- {
			sorted = append(sorted, changed[i])
		}
		for _, c := range cs {
			if was[c] {
				sorted = append(sorted, c)
			}
		}
	} else {
		for _, c := range cs {
			sorted = insertSorted(sorted, c, false)
		}
	}
	if len(sorted) == 0 {
		delete(d.recs, aor)
	} else {
		d.recs[aor] = sorted
	}
	err = m.persist(d, changed, gone)
	if err != nil && len(old) == 0 {
		// A new record whose write-through failed is dropped from
		// memory, as Kamailio's registrar does (insert_contacts deletes
		// the urecord it could not insert); changes to an existing
		// record stay in memory and the timer writes them later.
		delete(d.recs, aor)
	}
	d.mu.Unlock()
	m.maybeFlush(now)
	return err
}

// expire drops aor's contacts expired at now; d is locked. The slice
// returned is the table's (when none expired): read, never change it.
func (m *Module) expire(d *Domain, aor string, now int64) []*Contact {
	cs := d.recs[aor]
	all := true
	for _, c := range cs {
		if !c.Valid(now) {
			all = false
			break
		}
	}
	if all {
		return cs
	}
	var live, dead []*Contact
	for _, c := range cs {
		if c.Valid(now) {
			live = append(live, c)
		} else {
			dead = append(dead, c)
		}
	}
	if len(dead) > 0 {
		if len(live) == 0 {
			delete(d.recs, aor)
		} else {
			d.recs[aor] = live
		}
		_ = m.persist(d, nil, dead)
	}
	return live
}

// Contacts returns copies of aor's valid contacts, best first.
func (m *Module) Contacts(d *Domain, aor string) []Contact {
	now := m.Now()
	d.mu.Lock()
	cs := m.expire(d, aor, now)
	out := make([]Contact, len(cs))
	for i, c := range cs {
		out[i] = *c
	}
	d.mu.Unlock()
	m.maybeFlush(now)
	return out
}

// Live returns aor's valid contacts, best first, as the table holds
// them: neither the slice nor the contacts may be changed (the table
// never changes them in place: Tx and expiry replace the slice, and a
// changed contact is a new copy), so a caller reads them without a copy
// or a lock, as Kamailio's registrar reads the urecord it has locked.
func (m *Module) Live(d *Domain, aor string) []*Contact {
	now := m.Now()
	d.mu.Lock()
	cs := m.expire(d, aor, now)
	d.mu.Unlock()
	m.maybeFlush(now)
	return cs
}

// NewRuid returns a new record unique id.
func (m *Module) NewRuid() string {
	return fmt.Sprintf("%s-%d", m.ruidBase, m.ruidSeq.Add(1))
}

// persist writes changed and removed contacts: at once in db_mode 1 and
// 3, at the next flush in db_mode 2; d is locked.
func (m *Module) persist(d *Domain, changed, gone []*Contact) error {
	if m.set.DBMode == 0 {
		return nil
	}
	for _, c := range changed {
		c.dirty = true
	}
	for _, c := range gone {
		if c.stored {
			d.deleted = append(d.deleted, c.Ruid)
		}
	}
	if m.set.DBMode == 2 {
		return nil
	}
	return m.flushDomain(d)
}

// flushDomain writes d's dirty contacts and deletions; d is locked.
func (m *Module) flushDomain(d *Domain) error {
	s := m.db.Load()
	if s == nil {
		return nil
	}
	var dirty []*Contact
	for _, cs := range d.recs {
		for _, c := range cs {
			if c.dirty {
				dirty = append(dirty, c)
			}
		}
	}
	if len(dirty) == 0 && len(d.deleted) == 0 {
		return nil
	}
	if err := s.write(d.Name, dirty, d.deleted, m.set.UseDomain, m.NatFlag()); err != nil {
		// A lost connection is logged once by kdb; the contacts stay
		// dirty and are written at the next flush (Kamailio's wb_timer
		// retries failed writes in db_mode 1 and 2 alike).
		if !s.db.Failed("write table "+d.Name, err) {
			m.host.Logger().Error("usrloc: write to database failed", "table", d.Name, "db", s.db.Path, "error", err)
		}
		return fmt.Errorf("usrloc: write table %q in %q: %w", d.Name, s.db.Path, err)
	}
	for _, c := range dirty {
		c.dirty, c.stored = false, true
	}
	d.deleted = nil
	return nil
}

// maybeFlush is usrloc's timer, run at the first operation once
// timer_interval has passed since the last run: every table drops its
// expired contacts (their rows deleted in db_mode 1 and 2), and db_mode 2
// writes its changes.
func (m *Module) maybeFlush(now int64) {
	if !m.started.Load() {
		return
	}
	next := m.nextFlush.Load()
	if now < next || !m.nextFlush.CompareAndSwap(next, now+int64(m.set.TimerInterval)) {
		return
	}
	_ = m.flushAll(now)
}

// Flush writes every domain's changes to the database now (db_mode 2's
// timer, and stop).
func (m *Module) Flush() error { return m.flushAll(m.Now()) }

func (m *Module) flushAll(now int64) error {
	var err error
	for _, d := range m.Domains() {
		d.mu.Lock()
		for aor := range d.recs {
			m.expire(d, aor, now)
		}
		if e := m.flushDomain(d); e != nil && err == nil {
			err = e
		}
		d.mu.Unlock()
	}
	return err
}

// AORs returns d's AORs with valid contacts, sorted.
func (m *Module) AORs(d *Domain) []string {
	now := m.Now()
	d.mu.Lock()
	var out []string
	for aor := range d.recs {
		if len(m.expire(d, aor, now)) > 0 {
			out = append(out, aor)
		}
	}
	d.mu.Unlock()
	sort.Strings(out)
	return out
}

func unix(s int64) time.Time { return time.Unix(s, 0) }

// Provisioned reports whether the configuration loads usrloc (the engine
// provisioned it): nathelper's keepalives need it.
func (m *Module) Provisioned() bool { return m.host != nil }

// NatFlag is nat_bflag as a flag mask (Kamailio's ul.nat_flag), 0 when
// nat_bflag is not set.
func (m *Module) NatFlag() int {
	if m.set.NatBflag < 0 {
		return 0
	}
	return 1 << m.set.NatBflag
}

// AllContacts returns copies of the valid contacts of every table whose
// cflags hold all of flags, as get_all_ucontacts lists them for
// nathelper's keepalives; in table, AOR and q order.
func (m *Module) AllContacts(flags int) []Contact {
	now := m.Now()
	var out []Contact
	for _, d := range m.Domains() {
		d.mu.Lock()
		aors := make([]string, 0, len(d.recs))
		for aor := range d.recs {
			aors = append(aors, aor)
		}
		sort.Strings(aors)
		for _, aor := range aors {
			for _, c := range d.recs[aor] {
				if c.Valid(now) && c.CFlags&flags == flags {
					out = append(out, *c)
				}
			}
		}
		d.mu.Unlock()
	}
	return out
}
