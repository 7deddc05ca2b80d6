package kdb

// This file is the hot-path read: a query a module runs per message
// (auth_db's subscriber lookup on every auth_check), built once by gorm
// for the database's dialect and then run through database/sql without
// gorm's per-call statement building and reflection. Like Kamailio's db
// modules, it reads the database on every call: nothing is cached but
// the statement text (and, in SQLite, the compiled statement).

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
)

// Arg stands in a Read's query for the argument of that index given to
// String: Where(clause.Eq{Column: ..., Value: kdb.Arg(0)}).
type Arg int

// Value makes Arg a driver.Valuer, so gorm keeps it as a bound variable.
func (a Arg) Value() (driver.Value, error) { return int64(a), nil }

// Read is a prepared single-column read. It is safe for concurrent use.
type Read struct {
	d     *DB
	table string
	sql   string
	vars  []any // gorm's bound variables: Arg placeholders and constants
	nargs int
	db    *sql.DB
	// compile is set in SQLite: stmt is the query compiled once.
	compile bool
	stmt    atomic.Pointer[sql.Stmt]
	mu      sync.Mutex // held while compiling
}

// PrepareRead builds, without running it, the query q makes of the
// table's rows, selecting column as Pluck does: the same SQL text gorm
// runs for q.Pluck(column, ...). Values in q's conditions that are Args
// are String's arguments.
func (d *DB) PrepareRead(table, column string, q func(*gorm.DB) *gorm.DB) (*Read, error) {
	var out []string
	tx := q(d.G.Session(&gorm.Session{DryRun: true}).Table(table)).Pluck(column, &out)
	if tx.Error != nil {
		return nil, fmt.Errorf("build the query of %q: %w", table, tx.Error)
	}
	sdb, err := d.G.DB()
	if err != nil {
		return nil, err
	}
	r := &Read{d: d, table: table, sql: tx.Statement.SQL.String(), vars: tx.Statement.Vars, db: sdb,
		compile: d.G.Dialector.Name() == "sqlite"}
	for _, v := range r.vars {
		if a, ok := v.(Arg); ok && int(a)+1 > r.nargs {
			r.nargs = int(a) + 1
		}
	}
	return r, nil
}

// SQL is the query's text.
func (r *Read) SQL() string { return r.sql }

// String runs the query with args in place of the Args and returns the
// first row's column: found false when there is no row. Errors are
// reported as gorm's statements' are (health.go): a connection error
// once per outage, wrapped by Reported.
func (r *Read) String(args ...any) (val string, found bool, err error) {
	if len(args) != r.nargs {
		return "", false, fmt.Errorf("query of %q: %d arguments, want %d", r.table, len(args), r.nargs)
	}
	if r.d.h.dead.Load() {
		return "", false, r.failed(ErrNoReconnect)
	}
	var vbuf [4]any
	vars := append(vbuf[:0], r.vars...)
	for i, v := range vars {
		if a, ok := v.(Arg); ok {
			vars[i] = args[a]
		}
	}
	var rows *sql.Rows
	if stmt := r.prepared(); stmt != nil {
		rows, err = stmt.QueryContext(context.Background(), vars...)
	} else {
		rows, err = r.db.QueryContext(context.Background(), r.sql, vars...)
	}
	if err != nil {
		return "", false, r.failed(err)
	}
	if rows.Next() {
		found = true
		err = rows.Scan(&val)
	}
	if e := rows.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return "", false, r.failed(err)
	}
	r.d.ok()
	return val, found, nil
}

// prepared is the compiled statement in SQLite (one connection, and
// compiling costs more than running a keyed read), nil elsewhere: the
// MySQL driver interpolates the arguments into one text query and pgx
// keeps its own statement cache, as for gorm's queries. A statement
// that does not compile (no such table) is left to the query to fail.
func (r *Read) prepared() *sql.Stmt {
	if !r.compile {
		return nil
	}
	if s := r.stmt.Load(); s != nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.stmt.Load(); s != nil {
		return s
	}
	s, err := r.db.Prepare(r.sql)
	if err != nil {
		return nil
	}
	r.stmt.Store(s)
	return s
}

// failed reports err as the health callback does for gorm's queries.
func (r *Read) failed(err error) error {
	if r.d.Failed("select from "+r.table, err) {
		return Reported(err)
	}
	return err
}

// Close frees the compiled statement.
func (r *Read) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.stmt.Swap(nil); s != nil {
		return s.Close()
	}
	return nil
}
