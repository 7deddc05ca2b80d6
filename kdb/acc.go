package kdb

import (
	"fmt"
	"time"

	"gorm.io/gorm"
)

// Acc is a row of the acc module's acc table (table version 5) without
// extra columns; MissedCall is a row of missed_calls (version 4), the
// same columns.
type Acc struct {
	ID        int64  `gorm:"column:id;primaryKey"`
	Method    string `gorm:"column:method"`
	FromTag   string `gorm:"column:from_tag"`
	ToTag     string `gorm:"column:to_tag"`
	Callid    string `gorm:"column:callid"`
	SipCode   string `gorm:"column:sip_code"`
	SipReason string `gorm:"column:sip_reason"`
	Time      Time   `gorm:"column:time"`
}

// TableName is gorm's table name.
func (Acc) TableName() string { return "acc" }

// MissedCall is a row of missed_calls.
type MissedCall Acc

// TableName is gorm's table name.
func (MissedCall) TableName() string { return "missed_calls" }

// AccExtra are the extra columns Kamailio's example configuration
// (kamailio-basic-kemi.cfg, ACCDB_COMMENT) adds to acc and missed_calls
// for its db_extra, with their SQL types.
var AccExtra = []struct{ Name, Type string }{
	{"src_user", "VARCHAR(64)"},
	{"src_domain", "VARCHAR(128)"},
	{"src_ip", "VARCHAR(64)"},
	{"dst_ouser", "VARCHAR(64)"},
	{"dst_user", "VARCHAR(64)"},
	{"dst_domain", "VARCHAR(128)"},
}

// AddAccExtra adds the AccExtra columns that are missing to acc and
// missed_calls, as the example's ALTER TABLE statements do
// ("ALTER TABLE acc ADD COLUMN src_user VARCHAR(64) NOT NULL DEFAULT ”").
func (d *DB) AddAccExtra() error {
	return d.G.Transaction(func(tx *gorm.DB) error {
		for _, t := range []string{"acc", "missed_calls"} {
			for _, c := range AccExtra {
				if tx.Migrator().HasColumn(t, c.Name) {
					continue
				}
				s := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s NOT NULL DEFAULT ''", t, c.Name, c.Type)
				if err := tx.Exec(s).Error; err != nil {
					return fmt.Errorf("database %q: %s: %w", d.Path, s, err)
				}
			}
		}
		return nil
	})
}

// InsertAcc writes one accounting row to table: cols[i] = vals[i] (strings,
// as acc's db_vals are DB1_STR; a nil value is NULL) and the time column
// timeCol = at, as the database keeps DATETIME columns (Time).
func (d *DB) InsertAcc(table string, cols []string, vals []any, timeCol string, at time.Time) error {
	row := make(map[string]any, len(cols)+1)
	for i, c := range cols {
		row[c] = vals[i]
	}
	row[timeCol] = Time{at}.GormValue(nil, d.G)
	if err := d.G.Table(table).Create(row).Error; err != nil {
		return fmt.Errorf("database %q: insert into %q: %w", d.Path, table, err)
	}
	return nil
}

// accTables are the acc module's tables in db_sqlite's layout at 5.6.3
// (utils/kamctl/db_sqlite/acc-create.sql).
func accTables() []Table {
	return []Table{
		{"acc", 5, []string{`CREATE TABLE acc (
    id INTEGER PRIMARY KEY NOT NULL,
    method VARCHAR(16) DEFAULT '' NOT NULL,
    from_tag VARCHAR(128) DEFAULT '' NOT NULL,
    to_tag VARCHAR(128) DEFAULT '' NOT NULL,
    callid VARCHAR(255) DEFAULT '' NOT NULL,
    sip_code VARCHAR(3) DEFAULT '' NOT NULL,
    sip_reason VARCHAR(128) DEFAULT '' NOT NULL,
    time TIMESTAMP WITHOUT TIME ZONE NOT NULL
)`,
			`CREATE INDEX acc_callid_idx ON acc (callid)`,
		}},
		{"acc_cdrs", 2, []string{`CREATE TABLE acc_cdrs (
    id INTEGER PRIMARY KEY NOT NULL,
    start_time TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:00' NOT NULL,
    end_time TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:00' NOT NULL,
    duration REAL DEFAULT 0 NOT NULL
)`,
			`CREATE INDEX acc_cdrs_start_time_idx ON acc_cdrs (start_time)`,
		}},
		{"missed_calls", 4, []string{`CREATE TABLE missed_calls (
    id INTEGER PRIMARY KEY NOT NULL,
    method VARCHAR(16) DEFAULT '' NOT NULL,
    from_tag VARCHAR(128) DEFAULT '' NOT NULL,
    to_tag VARCHAR(128) DEFAULT '' NOT NULL,
    callid VARCHAR(255) DEFAULT '' NOT NULL,
    sip_code VARCHAR(3) DEFAULT '' NOT NULL,
    sip_reason VARCHAR(128) DEFAULT '' NOT NULL,
    time TIMESTAMP WITHOUT TIME ZONE NOT NULL
)`,
			`CREATE INDEX missed_calls_callid_idx ON missed_calls (callid)`,
		}},
	}
}
