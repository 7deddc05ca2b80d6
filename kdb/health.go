package kdb

// This file is how a DB survives losing its server: the pool reconnects
// (database/sql opens a new connection for the next query once the old
// one is found dead), and the DB logs one error when the connection is
// lost, naming the database (password redacted) and what failed, and one
// line when it is back, instead of an error per query.

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Options are a database's connection settings (db_mysql's and
// db_postgres's modparams); the zero value is Kamailio's defaults.
type Options struct {
	// Timeout bounds a connection attempt (and three times it a read or
	// a write): db_mysql's timeout_interval, 2 s when zero.
	Timeout time.Duration
	// PingInterval is how often the server is pinged (db_mysql's
	// ping_interval); pooled connections idle longer are dropped and
	// reopened. Zero: no ping.
	PingInterval time.Duration
	// NoReconnect is auto_reconnect 0: once the connection is lost,
	// every query fails until the module is restarted.
	NoReconnect bool
	// Log receives the lost/restored lines; nil: slog.Default().
	Log *slog.Logger
}

// ErrNoReconnect is what queries fail with after a lost connection when
// auto_reconnect is 0.
var ErrNoReconnect = errors.New("the database connection was lost and auto_reconnect is 0")

// health is a DB's connection state.
type health struct {
	log       *slog.Logger
	down      atomic.Bool // an outage is being reported
	dead      atomic.Bool // lost with NoReconnect
	noRecon   bool
	stopPing  chan struct{}
	closeOnce sync.Once
}

// IsConnError reports whether err says the connection to the server
// failed (refused, reset, closed, timed out, server gone away or
// shutting down) rather than that a statement was wrong.
func IsConnError(err error) bool {
	if err == nil {
		return false
	}
	var ne net.Error
	var op *net.OpError
	var me *gomysql.MySQLError
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, ErrNoReconnect), errors.Is(err, driver.ErrBadConn), errors.Is(err, gomysql.ErrInvalidConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ENOENT),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &op), errors.As(err, &ne):
		return true
	case errors.As(err, &me):
		// ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED, CR_SERVER_GONE_ERROR,
		// CR_SERVER_LOST.
		switch me.Number {
		case 1053, 1927, 2006, 2013:
			return true
		}
	case errors.As(err, &pe):
		// 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now,
		// class 08 connection exceptions.
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || strings.HasPrefix(pe.Code, "08")
	}
	var ce *pgconn.ConnectError
	return errors.As(err, &ce)
}

// Failed reports an error of what (a statement, "ping", "begin"...): a
// connection error starts an outage, logged once with the database's
// name, and Failed returns true (the caller need not log it again);
// another error returns false.
func (d *DB) Failed(what string, err error) bool {
	if !IsConnError(err) {
		return false
	}
	if d.h.noRecon {
		d.h.dead.Store(true)
	}
	if d.h.down.CompareAndSwap(false, true) {
		msg := "database connection lost: working from memory where the module can, reconnecting at the next query"
		if d.h.noRecon {
			msg = "database connection lost: auto_reconnect is 0, queries fail from now on"
		}
		d.logger().Error(msg, "db", d.Path, "failed", what, "error", err)
	}
	return true
}

// Reported wraps err, which Failed has reported (logged once for the
// outage), so the caller's callers log it only at debug level: its
// Reported method says so.
func Reported(err error) error { return reportedErr{err} }

type reportedErr struct{ error }

func (e reportedErr) Unwrap() error  { return e.error }
func (e reportedErr) Reported() bool { return true }

// ok ends an outage.
func (d *DB) ok() {
	if d.h.down.CompareAndSwap(true, false) {
		d.logger().Info("database connection restored", "db", d.Path)
	}
}

// Down reports whether the last use of the database failed to reach it.
func (d *DB) Down() bool { return d.h.down.Load() }

func (d *DB) logger() *slog.Logger {
	if d.h.log != nil {
		return d.h.log
	}
	return slog.Default()
}

// watch registers gorm callbacks that report every statement's
// connection errors and successes, and refuse statements once the
// connection is lost with NoReconnect; and starts the periodic ping.
func (d *DB) watch(o Options) {
	d.h.log, d.h.noRecon = o.Log, o.NoReconnect
	// A dry run (PrepareRead building a statement) reaches no server.
	gate := func(db *gorm.DB) {
		if !db.DryRun && d.h.dead.Load() {
			db.AddError(ErrNoReconnect)
		}
	}
	after := func(op string) func(*gorm.DB) {
		return func(db *gorm.DB) {
			if db.DryRun {
				return
			}
			if db.Error == nil {
				d.ok()
				return
			}
			d.Failed(op+" "+db.Statement.Table, db.Error)
		}
	}
	cb := d.G.Callback()
	_ = cb.Create().Before("gorm:create").Register("kdb:gate", gate)
	_ = cb.Create().After("gorm:create").Register("kdb:health", after("insert into"))
	_ = cb.Query().Before("gorm:query").Register("kdb:gate", gate)
	_ = cb.Query().After("gorm:query").Register("kdb:health", after("select from"))
	_ = cb.Update().Before("gorm:update").Register("kdb:gate", gate)
	_ = cb.Update().After("gorm:update").Register("kdb:health", after("update"))
	_ = cb.Delete().Before("gorm:delete").Register("kdb:gate", gate)
	_ = cb.Delete().After("gorm:delete").Register("kdb:health", after("delete from"))
	_ = cb.Raw().Before("gorm:raw").Register("kdb:gate", gate)
	_ = cb.Raw().After("gorm:raw").Register("kdb:health", after("raw statement"))
	if o.PingInterval > 0 {
		if sdb, err := d.G.DB(); err == nil {
			sdb.SetConnMaxIdleTime(o.PingInterval)
		}
		d.h.stopPing = make(chan struct{})
		go d.pinger(d.h.stopPing, o.PingInterval)
	}
}

// pinger pings the server every PingInterval, so an outage (and the
// server's return) is noticed and logged without traffic.
func (d *DB) pinger(stop <-chan struct{}, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if d.h.dead.Load() {
			continue
		}
		sdb, err := d.G.DB()
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err = sdb.PingContext(ctx)
		cancel()
		if err == nil {
			d.ok()
		} else {
			d.Failed("ping", err)
		}
	}
}
