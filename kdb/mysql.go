package kdb

// This file is kdb's MySQL/MariaDB side: Kamailio's db_mysql URLs opened
// through gorm's mysql driver (go-sql-driver/mysql), and the tables in
// the layout of Kamailio 5.6.3's utils/kamctl/mysql/*-create.sql.

import (
	"fmt"
	"net"
	neturl "net/url"
	"os"
	"regexp"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/driver/mysql"
	"gorm.io/gorm"
)

// MySQLSockets are where a "localhost" server's Unix socket is looked for,
// in order (Debian's MariaDB and MySQL, then the compiled-in default of
// other builds): Kamailio's db_mysql (libmysqlclient) connects to
// "localhost" through the socket, never through TCP, so kemi does the
// same; without any of them it uses TCP to localhost.
var MySQLSockets = []string{"/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/tmp/mysql.sock"}

// mysqlConfig reads Kamailio's db_mysql URL, mysql://user:pass@host[:port]/db,
// into the driver's configuration; name is the URL with the password
// redacted.
func mysqlConfig(url string, o Options) (cfg *gomysql.Config, name string, err error) {
	u, err := neturl.Parse(url)
	if err != nil {
		return nil, "mysql://…", fmt.Errorf("open db_url: bad mysql url: %w", err)
	}
	name = u.Redacted()
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" || strings.Contains(db, "/") {
		return nil, name, fmt.Errorf("open mysql %q: the url names no database (mysql://user:pass@host[:port]/db)", name)
	}
	cfg = gomysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = db
	host, port := u.Hostname(), u.Port()
	switch {
	case host == "" || host == "localhost":
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort("localhost", portOr(port))
		for _, s := range MySQLSockets {
			if fi, err := os.Stat(s); err == nil && fi.Mode()&os.ModeSocket != 0 {
				cfg.Net, cfg.Addr = "unix", s
				break
			}
		}
	default:
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(host, portOr(port))
	}
	// timeout_interval bounds a connection attempt, a read and a write,
	// as db_mysql's MYSQL_OPT_{CONNECT,READ,WRITE}_TIMEOUT.
	t := o.Timeout
	if t <= 0 {
		t = 2 * time.Second
	}
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = t, 3*t, 3*t
	// DATETIME columns are read as text (kdb.Time parses local time, as
	// db_mysql's str2time does) and written as local-time text.
	cfg.ParseTime = false
	cfg.Loc = time.Local
	cfg.InterpolateParams = true
	cfg.CheckConnLiveness = true
	cfg.Params = map[string]string{"charset": "utf8mb4,utf8"}
	return cfg, name, nil
}

// The driver's own log lines ("closing bad idle connection") are the
// pool's business: kdb reports outages itself (health.go).
func init() { _ = gomysql.SetLogger(discard{}) }

type discard struct{}

func (discard) Print(...any) {}

func portOr(p string) string {
	if p == "" {
		return "3306"
	}
	return p
}

// openMySQL opens a MySQL or MariaDB database and checks it takes writes.
func openMySQL(url string, o Options) (*DB, error) {
	cfg, name, err := mysqlConfig(url, o)
	if err != nil {
		return nil, err
	}
	g, err := gorm.Open(mysql.New(mysql.Config{DSNConfig: cfg}), gormConfig())
	if err != nil {
		return nil, fmt.Errorf("open mysql %q: %w", name, err)
	}
	d := &DB{Path: name, G: g}
	var ro int
	if err := g.Raw("SELECT @@global.read_only").Row().Scan(&ro); err != nil {
		d.Close()
		return nil, fmt.Errorf("open mysql %q: %w", name, err)
	}
	if ro != 0 {
		d.Close()
		return nil, fmt.Errorf("open mysql %q: the database is read-only", name)
	}
	return d, nil
}

