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
func Postgres(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	initdb, err := exec.LookPath("initdb")
	if err != nil {
		t.Skip("initdb not installed")
	}
	pgctl, _ := exec.LookPath("pg_ctl")
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
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=''", port, dir)
	if out, err := run(pgctl, "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	t.Cleanup(func() { run(pgctl, "-D", data, "-m", "fast", "-w", "stop").Run() })
	return fmt.Sprintf("postgres://kemi@/postgres?host=%s&port=%d&sslmode=disable", dir, port)
}
