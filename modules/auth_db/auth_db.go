// Package auth_db is Kamailio's auth_db module in kemi:
// KSR.auth_db.auth_check(realm, table, flags) checks a request's digest
// credentials against the subscriber table (Kamailio's layout, through
// package kdb) with the auth module's nonce and digest check, and
// Kamailio 5.6's return codes (auth/api.h). calculate_ha1 computes HA1
// from the password column; otherwise password_column holds it.
//
// Concurrency: a Module is configured by one goroutine; afterwards its
// exports run on any worker (the database is safe for concurrent use).
package auth_db

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/emiago/sipgo/sip"

	"kemi/config"
	"kemi/kdb"
	"kemi/ksr"
	"kemi/modules/auth"
)

// Settings are the module's parameters.
type Settings struct {
	DBURL        string
	CalculateHA1 bool
	PasswordCol  string
	UserCol      string
	DomainCol    string
	UseDomain    bool
}

// Module is one configuration's auth_db.
type Module struct {
	set  Settings
	auth *auth.Module
	host ksr.Host
	db   atomic.Pointer[store]
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
)

// New returns an auth_db over a with Kamailio's defaults.
func New(a *auth.Module) *Module {
	return &Module{auth: a, set: Settings{PasswordCol: "ha1", UserCol: "username", DomainCol: "domain"}}
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	str := func(dst *string) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error { *dst = st.Value.String(); return nil }
	}
	flag := func(dst *bool) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error {
			v := st.Value.String()
			switch v {
			case "1", "yes", "true", "on":
				*dst = true
			case "0", "no", "false", "off":
				*dst = false
			default:
				n, err := strconv.Atoi(v)
				if err != nil {
					return config.Errorf(st.Pos, "auth_db %s: %q is not a boolean", st.Name, v)
				}
				*dst = n != 0
			}
			return nil
		}
	}
	return ksr.ModuleInfo{
		Name: "auth_db",
		Doc:  "digest authentication against the subscriber table",
		Params: []ksr.Param{
			{Name: "db_url", Set: func(c *ksr.Setup, st config.Stmt) error {
				m.set.DBURL = kdb.Resolve(st.Value.String(), c.File)
				return nil
			}},
			{Name: "calculate_ha1", Set: flag(&m.set.CalculateHA1)},
			{Name: "password_column", Set: str(&m.set.PasswordCol)},
			{Name: "user_column", Set: str(&m.set.UserCol)},
			{Name: "domain_column", Set: str(&m.set.DomainCol)},
			{Name: "use_domain", Set: flag(&m.set.UseDomain)},
		},
		// Kamailio 5.6.3's other auth_db parameters: loading columns into
		// AVPs, the second password column (ha1b), version checks and
		// raw queries.
		Ignored: []string{"password_column_2", "load_credentials", "version_table", "force_generate_avps"},
		Exports: []ksr.Submodule{{Name: "auth_db", Funcs: []ksr.Export{
			{Name: "auth_check", Func: m.authCheck, Ret: ksr.Int, Args: []string{"srealm", "stable", "iflags"},
				Doc: "Check the request's digest credentials against table: 1 ok, -1 error, -2 invalid password, -3 unknown user, -4 stale nonce, -5 no credentials, -8 user mismatch (flags 1)."},
			{Name: "is_subscriber", Func: m.isSubscriber, Ret: ksr.Int, Args: []string{"suri", "stable", "iflags"},
				Doc: "1 when table has a row for uri's user (and host with flags 1), -2 when not, -1 on error; flags 2 (skip credentials) is needed."},
		}}},
	}
}

// Provision checks the settings.
func (m *Module) Provision(h ksr.Host) error {
	if m.set.DBURL == "" {
		return fmt.Errorf("auth_db: db_url is not set")
	}
	m.host = h
	return nil
}

// Start opens db_url: a read-only or unusable database fails the start.
func (m *Module) Start(ctx context.Context) error {
	s, err := openStore(m.set.DBURL, m.host.Deps().DBOptions(m.set.DBURL))
	if err != nil {
		return fmt.Errorf("auth_db: %w", err)
	}
	m.db.Store(s)
	return nil
}

// Stop closes the database.
func (m *Module) Stop(ctx context.Context) error {
	if s := m.db.Swap(nil); s != nil {
		return s.close()
	}
	return nil
}

func (m *Module) authCheck(e *ksr.Env, realm, table string, flags int) int {
	s := m.db.Load()
	if s == nil {
		return auth.Error
	}
	return m.auth.Check(e, realm, flags, m.set.UseDomain, func(user, realm string) (string, bool, error) {
		pw, found, err := s.password(table, m.set, user, realm)
		if err != nil || !found {
			return "", found, err
		}
		if m.set.CalculateHA1 {
			return auth.HA1(user, realm, pw), true, nil
		}
		return pw, true, nil
	})
}

// isSubscriber is is_subscriber: 1 a row exists for uri's user (and host
// with flags 1), -2 none, -1 an invalid uri or table, or a database error.
// Flag 2 (skip credentials) is needed, as in Kamailio without
// load_credentials.
func (m *Module) isSubscriber(e *ksr.Env, uri, table string, flags int) int {
	var u sip.Uri
	if uri == "" || table == "" || sip.ParseUri(uri, &u) != nil {
		return -1
	}
	s := m.db.Load()
	if s == nil {
		return -1
	}
	if flags&2 == 0 {
		// Kamailio fetches the load_credentials columns, which kemi does
		// not load (none by default): its query has no column and fails.
		e.D.Log.Error("auth_db: is_subscriber without flag 2 (skip credentials) needs load_credentials, which kemi does not support")
		return -1
	}
	set := m.set
	set.UseDomain = flags&1 != 0
	_, found, err := s.password(table, set, u.User, u.Host)
	switch {
	case err != nil:
		if !kdb.IsConnError(err) { // a lost connection is logged once by kdb
			e.D.Log.Error("auth_db: is_subscriber query failed", "table", table, "error", err)
		}
		return -1
	case !found:
		return -2
	}
	return 1
}
