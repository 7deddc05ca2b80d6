package queues

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// This file is the only one that knows gorm and SQLite.

// SQLStore is a Store on a SQLite database, in Kamailio's layout: one table per queue, named
// after the queue, with the columns id (INTEGER PRIMARY KEY AUTOINCREMENT), key and val
// (TEXT NOT NULL, default empty). A missing table is created. A table created by hand without an id
// column (as Kamailio's admin guide shows) is ordered, and its rows are identified, by SQLite's
// rowid. Safe for concurrent use.
//
// gorm opens the database; statements then go through database/sql, because gorm's raw-SQL
// builder takes every '?' and '@' in the text for a placeholder, quoted identifiers included,
// and its identifier quoting splits names at '.': a queue named "a?b" or "a.b" would break.
type SQLStore struct {
	gdb  *gorm.DB
	db   *sql.DB
	path string // as given, for errors

	mu       sync.Mutex
	byName   map[string]*sqlTable // exact queue name
	byFolded map[string]*sqlTable // ASCII-lowercased: SQLite table names ignore ASCII case
}

type sqlTable struct {
	queue    string
	name     string // quoted identifier
	load     string
	ins, del *sql.Stmt
}

// OpenSQLite opens (creating it if needed) the SQLite database at url: "sqlite:///abs/path.db",
// "sqlite://relative.db" or a plain path. Every connection uses journal_mode=WAL and
// synchronous=NORMAL (checked here): a committed write survives a crash of the process, not a
// power loss.
func OpenSQLite(url string) (*SQLStore, error) {
	path, err := sqlitePath(url)
	if err != nil {
		return nil, err
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	dsn := path + sep + "_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_txlock=immediate"
	gdb, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	db, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	// One connection: writes are serialised by SQLite anyway, and a pool would make writers of
	// different queues wait on SQLite's sleeping busy handler (and give ":memory:" one
	// database per connection).
	db.SetMaxOpenConns(1)
	s := &SQLStore{gdb: gdb, db: db, path: path, byName: map[string]*sqlTable{}, byFolded: map[string]*sqlTable{}}
	if err := s.checkPragmas(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	return s, nil
}

func sqlitePath(url string) (string, error) {
	if scheme, rest, ok := strings.Cut(url, "://"); ok && !strings.ContainsAny(scheme, `/\`) {
		if !strings.EqualFold(scheme, "sqlite") {
			// Only the scheme: the rest of a mysql:// url may hold a password.
			return "", fmt.Errorf("open store: unsupported url scheme %q, want sqlite", scheme)
		}
		url = rest
	}
	if url == "" {
		return "", errors.New("open store: empty sqlite path")
	}
	return url, nil
}

func (s *SQLStore) checkPragmas() error {
	var mode string
	var syncMode int
	if err := s.gdb.Raw("PRAGMA journal_mode").Row().Scan(&mode); err != nil {
		return err
	}
	if err := s.gdb.Raw("PRAGMA synchronous").Row().Scan(&syncMode); err != nil {
		return err
	}
	if mode = strings.ToLower(mode); mode != "wal" && mode != "memory" {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	if syncMode != 1 {
		return fmt.Errorf("synchronous is %d, want 1 (NORMAL)", syncMode)
	}
	return nil
}

// table returns the queue's table, creating it if missing.
func (s *SQLStore) table(ctx context.Context, queue string) (*sqlTable, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.byName[queue]; t != nil {
		return t, nil
	}
	folded := strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, queue)
	if t := s.byFolded[folded]; t != nil {
		return nil, fmt.Errorf("table %q is already queue %q's: sqlite table names ignore case", queue, t.queue)
	}
	if strings.ContainsRune(queue, 0) {
		return nil, errors.New("table name contains NUL")
	}
	t := &sqlTable{queue: queue, name: `"` + strings.ReplaceAll(queue, `"`, `""`) + `"`}
	_, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+t.name+
		` (id INTEGER PRIMARY KEY AUTOINCREMENT, "key" TEXT NOT NULL DEFAULT '', val TEXT NOT NULL DEFAULT '')`)
	if err != nil {
		return nil, fmt.Errorf("create table: %w", err)
	}
	cols, err := s.columns(ctx, queue)
	if err != nil {
		return nil, err
	}
	if !cols["key"] || !cols["val"] {
		return nil, errors.New(`table lacks a "key" or "val" column`)
	}
	order := "rowid"
	if cols["id"] {
		order = `"id", rowid` // Kamailio orders by id
	}
	t.load = `SELECT rowid, "key", val FROM ` + t.name + ` ORDER BY ` + order
	if t.ins, err = s.db.PrepareContext(ctx, `INSERT INTO `+t.name+` ("key", val) VALUES (?, ?)`); err != nil {
		return nil, fmt.Errorf("prepare insert: %w", err)
	}
	if t.del, err = s.db.PrepareContext(ctx, `DELETE FROM `+t.name+` WHERE rowid = ?`); err != nil {
		_ = t.ins.Close()
		return nil, fmt.Errorf("prepare delete: %w", err)
	}
	s.byName[queue], s.byFolded[folded] = t, t
	return t, nil
}

// columns returns the table's column names, lowercased.
func (s *SQLStore) columns(ctx context.Context, table string) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("read columns: %w", err)
		}
		cols[strings.ToLower(c)] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read columns: %w", err)
	}
	return cols, nil
}

