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

// Trusted is a row of the permissions module's trusted table (table
// version 6), in its default column names.
type Trusted struct {
	ID          int64   `gorm:"column:id;primaryKey"`
	SrcIP       string  `gorm:"column:src_ip"`
	Proto       string  `gorm:"column:proto"`
	FromPattern *string `gorm:"column:from_pattern"`
	RuriPattern *string `gorm:"column:ruri_pattern"`
	Tag         *string `gorm:"column:tag"`
	Priority    int     `gorm:"column:priority"`
}

// TableName is gorm's table name.
func (Trusted) TableName() string { return "trusted" }

// TrustedColumns are the column names the permissions module reads (its
// source_col, proto_col, from_col, ruri_col, tag_col and priority_col).
type TrustedColumns struct {
	Src, Proto, From, Ruri, Tag, Priority string
}

// TrustedRow is one trusted row as read, NULLs kept.
type TrustedRow struct {
	Src, Proto, From, Ruri, Tag sql.NullString
	Priority                    sql.NullInt64
}

// TrustedRows reads the rows of table: every row (src == nil, in the
// database's order), or those whose source column is *src ordered by
// priority, as Kamailio's query without cache does.
func (d *DB) TrustedRows(table string, c TrustedColumns, src *string) ([]TrustedRow, error) {
	q := d.G.Table(table).Select([]string{c.Src, c.Proto, c.From, c.Ruri, c.Tag, c.Priority})
	if src != nil {
		q = q.Where(map[string]any{c.Src: *src}).Order(c.Priority)
	}
	rows, err := q.Rows()
	if err != nil {
		return nil, fmt.Errorf("database %q: query table %q: %w", d.Path, table, err)
	}
	defer rows.Close()
	var out []TrustedRow
	for rows.Next() {
		var r TrustedRow
		if err := rows.Scan(&r.Src, &r.Proto, &r.From, &r.Ruri, &r.Tag, &r.Priority); err != nil {
			return nil, fmt.Errorf("database %q: table %q: %w", d.Path, table, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("database %q: table %q: %w", d.Path, table, err)
	}
	return out, nil
}
