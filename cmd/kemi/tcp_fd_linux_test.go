package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

// limitOpenFiles sets the open files limit of process pid (prlimit(2), as
// prlimit --nofile does) to n.
func limitOpenFiles(t *testing.T, pid, n int) {
	t.Helper()
	rl := syscall.Rlimit{Cur: uint64(n), Max: uint64(n)}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_NOFILE,
		uintptr(unsafe.Pointer(&rl)), 0, 0, 0); errno != 0 {
		t.Skipf("prlimit: %v", errno)
	}
}

// fdLimitFor returns the open files limit that leaves pid exactly free
// new descriptors: a new descriptor takes the lowest free number, which must
// be under the limit (descriptors above it stay open).
func fdLimitFor(t *testing.T, pid, free int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	open := map[int]bool{}
	for _, e := range ents {
		var fd int
		if _, err := fmt.Sscan(e.Name(), &fd); err == nil {
			open[fd] = true
		}
	}
	n := 0
	for free > 0 {
		if !open[n] {
			free--
		}
		n++
	}
	return n
}

// TestTCPListenerSurvivesFDExhaustion: kemi runs out of file descriptors
// while accepting TCP connections (accept4: too many open files). Once the
// connections close, a new TCP connection still gets a reply: the listener
// backed off and kept accepting (sipgo's accept loop used to return, and
// TCP never answered again).
func TestTCPListenerSurvivesFDExhaustion(t *testing.T) {
	const guard = 30 * time.Second
	dir := t.TempDir()
	// Ephemeral ports, read back from the log: nothing can take them first.
	cfg := "listen=tcp:127.0.0.1:0\nchildren=2\nloadmodule \"sl.so\"\nloadmodule \"app_lua.so\"\n" +
		"modparam(\"app_lua\", \"load\", \"kemi.lua\")\ncfgengine \"lua\"\n"
	os.WriteFile(filepath.Join(dir, "kemi.cfg"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "kemi.lua"), []byte(script("1")), 0o644)
	out := &syncBuffer{}
	cmd := exec.Command(kemiBin, "run", "-f", filepath.Join(dir, "kemi.cfg"), "-rpc", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !out.waitFor("kemi started", guard) {
		t.Fatalf("kemi did not start:\n%s", out)
	}
	addr, rpcURL := logged(out.String(), "proto=tcp addr="), logged(out.String(), "control plane\" url=")
	if addr == "" || rpcURL == "" {
		t.Fatalf("no SIP or RPC address in the log:\n%s", out)
	}
	if r := enginetest.Dial(t, "tcp", addr).Do(enginetest.Req{Method: "OPTIONS"}, guard); r.StatusCode != 200 {
		t.Fatalf("before: reply %d", r.StatusCode)
	}

	// Room for a few more descriptors only, then many more connections:
	// the kernel completes them all, kemi runs out while accepting.
	pid := cmd.Process.Pid
	limitOpenFiles(t, pid, fdLimitFor(t, pid, 4))
	var conns []net.Conn
	for i := 0; i < 40; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	if !out.waitFor("too many open files", guard) {
		t.Fatalf("kemi never ran out of descriptors:\n%s", out)
	}
	for _, c := range conns {
		c.Close()
	}

	// A new connection is answered once descriptors are free again.
	c := enginetest.Dial(t, "tcp", addr)
	if r := c.Do(enginetest.Req{Method: "OPTIONS"}, guard); r.StatusCode != 200 {
		t.Fatalf("after: reply %d", r.StatusCode)
	}
	if strings.Contains(out.String(), "listener stopped") {
		t.Fatalf("the listener stopped:\n%s", out)
	}
	res, err := jsonrpc.Call(context.Background(), rpcURL, "kemi.status", nil)
	if err != nil {
		t.Fatalf("kemi.status: %v", err)
	}
	var st struct{ Counters map[string]int64 }
	json.Unmarshal(res, &st)
	if st.Counters["tcp_accept_errors"] < 1 {
		t.Fatalf("tcp_accept_errors %d, want > 0", st.Counters["tcp_accept_errors"])
	}
	t.Logf("accept errors survived: %d", st.Counters["tcp_accept_errors"])
}
