// Package kdbtest starts throwaway databases for tests of the modules
// that use kdb: a PostgreSQL cluster on a Unix socket (Postgres).
package kdbtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// Postgres starts a throwaway PostgreSQL cluster on a Unix socket
// and returns its URL; it skips without PostgreSQL, under -short, or as
// root without a postgres user to run it.
func Postgres(t testing.TB) string { return StartPostgres(t).URL() }

// PostgresServer is a throwaway PostgreSQL cluster a test may stop and
// start again.
type PostgresServer struct {
	t         testing.TB
	dir, data string
	port      int
	pgctl     string
	run       func(name string, args ...string) *exec.Cmd
}

// URL is the cluster's database postgres, as user kemi, on the socket.
func (p *PostgresServer) URL() string {
	return fmt.Sprintf("postgres://kemi@/postgres?host=%s&port=%d&sslmode=disable", p.dir, p.port)
}

// Start starts the cluster and waits until it takes connections.
func (p *PostgresServer) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=''", p.port, p.dir)
	if out, err := p.run(p.pgctl, "-D", p.data, "-o", opts, "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(p.dir, "log"))
		p.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the cluster (fast shutdown) and waits until it has.
func (p *PostgresServer) Stop() {
	p.run(p.pgctl, "-D", p.data, "-m", "fast", "-w", "stop").Run()
}

// StartPostgres is Postgres returning the server.
func StartPostgres(t testing.TB) *PostgresServer {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	initdb, pgctl := pgTool("initdb"), pgTool("pg_ctl")
	if initdb == "" || pgctl == "" {
		t.Skip("initdb/pg_ctl not installed (tests/run installs postgresql)")
	}
	dir, err := os.MkdirTemp("", "kdb-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	run := func(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root without a postgres user")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		run = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := run(initdb, "-D", data, "-U", "kemi", "--auth=trust", "-E", "UTF8").CombinedOutput(); err != nil {
		t.Skipf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	p := &PostgresServer{t: t, dir: dir, data: data, port: port, pgctl: pgctl, run: run}
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

// pgTool finds a PostgreSQL server program: on PATH, else in Debian's
// /usr/lib/postgresql/<version>/bin (the postgresql package does not put
// initdb and pg_ctl on PATH); "" when there is none.
func pgTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	ms, _ := filepath.Glob(filepath.Join("/usr/lib/postgresql", "*", "bin", name))
	if len(ms) == 0 {
		return ""
	}
	return ms[len(ms)-1]
}
