// Package kdb is kemi's database layer for modules that keep Kamailio's
// tables (usrloc's location, auth_db's subscriber): it opens a module's
// db_url through gorm, creates Kamailio's tables in Kamailio 5.6's exact
// layout (utils/kamctl/db_sqlite/*-create.sql at 5.6.3) with their
// version rows, as `kamdbctl create` does, and holds the gorm models the
// modules query with. This package is the only one of those modules that
// knows gorm.
//
// sqlite:// URLs ("sqlite:///abs/path.db", "sqlite://relative.db" or a
// plain path), postgres:// URLs (db_postgres's, read by pgx) and mysql://
// URLs (db_mysql's, MySQL or MariaDB, mysql.go) are served. A lost
// connection is logged once and reconnected at the next query (health.go,
// docs/database.md).
//
// Concurrency: a DB is safe for concurrent use (gorm's pool, one SQLite
// connection).
package kdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	neturl "net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
	"gorm.io/gorm/logger"
)

// gormConfig is how kdb opens every database: no SQL log, and no
// transaction around a single statement (gorm's default wraps each Create
// and Update in BEGIN/COMMIT: two more round trips per accounting row or
// contact than Kamailio's db modules make; kdb opens its own transactions
// where several statements must be atomic).
func gormConfig() *gorm.Config {
	return &gorm.Config{Logger: logger.Discard, SkipDefaultTransaction: true}
}

// TimeLayout is how Kamailio's db_sqlite writes a DATETIME column: local
// time, second precision.
const TimeLayout = "2006-01-02 15:04:05"

// DB is an open Kamailio database.
type DB struct {
	Path string // the SQLite file, or the URL without its password
	G    *gorm.DB
	h    health
}

// openPostgres opens a PostgreSQL database (Kamailio's db_postgres URL,
// which pgx reads as it is) and checks it takes writes.
func openPostgres(url string) (*DB, error) {
	name := url
	if u, err := neturl.Parse(url); err == nil {
		name = u.Redacted()
	}
	g, err := gorm.Open(postgres.Open(url), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("open postgres %q: %w", name, err)
	}
	d := &DB{Path: name, G: g}
	var ro string
	if err := g.Raw("SHOW transaction_read_only").Row().Scan(&ro); err != nil {
		d.Close()
		return nil, fmt.Errorf("open postgres %q: %w", name, err)
	}
	if ro == "on" {
		d.Close()
		return nil, fmt.Errorf("open postgres %q: the database is read-only", name)
	}
	return d, nil
}

// Open opens the existing database at url and proves it can be written:
// a missing, read-only or unusable database fails here, naming the file
// (Kamailio's db_sqlite does not create databases either).
func Open(url string) (*DB, error) { return open(url, false, Options{}) }

// OpenWith opens the existing database at url as Open does, with the
// connection settings o (the db_mysql or db_postgres module's).
func OpenWith(url string, o Options) (*DB, error) { return open(url, false, o) }

// Create opens the database at url as Open does, creating the SQLite
// file when it is missing (kemi db init).
func Create(url string) (*DB, error) { return open(url, true, Options{}) }

// Resolve makes a relative sqlite path of url relative to the directory
// of the configuration file cfg, as app_lua's load is: the same
// configuration works from any working directory.
func Resolve(url, cfg string) string {
	if cfg == "" {
		return url
	}
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok || !strings.EqualFold(scheme, "sqlite") || rest == "" || filepath.IsAbs(rest) || strings.HasPrefix(rest, "file:") {
		return url
	}
	return scheme + "://" + filepath.Join(filepath.Dir(cfg), rest)
}

