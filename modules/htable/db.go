package htable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// This file is the only one that knows gorm and SQLite.
//
// A table's rows are in Kamailio's htable layout (utils/kamctl/db_sqlite/
// htable-create.sql): id, key_name, key_type (0 value, 1 array element),
// value_type (0 string, 1 integer), key_value, expires (Unix seconds, read
// and written only with db_expires and autoexpire). A missing table is
// created with that layout (Kamailio fails instead).

// store is the htable database.
type store struct {
	path string
	gdb  *gorm.DB
	db   *sql.DB
	cols Columns
}

// openStore opens (creating it if needed) the SQLite database at url
// ("sqlite:///abs/path.db", "sqlite://relative.db" or a plain path) with
// journal_mode=WAL and synchronous=NORMAL, as kemi's mqueue store does, and
// checks it can be written: a read-only database fails here, naming the
// file.
func openStore(url string, cols Columns) (*store, error) {
	path := url
	if scheme, rest, ok := strings.Cut(url, "://"); ok && !strings.ContainsAny(scheme, `/\`) {
		if !strings.EqualFold(scheme, "sqlite") {
			return nil, fmt.Errorf("open db_url: unsupported url scheme %q, want sqlite", scheme)
		}
		path = rest
	}
	if path == "" {
		return nil, errors.New("open db_url: empty sqlite path")
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
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
	dsn := path + sep + "_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_txlock=immediate"
	gdb, err := gorm.Open(sqlite.Open(dsn), &gorm.Config{Logger: logger.Discard})
	if err != nil && strings.Contains(err.Error(), "readonly") {
		return nil, fmt.Errorf("open sqlite %q: the database is read-only: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	db, err := gdb.DB()
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	s := &store{path: path, gdb: gdb, db: db, cols: cols}
	var mode string
	if err := gdb.Raw("PRAGMA journal_mode").Row().Scan(&mode); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	if mode = strings.ToLower(mode); mode != "wal" && mode != "memory" {
		db.Close()
		return nil, fmt.Errorf("open sqlite %q: journal_mode is %q, want wal (is the database read-only?)", path, mode)
	}
	// A write that changes nothing proves the file (and its directory, for
	// the WAL) can be written.
	if err := gdb.Exec("PRAGMA user_version = " + strconv.Itoa(s.userVersion())).Error; err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %q: the database is read-only: %w", path, err)
	}
	return s, nil
}

func (s *store) userVersion() int {
	var v int
	_ = s.gdb.Raw("PRAGMA user_version").Row().Scan(&v)
	return v
}

func (s *store) close() error { return s.db.Close() }

func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// ensure creates the table if missing.
func (s *store) ensure(ctx context.Context, table string) error {
	if strings.ContainsRune(table, 0) {
		return errors.New("table name contains NUL")
	}
	c := s.cols
	_, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+quote(table)+` (id INTEGER PRIMARY KEY NOT NULL, `+
		quote(c.Name)+` VARCHAR(64) DEFAULT '' NOT NULL, `+
		quote(c.KeyType)+` INTEGER DEFAULT 0 NOT NULL, `+
		quote(c.ValueType)+` INTEGER DEFAULT 0 NOT NULL, `+
		quote(c.Value)+` VARCHAR(128) DEFAULT '' NOT NULL, `+
		quote(c.Expires)+` INTEGER DEFAULT 0 NOT NULL)`)
	return err
}

// load reads a table's rows as ht_db_load_table does: ordered by key name;
// key_type 1 rows are array elements name[0], name[1], ... followed by an
// integer name<suffix> holding their count; with expires (db_expires and
// autoexpire) rows already expired are skipped and the others keep their
// expiry.
func (s *store) load(ctx context.Context, t *Table, expires bool, suffix string, now int64) ([]Item, error) {
	if err := s.ensure(ctx, t.DBTable); err != nil {
		return nil, err
	}
	c := s.cols
	q := `SELECT ` + quote(c.Name) + `, ` + quote(c.KeyType) + `, ` + quote(c.ValueType) + `, ` + quote(c.Value) + `, ` + quote(c.Expires) +
		` FROM ` + quote(t.DBTable) + ` ORDER BY ` + quote(c.Name)
	rows, err := s.db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		out       []Item
		pname     string
		n         int32
		lastArray bool
	)
	flushArray := func() {
		out = append(out, Item{Name: pname + suffix, Int: n})
		pname, n = "", 0
	}
	for rows.Next() {
		var (
			name         sql.NullString
			ktype, vtype int64
			val          sql.NullString
			exp          sql.NullInt64
		)
		if err := rows.Scan(&name, &ktype, &vtype, &val, &exp); err != nil {
			return nil, err
		}
		if !name.Valid {
			return nil, errors.New("row with a NULL key name")
		}
		if !val.Valid {
			return nil, fmt.Errorf("key %q: NULL value", name.String)
		}
		it := Item{Name: name.String}
		if expires && exp.Int64 > 0 {
			if exp.Int64 < now {
				continue
			}
			it.Expire = exp.Int64
		}
		if lastArray && pname != "" && pname != name.String {
			flushArray()
		}
		lastArray, pname = ktype == 1, name.String
		if ktype == 1 {
			it.Name = fmt.Sprintf("%s[%d]", name.String, n)
			n++
		}
		if vtype == 1 {
			it.Int = str2sint(val.String)
		} else {
			it.IsStr, it.Str = true, val.String
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if lastArray {
		flushArray()
	}
	return out, nil
}

// str2sint is Kamailio's str2sint as the loader uses it (errors ignored):
// an optional sign and leading digits; anything else stops it.
func str2sint(s string) int32 {
	var n uint32
	i, neg := 0, false
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + uint32(s[i]-'0')
	}
	if neg {
		return -int32(n)
	}
	return int32(n)
}

// save replaces the table's rows with its items (ht_db_delete_records then
// ht_db_save_table), in one transaction: in an autoexpire table, items
// expired at now are left out; with db_expires their expiry is written.
func (s *store) save(ctx context.Context, t *Table, expires bool, now int64) error {
	if err := s.ensure(ctx, t.DBTable); err != nil {
		return err
	}
	c := s.cols
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+quote(t.DBTable)); err != nil {
		return err
	}
	cols := quote(c.Name) + `, ` + quote(c.KeyType) + `, ` + quote(c.ValueType) + `, ` + quote(c.Value)
	marks := `?, 0, ?, ?`
	withExp := expires && t.AutoExpire > 0
	if withExp {
		cols += `, ` + quote(c.Expires)
		marks += `, ?`
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO `+quote(t.DBTable)+` (`+cols+`) VALUES (`+marks+`)`)
	if err != nil {
		return err
	}
	defer ins.Close()
	for _, slot := range t.Snapshot() {
		for _, it := range slot.Items {
			if t.AutoExpire > 0 && it.Expire <= now {
				continue
			}
			vtype, val := 0, it.Str
			if !it.IsStr {
				vtype, val = 1, strconv.Itoa(int(it.Int))
			}
			args := []any{it.Name, vtype, val}
			if withExp {
				args = append(args, int32(it.Expire))
			}
			if _, err := ins.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("store key %q: %w", it.Name, err)
			}
		}
	}
	return tx.Commit()
}