// mysqlTable returns t's statements in MySQL's layout: Kamailio's own
// (mysqlDDL), or, for a table kdb has no MySQL text for, t's SQLite
// statements translated (types and index names as kamdbctl's generator
// writes them; UNSIGNED and FLOAT precisions cannot be known from them).
func mysqlTable(t Table) []string {
	if s, ok := mysqlDDL[t.Name]; ok {
		return s
	}
	out := make([]string, len(t.DDL))
	for i, s := range t.DDL {
		s = strings.Replace(s, "id INTEGER PRIMARY KEY NOT NULL", "id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL", 1)
		s = strings.ReplaceAll(s, "TIMESTAMP WITHOUT TIME ZONE", "DATETIME")
		s = strings.ReplaceAll(s, " INTEGER ", " INT(11) ")
		s = strings.ReplaceAll(s, " REAL ", " FLOAT ")
		s = strings.ReplaceAll(s, " "+t.Name+"_", " ")
		s = strings.Replace(s, "CREATE TABLE "+t.Name+" (", "CREATE TABLE `"+t.Name+"` (", 1)
		// Column names (some are reserved words: partition) and the
		// columns of keys and indexes are quoted, as Kamailio's files do.
		s = sqlColumn.ReplaceAllString(s, "$1`$2` ")
		s = sqlKeyCols.ReplaceAllStringFunc(s, func(m string) string {
			open := strings.IndexByte(m, '(')
			cols := strings.Split(m[open+1:len(m)-1], ",")
			for j, c := range cols {
				cols[j] = "`" + strings.TrimSpace(c) + "`"
			}
			return m[:open+1] + strings.Join(cols, ", ") + ")"
		})
		out[i] = s
	}
	return out
}

var (
	sqlColumn  = regexp.MustCompile(`(?m)^(\s+)([a-z_][a-z0-9_]*) `)
	sqlKeyCols = regexp.MustCompile(`(UNIQUE|ON \w+) \([^)]*\)`)
)

