package kdbtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// MySQLServer is the shared MariaDB server tests/mariadb.sh prepares
// (Kamailio's example user kamailio/kamailiorw on localhost).
const MySQLServer = "mysql://kamailio:kamailiorw@localhost"

// MySQL returns the URL of a fresh, empty database kemitest_<unique> on
// the shared MariaDB server (tests/mariadb.sh starts it and lets user
// kamailio make such databases), dropped when the test ends. It skips
// under -short or when no server answers (run tests/mariadb.sh as root).
func MySQL(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("uses MariaDB")
	}
	admin, err := sql.Open("mysql", "kamailio:kamailiorw@unix(/run/mysqld/mysqld.sock)/")
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.Ping(); err != nil {
		var me *gomysql.MySQLError
		if errors.As(err, &me) {
			// A server answers but refuses: it was not prepared.
			t.Fatalf("MariaDB on /run/mysqld/mysqld.sock refuses kamailio/kamailiorw (prepare it with tests/mariadb.sh as root): %v", err)
		}
		t.Skipf("no MariaDB server answers on /run/mysqld/mysqld.sock (start it with tests/mariadb.sh as root): %v", err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	name := "kemitest_" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name += "_" + hex.EncodeToString(b)
	name = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, name)
	if _, err := admin.Exec("CREATE DATABASE `" + name + "`"); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", "kamailio:kamailiorw@unix(/run/mysqld/mysqld.sock)/")
		if err == nil {
			db.Exec("DROP DATABASE IF EXISTS `" + name + "`")
			db.Close()
		}
	})
	return MySQLServer + "/" + name
}

// MariaDB is a private MariaDB server of one test, in a temporary
// directory, on its own TCP port and Unix socket, so the test can stop and
// restart it without disturbing the shared server.
type MariaDB struct {
	t              testing.TB
	dir, sock, pid string
	Port           int
	cmd            *exec.Cmd
	asRoot         bool
	exited         chan error
}

// StartMariaDB installs and starts a private MariaDB with database
// kamailio and user kamailio/kamailiorw (any host); it skips when
// MariaDB's server is not installed (tests/run installs it).
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	if testing.Short() {
		t.Skip("starts MariaDB")
	}
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		t.Skip("mariadb-install-db not installed (tests/run installs mariadb-server)")
	}
	if _, err := exec.LookPath("mariadbd"); err != nil {
		t.Skip("mariadbd not installed (tests/run installs mariadb-server)")
	}
	dir, err := os.MkdirTemp("", "kdb-mariadb-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := &MariaDB{t: t, dir: dir, sock: filepath.Join(dir, "s.sock"), pid: filepath.Join(dir, "pid"), asRoot: os.Geteuid() == 0}
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--skip-test-db", "--auth-root-authentication-method=socket"}
	if m.asRoot {
		u, err := user.Lookup("mysql")
		if err != nil {
			t.Skip("running as root without a mysql user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chmod(dir, 0o755)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--user=mysql")
	}
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	m.Start()
	t.Cleanup(m.Stop)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mariadbd log:\n%s", m.errLog())
		}
	})
	root := m.root()
	defer root.Close()
	for _, s := range []string{"CREATE DATABASE kamailio", "CREATE USER 'kamailio'@'%' IDENTIFIED BY 'kamailiorw'",
		"GRANT ALL PRIVILEGES ON kamailio.* TO 'kamailio'@'%'"} {
		if _, err := root.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return m
}

// URL is the database kamailio of the server, over TCP.
func (m *MariaDB) URL() string {
	return fmt.Sprintf("mysql://kamailio:kamailiorw@127.0.0.1:%d/kamailio", m.Port)
}

func (m *MariaDB) root() *sql.DB {
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = "root", "unix", m.sock
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		m.t.Fatal(err)
	}
	return db
}

// errLogPath is the server's error log; errLog its text so far.
func (m *MariaDB) errLogPath() string { return filepath.Join(m.dir, "err.log") }

func (m *MariaDB) errLog() []byte {
	b, _ := os.ReadFile(m.errLogPath())
	return b
}

// Start starts the server (again) and waits until it answers.
func (m *MariaDB) Start() {
	m.t.Helper()
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(m.dir, "data"), "--socket=" + m.sock,
		"--port=" + strconv.Itoa(m.Port), "--bind-address=127.0.0.1", "--pid-file=" + m.pid,
		"--log-error=" + m.errLogPath(), "--skip-log-bin", "--innodb-buffer-pool-size=16M",
		"--skip-name-resolve"}
	if m.asRoot {
		args = append(args, "--user=mysql")
	}
	m.cmd = exec.Command("mariadbd", args...)
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("mariadbd: %v", err)
	}
	exited := make(chan error, 1)
	go func(c *exec.Cmd) { exited <- c.Wait() }(m.cmd)
	cfg := gomysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.Timeout = "root", "unix", m.sock, time.Second
	deadline := time.Now().Add(60 * time.Second)
	for {
		db, _ := sql.Open("mysql", cfg.FormatDSN())
		err := db.Ping()
		db.Close()
		if err == nil {
			m.exited = exited
			return
		}
		select {
		case e := <-exited:
			m.t.Fatalf("mariadbd exited: %v\n%s", e, m.errLog())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mariadbd did not answer in 60 s: %v\n%s", err, m.errLog())
		}
	}
}

// Stop shuts the server down and waits until it has exited.
func (m *MariaDB) Stop() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.exited:
	case <-time.After(60 * time.Second):
		m.cmd.Process.Kill()
		<-m.exited
	}
	m.cmd = nil
}

// KamailioSQL is where Debian's kamailio-mysql-modules has kamdbctl's
// MySQL files (utils/kamctl/mysql/*-create.sql).
const KamailioSQL = "/usr/share/kamailio/mysql"

// LoadKamailioSQL loads Kamailio's <group>-create.sql files ("standard",
// "usrloc", "auth_db"...) into the database of url, a database on the
// shared server (MySQL), with the mariadb client, as kamdbctl create
// does. It skips without the files or the client.
func LoadKamailioSQL(t testing.TB, url string, groups ...string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(KamailioSQL, "standard-create.sql")); err != nil {
		t.Skip("Kamailio's MySQL schema not installed (tests/run installs kamailio-mysql-modules)")
	}
	client, err := exec.LookPath("mariadb")
	if err != nil {
		t.Skip("mariadb client not installed (tests/run installs mariadb-server)")
	}
	db := url[strings.LastIndexByte(url, '/')+1:]
	for _, g := range groups {
		f, err := os.Open(filepath.Join(KamailioSQL, g+"-create.sql"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(client, "--socket=/run/mysqld/mysqld.sock", "-ukamailio", "-pkamailiorw", db)
		cmd.Stdin = f
		out, err := cmd.CombinedOutput()
		f.Close()
		if err != nil {
			t.Fatalf("load %s-create.sql: %v\n%s", g, err, out)
		}
	}
}
