// Package mqueue is Kamailio's mqueue module in kemi: named bounded FIFOs
// shared by every worker, with KEMI's KSR.mqueue functions, the $mqk, $mqv
// and $mq_size pseudo-variables, the mqueue.* RPC commands and persistence
// through queues.Store (reference §1; docs/mqueue.md).
//
// It is the smallest complete module home: settings and modparam parser
// (this file), exports and pseudo-variables (ksr.go), runtime (the queue
// registry and its store, this file) and RPC (rpc.go). The queues
// themselves, with no Lua or SIP, are the queues package.
//
// Concurrency: a Module is configured and provisioned by one goroutine;
// afterwards its registry is read-only and its queues are safe for
// concurrent use. Each VM keeps its fetched items in its own ksr.Local.
package mqueue

import (
	"context"
	"fmt"
	"strings"

	"kemi/config"
	"kemi/ksr"
	"kemi/queues"
)

// Settings are the module's parameters.
type Settings struct {
	Queues []queues.Options
	DBURL  string
	Pos    map[string]config.Pos // queue name -> where it was defined

	size, addMode int // mqueue_size / mqueue_addmode, for later mqueue_name
}

// Module is one configuration's mqueue.
type Module struct {
	set   Settings
	reg   *queues.Registry
	store queues.Store
	local ksr.Local // each VM's fetched items (vmState)
	host  ksr.Host

	nats natsSettings      // cluster.go
	js   *queues.JetStream // the db_url's NATS connection, when it is one
	errs rateLog           // backend errors, logged at most once a second each
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
	_ ksr.Finisher    = (*Module)(nil)
)

// New returns an unconfigured mqueue module.
func New() *Module {
	reg, _ := queues.NewRegistry() // no queues: cannot fail
	return &Module{set: Settings{Pos: map[string]config.Pos{}}, reg: reg}
}

// Settings returns the module's parameters as read from the configuration.
func (m *Module) Settings() *Settings { return &m.set }

// Registry returns the queues (none until provisioned). kemi test inspects
// and seeds queues through it.
func (m *Module) Registry() *queues.Registry { return m.reg }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "mqueue",
		Doc:  "named bounded FIFOs shared by every worker, optionally persisted",
		Params: append([]ksr.Param{
			{Name: "mqueue", Set: m.paramMqueue},
			{Name: "mqueue_name", Set: m.paramName},
			{Name: "mqueue_size", Set: m.paramSize},
			{Name: "mqueue_addmode", Set: m.paramAddMode},
			{Name: "db_url", Set: m.paramDBURL},
		}, m.natsParams()...),
		Exports: m.exports(),
		PVs:     m.pvs(),
	}
}

func (m *Module) addQueue(st config.Stmt, o queues.Options) error {
	if prev, ok := m.set.Pos[o.Name]; ok {
		return config.Errorf(st.Pos, "modparam mqueue %s: duplicate queue name %q (first defined at %s)", st.Param, o.Name, prev)
	}
	m.set.Pos[o.Name] = st.Pos
	m.set.Queues = append(m.set.Queues, o)
	return nil
}

func (m *Module) paramMqueue(_ *ksr.Setup, st config.Stmt) error {
	o, err := queues.ParseSpec(st.Value.String())
	if err != nil {
		return config.Errorf(st.Pos, "modparam mqueue mqueue %q: %v", st.Value.String(), err)
	}
	return m.addQueue(st, o)
}

func (m *Module) paramName(_ *ksr.Setup, st config.Stmt) error {
	name := st.Value.String()
	if name == "" {
		return config.Errorf(st.Pos, "modparam mqueue mqueue_name: empty name")
	}
	return m.addQueue(st, queues.Options{Name: name, Size: m.set.size, AddMode: m.set.addMode})
}

func (m *Module) paramSize(_ *ksr.Setup, st config.Stmt) (err error) {
	m.set.size, err = config.IntParam(st, "mqueue", -1<<31, 1<<31-1)
	return err
}

func (m *Module) paramAddMode(_ *ksr.Setup, st config.Stmt) (err error) {
	m.set.addMode, err = config.IntParam(st, "mqueue", 0, 2)
	return err
}

func (m *Module) paramDBURL(_ *ksr.Setup, st config.Stmt) error {
	url := st.Value.String()
	if queues.IsNATSURL(url) {
		if err := checkNATSURL(st, url); err != nil {
			return err
		}
		m.set.DBURL = url
		return nil
	}
	// Checked here for a file:line; only the scheme is printed (a url may hold a password).
	if scheme, _, ok := strings.Cut(url, "://"); ok && !strings.ContainsAny(scheme, `/\`) && !strings.EqualFold(scheme, "sqlite") {
		return config.Errorf(st.Pos, "modparam mqueue db_url: unsupported scheme %q: kemi stores queues in SQLite (\"sqlite:///path/file.db\" or a plain path) or NATS JetStream (\"nats://host:port\")", scheme)
	}
	m.set.DBURL = url
	return nil
}

// Finish refuses a persisted queue without a database.
func (m *Module) Finish(*ksr.Setup) error {
	for _, q := range m.set.Queues {
		if q.DBMode != 0 && m.set.DBURL == "" {
			return config.Errorf(m.set.Pos[q.Name], "modparam mqueue mqueue: queue %q has dbmode %d but modparam(\"mqueue\", \"db_url\", ...) is not set", q.Name, q.DBMode)
		}
	}
	return m.finishNATS()
}

// Provision builds the queues and the per-VM slot of fetched items.
func (m *Module) Provision(h ksr.Host) error {
	reg, err := queues.NewRegistry(m.set.Queues...)
	if err != nil {
		return fmt.Errorf("mqueue: %w", err)
	}
	m.reg, m.host = reg, h
	m.local = h.Deps().NewLocal()
	return nil
}

// Start opens the database and loads the queues (per queue dbmode; see
// queues/doc.go and docs/mqueue.md). mqueue comes first in the module
// table, so loading ends before any traffic and saving starts after the
// workers have finished.
//
// Queues are loaded once the whole configuration is read, as Kamailio 5.8+
// does in mod_init; Kamailio 5.6 loads while parsing the mqueue modparam,
// which is why its db_url must come first.
func (m *Module) Start(ctx context.Context) error {
	url := m.set.DBURL
	if url == "" {
		return nil
	}
	if queues.IsNATSURL(url) {
		return m.startNATS(ctx)
	}
	// A database that cannot be used fails the start: never run with
	// silently empty queues.
	s, err := queues.OpenSQLite(url)
	if err != nil {
		return fmt.Errorf("open db_url: %w", err) // the error names the file
	}
	if err := m.reg.Load(ctx, s); err != nil {
		s.Close()
		return fmt.Errorf("load db_url %q: %w", url, err)
	}
	m.store = s
	return nil
}

// Stop saves the queues and closes the database.
func (m *Module) Stop(ctx context.Context) error {
	if m.js != nil {
		// Taken items not acknowledged are delivered again after the ack wait.
		err := m.js.Close()
		m.js = nil
		return err
	}
	if m.store == nil {
		return nil
	}
	err := m.reg.Save(context.WithoutCancel(ctx), m.store)
	if err != nil {
		err = fmt.Errorf("save db_url %q: %w", m.set.DBURL, err)
	}
	if cerr := m.store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close db_url %q: %w", m.set.DBURL, cerr)
	}
	m.store = nil
	return err
}