// Scheme is the driver url names: "mysql", "postgres" or "sqlite" (a
// plain path too).
func Scheme(url string) string {
	scheme, _, ok := strings.Cut(url, "://")
	if !ok || strings.ContainsAny(scheme, `/\`) {
		return "sqlite"
	}
	switch s := strings.ToLower(scheme); s {
	case "postgresql":
		return "postgres"
	default:
		return s
	}
}

func open(url string, create bool, o Options) (*DB, error) {
	d, err := openDB(url, create, o)
	if err != nil {
		return nil, err
	}
	d.watch(o)
	return d, nil
}

func openDB(url string, create bool, o Options) (*DB, error) {
	path := url
	if scheme, rest, ok := strings.Cut(url, "://"); ok && !strings.ContainsAny(scheme, `/\`) {
		switch strings.ToLower(scheme) {
		case "sqlite":
			path = rest
		case "postgres", "postgresql":
			return openPostgres(url)
		case "mysql":
			return openMySQL(url, o)
		default:
			return nil, fmt.Errorf("open db_url: unsupported url scheme %q, want sqlite, mysql or postgres", scheme)
		}
	}
	if path == "" {
		return nil, errors.New("open db_url: empty sqlite path")
	}
	// Kamailio's own absolute form, "sqlite:////abs/path.db", is the
	// same file.
	if strings.HasPrefix(path, "//") && !strings.Contains(path, "?") {
		path = filepath.Clean(path)
	}
	fi, err := os.Stat(path)
	if err != nil && !create && !strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite %q: %w (create it with `kemi db init`)", path, err)
	}
	if err == nil && fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %q: the database is read-only: %w", path, err)
		}
		f.Close()
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	g, err := gorm.Open(sqlite.Open(path+sep+"_busy_timeout=5000&_txlock=immediate"), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	sdb, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	sdb.SetMaxOpenConns(1)
	var v int
	if err := g.Raw("PRAGMA user_version").Row().Scan(&v); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open sqlite %q: not a usable database: %w", path, err)
	}
	// A write rolled back proves the file can be
	// written without changing it.
	err = g.Connection(func(c *gorm.DB) error {
		if err := c.Exec("BEGIN IMMEDIATE").Error; err != nil {
			return err
		}
		err := c.Exec(fmt.Sprintf("PRAGMA user_version = %d", v)).Error
		if e := c.Exec("ROLLBACK").Error; err == nil {
			err = e
		}
		return err
	})
	if err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open sqlite %q: the database is read-only: %w", path, err)
	}
	return &DB{Path: path, G: g}, nil
}

// Close closes the database.
func (d *DB) Close() error {
	if d.h.stopPing != nil {
		d.h.closeOnce.Do(func() { close(d.h.stopPing) })
	}
	sdb, err := d.G.DB()
	if err != nil {
		return err
	}
	return sdb.Close()
}

// Version is a row of Kamailio's version table.
type Version struct {
	ID           int64  `gorm:"column:id;primaryKey"`
	Name         string `gorm:"column:table_name"`
	TableVersion int    `gorm:"column:table_version"`
}

// TableName is gorm's table name.
func (Version) TableName() string { return "version" }

// Location is a row of usrloc's location table (table version 9).
type Location struct {
	ID           int64   `gorm:"column:id;primaryKey"`
	Ruid         string  `gorm:"column:ruid"`
	Username     string  `gorm:"column:username"`
	Domain       *string `gorm:"column:domain"`
	Contact      string  `gorm:"column:contact"`
	Received     *string `gorm:"column:received"`
	Path         *string `gorm:"column:path"`
	Expires      Time    `gorm:"column:expires"`
	Q            float64 `gorm:"column:q"`
	Callid       string  `gorm:"column:callid"`
	Cseq         int     `gorm:"column:cseq"`
	LastModified Time    `gorm:"column:last_modified"`
	Flags        int     `gorm:"column:flags"`
	Cflags       int     `gorm:"column:cflags"`
	UserAgent    string  `gorm:"column:user_agent"`
	Socket       *string `gorm:"column:socket"`
	Methods      *int64  `gorm:"column:methods"`
	Instance     *string `gorm:"column:instance"`
	RegID        int     `gorm:"column:reg_id"`
	ServerID     int     `gorm:"column:server_id"`
	ConnectionID int     `gorm:"column:connection_id"`
	Keepalive    int     `gorm:"column:keepalive"`
	Partition    int     `gorm:"column:partition"`
}

// Subscriber is a row of auth_db's subscriber table (table version 7).
type Subscriber struct {
	ID       int64  `gorm:"column:id;primaryKey"`
	Username string `gorm:"column:username"`
	Domain   string `gorm:"column:domain"`
	Password string `gorm:"column:password"`
	HA1      string `gorm:"column:ha1"`
	HA1B     string `gorm:"column:ha1b"`
}

// Time is a DATETIME column as Kamailio's db_sqlite keeps it: written as
// a Julian day number (REAL, UTC, what SQLite's julianday() gives), read
// from that or from text ("2030-05-28 21:32:15", local time, as
// kamdbctl's defaults and other writers have it).
type Time struct{ time.Time }

// julianEpoch is the Julian day of 1970-01-01T00:00:00Z.
const julianEpoch = 2440587.5

// Value writes t as a Julian day.
func (t Time) Value() (driver.Value, error) {
	return julianEpoch + float64(t.UnixNano())/float64(24*time.Hour), nil
}

// GormValue writes t as the database keeps DATETIME columns: a Julian day
// in SQLite (db_sqlite), local time in the others (a TIMESTAMP WITHOUT
// TIME ZONE, as db_postgres writes it).
func (t Time) GormValue(_ context.Context, db *gorm.DB) clause.Expr {
	if db.Dialector.Name() == "sqlite" {
		v, _ := t.Value()
		return clause.Expr{SQL: "?", Vars: []any{v}}
	}
	return clause.Expr{SQL: "?", Vars: []any{t.Local().Format(TimeLayout)}}
}

// Scan reads a Julian day, a text time or a time.
func (t *Time) Scan(v any) error {
	switch x := v.(type) {
	case float64:
		ns := (x - julianEpoch) * float64(24*time.Hour)
		t.Time = time.Unix(0, int64(math.Round(ns/1e6))*1e6)
	case int64:
		t.Time = time.Unix(0, int64(float64(x)-julianEpoch)*int64(24*time.Hour))
	case time.Time:
		// A TIMESTAMP WITHOUT TIME ZONE is local wall-clock time.
		t.Time = time.Date(x.Year(), x.Month(), x.Day(), x.Hour(), x.Minute(), x.Second(), x.Nanosecond(), time.Local)
	case []byte:
		return t.Scan(string(x))
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return t.Scan(f)
		}
		if strings.HasPrefix(x, "0000-00-00") {
			// MySQL's zero date (a DATETIME written as 0).
			t.Time = time.Time{}
			return nil
		}
		p, err := time.ParseInLocation(TimeLayout, strings.TrimSuffix(x, "Z"), time.Local)
		if err != nil {
			return fmt.Errorf("datetime %q: %w", x, err)
		}
		t.Time = p
	case nil:
		t.Time = time.Time{}
	default:
		return fmt.Errorf("datetime: unexpected %T", v)
	}
	return nil
}

// Table is one of Kamailio's tables as kamdbctl creates it.
type Table struct {
	Name    string
	Version int
	DDL     []string // CREATE TABLE then its indexes
}

// Tables are the tables kemi creates (standard, usrloc, auth_db, then
// acc and permissions: acc.go, address.go), each in db_sqlite's layout
// at 5.6.3.
func Tables() []Table {
	t := []Table{
		{"version", 1, []string{`CREATE TABLE version (
    id INTEGER PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
)`}},
		{"location", 9, []string{`CREATE TABLE location (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
)`,
			`CREATE INDEX location_account_contact_idx ON location (username, domain, contact)`,
			`CREATE INDEX location_expires_idx ON location (expires)`,
			`CREATE INDEX location_tcpcon_idx ON location (connection_id)`,
			`CREATE INDEX location_connection_idx ON location (server_id, connection_id)`,
		}},
		{"location_attrs", 1, []string{`CREATE TABLE location_attrs (
    id INTEGER PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    aname VARCHAR(64) DEFAULT '' NOT NULL,
    atype INTEGER DEFAULT 0 NOT NULL,
    avalue VARCHAR(512) DEFAULT '' NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL
)`,
			`CREATE INDEX location_attrs_account_record_idx ON location_attrs (username, domain, ruid)`,
			`CREATE INDEX location_attrs_last_modified_idx ON location_attrs (last_modified)`,
		}},
		{"subscriber", 7, []string{`CREATE TABLE subscriber (
    id INTEGER PRIMARY KEY NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT '' NOT NULL,
    password VARCHAR(64) DEFAULT '' NOT NULL,
    ha1 VARCHAR(128) DEFAULT '' NOT NULL,
    ha1b VARCHAR(128) DEFAULT '' NOT NULL,
    CONSTRAINT subscriber_account_idx UNIQUE (username, domain)
)`,
			`CREATE INDEX subscriber_username_idx ON subscriber (username)`,
		}},
	}
	return append(append(t, accTables()...), permissionsTables()...)
}

// Init creates every table of Tables that is missing, with its version
// row, in one transaction (MySQL commits each CREATE TABLE at once, so
// there a failure leaves the tables made before it); existing tables are
// left as they are. It
// returns the names of the tables it created.
func (d *DB) Init() ([]string, error) {
	var made []string
	err := d.G.Transaction(func(tx *gorm.DB) error {
		for _, t := range Tables() {
			if tx.Migrator().HasTable(t.Name) {
				continue
			}
			ddl := t.DDL
			if tx.Dialector.Name() == "mysql" {
				ddl = mysqlTable(t)
			}
			for _, s := range ddl {
				if tx.Dialector.Name() == "postgres" {
					s = strings.Replace(s, "id INTEGER PRIMARY KEY NOT NULL", "id SERIAL PRIMARY KEY NOT NULL", 1)
				}
				if err := tx.Exec(s).Error; err != nil {
					return fmt.Errorf("create table %q: %w", t.Name, err)
				}
			}
			if err := tx.Create(&Version{Name: t.Name, TableVersion: t.Version}).Error; err != nil {
				return fmt.Errorf("version row of %q: %w", t.Name, err)
			}
			made = append(made, t.Name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("init %q: %w", d.Path, err)
	}
	return made, nil
}

// CheckVersion fails unless table exists with version want in the
// version table, as Kamailio's db_check_table_version does at start.
func (d *DB) CheckVersion(table string, want int) error {
	var v Version
	err := d.G.Where("table_name = ?", table).Take(&v).Error
	if err != nil {
		return fmt.Errorf("database %q: no version row for table %q (create it with `kemi db init`): %w", d.Path, table, err)
	}
	if v.TableVersion != want {
		return fmt.Errorf("database %q: table %q has version %d, want %d", d.Path, table, v.TableVersion, want)
	}
	return nil
}

// TableName is gorm's table name.
func (Location) TableName() string { return "location" }

// TableName is gorm's table name.
func (Subscriber) TableName() string { return "subscriber" }