// mysqlDDL are the CREATE statements of Kamailio 5.6.3's
// utils/kamctl/mysql/*-create.sql for the tables of the modules kemi has
// (and those of Kamailio's basic example: acc, permissions), by table.
var mysqlDDL = map[string][]string{
	// standard-create.sql
	"version": {
		"CREATE TABLE `version` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `table_name` VARCHAR(32) NOT NULL,\n" +
			"    `table_version` INT UNSIGNED DEFAULT 0 NOT NULL,\n" +
			"    CONSTRAINT table_name_idx UNIQUE (`table_name`)\n" +
			")",
	},
	// usrloc-create.sql
	"location": {
		"CREATE TABLE `location` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `ruid` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `username` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `domain` VARCHAR(64) DEFAULT NULL,\n" +
			"    `contact` VARCHAR(512) DEFAULT '' NOT NULL,\n" +
			"    `received` VARCHAR(128) DEFAULT NULL,\n" +
			"    `path` VARCHAR(512) DEFAULT NULL,\n" +
			"    `expires` DATETIME DEFAULT '2030-05-28 21:32:15' NOT NULL,\n" +
			"    `q` FLOAT(10,2) DEFAULT 1.0 NOT NULL,\n" +
			"    `callid` VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,\n" +
			"    `cseq` INT(11) DEFAULT 1 NOT NULL,\n" +
			"    `last_modified` DATETIME DEFAULT '2000-01-01 00:00:01' NOT NULL,\n" +
			"    `flags` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `cflags` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `user_agent` VARCHAR(255) DEFAULT '' NOT NULL,\n" +
			"    `socket` VARCHAR(64) DEFAULT NULL,\n" +
			"    `methods` INT(11) DEFAULT NULL,\n" +
			"    `instance` VARCHAR(255) DEFAULT NULL,\n" +
			"    `reg_id` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `server_id` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `connection_id` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `keepalive` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `partition` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    CONSTRAINT ruid_idx UNIQUE (`ruid`)\n" +
			")",
		"CREATE INDEX account_contact_idx ON location (`username`, `domain`, `contact`)",
		"CREATE INDEX expires_idx ON location (`expires`)",
		"CREATE INDEX tcpcon_idx ON location (`connection_id`)",
		"CREATE INDEX connection_idx ON location (`server_id`, `connection_id`)",
	},
	// usrloc-create.sql
	"location_attrs": {
		"CREATE TABLE `location_attrs` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `ruid` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `username` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `domain` VARCHAR(64) DEFAULT NULL,\n" +
			"    `aname` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `atype` INT(11) DEFAULT 0 NOT NULL,\n" +
			"    `avalue` VARCHAR(512) DEFAULT '' NOT NULL,\n" +
			"    `last_modified` DATETIME DEFAULT '2000-01-01 00:00:01' NOT NULL\n" +
			")",
		"CREATE INDEX account_record_idx ON location_attrs (`username`, `domain`, `ruid`)",
		"CREATE INDEX last_modified_idx ON location_attrs (`last_modified`)",
	},
	// auth_db-create.sql
	"subscriber": {
		"CREATE TABLE `subscriber` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `username` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `domain` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `password` VARCHAR(64) DEFAULT '' NOT NULL,\n" +
			"    `ha1` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    `ha1b` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    CONSTRAINT account_idx UNIQUE (`username`, `domain`)\n" +
			")",
		"CREATE INDEX username_idx ON subscriber (`username`)",
	},
	// acc-create.sql
	"acc": {
		"CREATE TABLE `acc` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `method` VARCHAR(16) DEFAULT '' NOT NULL,\n" +
			"    `from_tag` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    `to_tag` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    `callid` VARCHAR(255) DEFAULT '' NOT NULL,\n" +
			"    `sip_code` VARCHAR(3) DEFAULT '' NOT NULL,\n" +
			"    `sip_reason` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    `time` DATETIME NOT NULL\n" +
			")",
		"CREATE INDEX callid_idx ON acc (`callid`)",
	},
	// acc-create.sql
	"acc_cdrs": {
		"CREATE TABLE `acc_cdrs` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `start_time` DATETIME DEFAULT '2000-01-01 00:00:00' NOT NULL,\n" +
			"    `end_time` DATETIME DEFAULT '2000-01-01 00:00:00' NOT NULL,\n" +
			"    `duration` FLOAT(10,3) DEFAULT 0 NOT NULL\n" +
			")",
		"CREATE INDEX start_time_idx ON acc_cdrs (`start_time`)",
	},
	// acc-create.sql
	"missed_calls": {
		"CREATE TABLE `missed_calls` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `method` VARCHAR(16) DEFAULT '' NOT NULL,\n" +
			"    `from_tag` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    `to_tag` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    `callid` VARCHAR(255) DEFAULT '' NOT NULL,\n" +
			"    `sip_code` VARCHAR(3) DEFAULT '' NOT NULL,\n" +
			"    `sip_reason` VARCHAR(128) DEFAULT '' NOT NULL,\n" +
			"    `time` DATETIME NOT NULL\n" +
			")",
		"CREATE INDEX callid_idx ON missed_calls (`callid`)",
	},
	// permissions-create.sql
	"trusted": {
		"CREATE TABLE `trusted` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `src_ip` VARCHAR(50) NOT NULL,\n" +
			"    `proto` VARCHAR(4) NOT NULL,\n" +
			"    `from_pattern` VARCHAR(64) DEFAULT NULL,\n" +
			"    `ruri_pattern` VARCHAR(64) DEFAULT NULL,\n" +
			"    `tag` VARCHAR(64),\n" +
			"    `priority` INT DEFAULT 0 NOT NULL\n" +
			")",
		"CREATE INDEX peer_idx ON trusted (`src_ip`)",
	},
	// permissions-create.sql
	"address": {
		"CREATE TABLE `address` (\n" +
			"    `id` INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL,\n" +
			"    `grp` INT(11) UNSIGNED DEFAULT 1 NOT NULL,\n" +
			"    `ip_addr` VARCHAR(50) NOT NULL,\n" +
			"    `mask` INT DEFAULT 32 NOT NULL,\n" +
			"    `port` SMALLINT(5) UNSIGNED DEFAULT 0 NOT NULL,\n" +
			"    `tag` VARCHAR(64)\n" +
			")",
	},
}
