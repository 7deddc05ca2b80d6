// Package db_mysql is Kamailio's db_mysql module in kemi: loading it
// makes mysql:// db_urls (MySQL, MariaDB) work for the modules that keep
// their tables through package kdb (usrloc, auth_db), and its modparams
// set how kdb connects: timeout_interval bounds a connection attempt (and
// three times it a read or a write), ping_interval pings the server that
// often (and drops pooled connections idle longer), auto_reconnect 0
// makes a lost connection stay lost. kdb opens the connections itself
// (gorm's mysql driver); this module only carries the settings, handed
// over through ksr.Deps.DB while provisioning (docs/database.md).
//
// Concurrency: a Module is configured and provisioned by one goroutine.
package db_mysql

import (
	"math"
	"strconv"
	"time"

	"kemi/config"
	"kemi/kdb"
	"kemi/ksr"
)

// Settings are the module's parameters, with Kamailio 5.6.3's defaults.
type Settings struct {
	PingInterval    int // seconds; 0: no ping
	TimeoutInterval int // seconds
	AutoReconnect   bool
}

// Module is one configuration's db_mysql.
type Module struct{ set Settings }

var _ ksr.Provisioner = (*Module)(nil)

// New returns db_mysql with Kamailio's defaults: ping every 300 s,
// timeout_interval 2 s, auto_reconnect 1.
func New() *Module {
	return &Module{set: Settings{PingInterval: 300, TimeoutInterval: 2, AutoReconnect: true}}
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	num := func(dst *int) func(*ksr.Setup, config.Stmt) error {
		return ksr.IntSetting("db_mysql", dst, 0, math.MaxInt32)
	}
	return ksr.ModuleInfo{
		Name: "db_mysql",
		Doc:  "MySQL/MariaDB driver: mysql:// db_urls, opened by kdb through gorm",
		Params: []ksr.Param{
			{Name: "ping_interval", Set: num(&m.set.PingInterval)},
			{Name: "timeout_interval", Set: num(&m.set.TimeoutInterval)},
			{Name: "auto_reconnect", Set: func(_ *ksr.Setup, st config.Stmt) error {
				n, err := strconv.Atoi(st.Value.String())
				if err != nil {
					return config.Errorf(st.Pos, "db_mysql auto_reconnect: %q is not an integer", st.Value.String())
				}
				m.set.AutoReconnect = n != 0
				return nil
			}},
		},
		// Kamailio 5.6.3's other db_mysql parameters: libmysqlclient's
		// separate connect/send/receive timeouts and retries (the Go
		// driver has timeout_interval's one timeout and database/sql's
		// retry on a dead connection), FROM_UNIXTIME conversion,
		// INSERT DELAYED, affected-rows and unsigned-type tuning, and the
		// TLS mode, which change nothing in kemi.
		Ignored: []string{"connect_timeout", "send_timeout", "receive_timeout", "retries", "server_timezone",
			"insert_delayed", "update_affected_found", "unsigned_type", "opt_ssl_mode"},
		RuntimeFree: true,
	}
}

// Options are the connection settings the modparams make.
func (m *Module) Options() kdb.Options {
	return kdb.Options{
		Timeout:      time.Duration(m.set.TimeoutInterval) * time.Second,
		PingInterval: time.Duration(m.set.PingInterval) * time.Second,
		NoReconnect:  !m.set.AutoReconnect,
	}
}

// Provision hands the settings to the modules that open mysql:// URLs.
func (m *Module) Provision(h ksr.Host) error {
	d := h.Deps()
	if d.DB == nil {
		d.DB = map[string]kdb.Options{}
	}
	d.DB["mysql"] = m.Options()
	return nil
}