// Load implements Store. A NULL key or val is an error, as it aborts Kamailio's start.
func (s *SQLStore) Load(ctx context.Context, queue string) ([]Record, error) {
	t, err := s.table(ctx, queue)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, t.load)
	if err != nil {
		return nil, fmt.Errorf("select rows: %w", err)
	}
	defer rows.Close()
	var recs []Record
	for rows.Next() {
		var id int64
		var k, v sql.NullString
		if err := rows.Scan(&id, &k, &v); err != nil {
			return nil, fmt.Errorf("read row: %w", err)
		}
		if !k.Valid || !v.Valid {
			return nil, fmt.Errorf("row %d: key or val is NULL", id)
		}
		recs = append(recs, Record{id, Item{k.String, v.String}})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read rows: %w", err)
	}
	return recs, nil
}

// inTx runs fn in one transaction on t.
func (s *SQLStore) inTx(ctx context.Context, queue string, fn func(*sql.Tx, *sqlTable) error) error {
	t, err := s.table(ctx, queue)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx, t); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func insertAll(ctx context.Context, tx *sql.Tx, t *sqlTable, items []Item) error {
	ins := tx.StmtContext(ctx, t.ins)
	for _, it := range items {
		if _, err := ins.ExecContext(ctx, it.Key, it.Val); err != nil {
			return fmt.Errorf("insert row: %w", err)
		}
	}
	return nil
}

// Replace implements Store.
func (s *SQLStore) Replace(ctx context.Context, queue string, items []Item) error {
	return s.inTx(ctx, queue, func(tx *sql.Tx, t *sqlTable) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.name); err != nil {
			return fmt.Errorf("delete rows: %w", err)
		}
		return insertAll(ctx, tx, t, items)
	})
}

// Append implements Store.
func (s *SQLStore) Append(ctx context.Context, queue string, items []Item) error {
	return s.inTx(ctx, queue, func(tx *sql.Tx, t *sqlTable) error {
		return insertAll(ctx, tx, t, items)
	})
}

// DeleteIDs implements Store.
func (s *SQLStore) DeleteIDs(ctx context.Context, queue string, ids []int64) error {
	return s.inTx(ctx, queue, func(tx *sql.Tx, t *sqlTable) error {
		del := tx.StmtContext(ctx, t.del)
		for _, id := range ids {
			if _, err := del.ExecContext(ctx, id); err != nil {
				return fmt.Errorf("delete row %d: %w", id, err)
			}
		}
		return nil
	})
}

// Insert implements Store.
func (s *SQLStore) Insert(ctx context.Context, queue string, it Item) (int64, error) {
	t, err := s.table(ctx, queue)
	if err != nil {
		return 0, err
	}
	res, err := t.ins.ExecContext(ctx, it.Key, it.Val)
	if err != nil {
		return 0, fmt.Errorf("insert row: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("insert row: %w", err)
	}
	return id, nil
}

// Delete implements Store.
func (s *SQLStore) Delete(ctx context.Context, queue string, id int64) error {
	t, err := s.table(ctx, queue)
	if err != nil {
		return err
	}
	if _, err := t.del.ExecContext(ctx, id); err != nil {
		return fmt.Errorf("delete row %d: %w", id, err)
	}
	return nil
}

// CheckWrite implements Store. It begins a transaction, which takes SQLite's write lock at once
// (BEGIN IMMEDIATE), inserts an empty row into the queue's table and rolls back: nothing is
// written and the AUTOINCREMENT sequence does not move. A read-only file, directory or
// connection ("file:...?mode=ro"), a write lock held by another process past the busy timeout,
// or a table that refuses the insert (a NOT NULL column without a default) fail it, with an
// error naming the file.
func (s *SQLStore) CheckWrite(ctx context.Context, queue string) error {
	t, err := s.table(ctx, queue)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite %q is not writable: begin: %w", s.path, err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.StmtContext(ctx, t.ins).ExecContext(ctx, "", ""); err != nil {
		return fmt.Errorf("sqlite %q is not writable: insert row: %w", s.path, err)
	}
	return nil
}

// Close implements Store.
func (s *SQLStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, t := range s.byName {
		errs = append(errs, t.ins.Close(), t.del.Close())
	}
	clear(s.byName)
	clear(s.byFolded)
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}
