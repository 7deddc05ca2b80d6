package kdb

import (
	"database/sql"
	"fmt"
)

// Address is a row of the permissions module's address table (table
// version 6), in its default column names.
type Address struct {
	ID     int64   `gorm:"column:id;primaryKey"`
	Grp    int     `gorm:"column:grp"`
	IPAddr string  `gorm:"column:ip_addr"`
	Mask   int     `gorm:"column:mask"`
	Port   int     `gorm:"column:port"`
	Tag    *string `gorm:"column:tag"`
}

// TableName is gorm's table name.
func (Address) TableName() string { return "address" }

// AddressColumns are the column names the permissions module reads
// (its grp_col, ip_addr_col, mask_col, port_col and tag_col).
type AddressColumns struct {
	Grp, IPAddr, Mask, Port, Tag string
}

// AddressRow is one address row as read, NULLs kept: Kamailio refuses a
// table with a NULL group, address, mask or port.
type AddressRow struct {
	Grp, Mask, Port sql.NullInt64
	IPAddr, Tag     sql.NullString
}

// Addresses reads every row of table with the columns c, in the
// database's order (Kamailio's query has no ORDER BY either).
func (d *DB) Addresses(table string, c AddressColumns) ([]AddressRow, error) {
	q := d.G.Table(table).Select([]string{c.Grp, c.IPAddr, c.Mask, c.Port, c.Tag})
	rows, err := q.Rows()
	if err != nil {
		return nil, fmt.Errorf("database %q: query table %q: %w", d.Path, table, err)
	}
	defer rows.Close()
	var out []AddressRow
	for rows.Next() {
		var r AddressRow
		if err := rows.Scan(&r.Grp, &r.IPAddr, &r.Mask, &r.Port, &r.Tag); err != nil {
			return nil, fmt.Errorf("database %q: table %q: %w", d.Path, table, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("database %q: table %q: %w", d.Path, table, err)
	}
	return out, nil
}

// permissionsTables are the permissions module's tables in db_sqlite's
// layout at 5.6.3 (utils/kamctl/db_sqlite/permissions-create.sql).
func permissionsTables() []Table {
	return []Table{
		{"trusted", 6, []string{`CREATE TABLE trusted (
    id INTEGER PRIMARY KEY NOT NULL,
    src_ip VARCHAR(50) NOT NULL,
    proto VARCHAR(4) NOT NULL,
    from_pattern VARCHAR(64) DEFAULT NULL,
    ruri_pattern VARCHAR(64) DEFAULT NULL,
    tag VARCHAR(64),
    priority INTEGER DEFAULT 0 NOT NULL
)`,
			`CREATE INDEX trusted_peer_idx ON trusted (src_ip)`,
		}},
		{"address", 6, []string{`CREATE TABLE address (
    id INTEGER PRIMARY KEY NOT NULL,
    grp INTEGER DEFAULT 1 NOT NULL,
    ip_addr VARCHAR(50) NOT NULL,
    mask INTEGER DEFAULT 32 NOT NULL,
    port SMALLINT DEFAULT 0 NOT NULL,
    tag VARCHAR(64)
)`}},
	}
}
