package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

// rssLimitMB is the memory the kemi child of TestMemoryHogsUnderRSSLimit
// may use. When the test runs as root and may create a memory cgroup, the
// child runs in one of that size and the kernel's OOM killer enforces it
// (kemi then derives its Go memory limit from it). In any case the test
// kills the child as soon as its resident set exceeds it, and checks its
// peak (VmHWM) at the end.
const rssLimitMB = 600

// Three Lua handlers that would each take gigabytes (string.rep of 1 GB, a
// string doubled in a loop, a table of 50 million numbers) run in a real
// kemi process held under rssLimitMB. Each is stopped with an error naming
// the memory budget, the engine answers the next request, and the queued
// items stay. Before max_mem_mb the first one already took the process over
// the limit.
func TestMemoryHogsUnderRSSLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds kemi without -race")
	}
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc: cannot measure the resident set")
	}
	dir := t.TempDir()
	// Without -race: the race detector's shadow memory would dwarf the
	// figures measured here.
	bin := filepath.Join(dir, "kemi")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build kemi: %v\n%s", err, out)
	}
	// Ephemeral ports, read back from the log: nothing can take them first.
	os.WriteFile(filepath.Join(dir, "kemi.cfg"), []byte(`listen=udp:127.0.0.1:0
children=1
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "mqueue.so"
loadmodule "app_lua.so"
modparam("mqueue", "mqueue", "name=q")
modparam("app_lua", "load", "kemi.lua")
modparam("app_lua", "max_mem_mb", 32)
cfgengine "lua"
`), 0o644)
	os.WriteFile(filepath.Join(dir, "kemi.lua"), []byte(`
function rep() hog = string.rep("x", 2^30) end
function double() hog = "x" while true do hog = hog .. hog end end
function tbl() hog = {} for i = 1, 5e7 do hog[i] = i end end
function ksr_request_route()
	local m = KSR.pv.get("$rm")
	if m == "MESSAGE" then
		KSR.mqueue.mq_add("q", KSR.pv.get("$ci"), "v")
		KSR.sl.send_reply(200, "Queued")
		return
	end
	if m == "REP" then rep() elseif m == "DOUBLE" then double() elseif m == "TABLE" then tbl() end
	KSR.sl.send_reply(200, "OK")
end`), 0o644)
	out := &syncBuffer{}
	args := []string{"run", "-f", filepath.Join(dir, "kemi.cfg"), "-rpc", "127.0.0.1:0"}
	cmd := exec.Command(bin, args...)
	procs := memoryCgroup(t, rssLimitMB)
	if procs != "" {
		// Enter the cgroup before exec: sh writes its pid, then becomes kemi.
		cmd = exec.Command("sh", append([]string{"-c", `echo $$ > "$0" && exec "$@"`, procs, bin}, args...)...)
		cmd.Env = append(os.Environ(), "GOMEMLIMIT=")
	} else {
		// The soft limit kemi would derive from a cgroup of rssLimitMB.
		cmd.Env = append(os.Environ(), fmt.Sprintf("GOMEMLIMIT=%dMiB", rssLimitMB*9/10))
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	for !out.waitFor("kemi started", 100*time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("kemi did not start:\n%s", out)
		default:
		}
	}
	sipAddr, rpcURL := logged(out.String(), "proto=udp addr="), logged(out.String(), "control plane\" url=")
	if sipAddr == "" || rpcURL == "" {
		t.Fatalf("no SIP or RPC address in the log:\n%s", out)
	}
	if procs != "" {
		if !strings.Contains(out.String(), "Go memory limit set from the cgroup") {
			t.Fatalf("no Go memory limit derived from the cgroup:\n%s", out)
		}
		t.Logf("running in memory cgroup %s", filepath.Dir(procs))
	}

	// Without a cgroup, an emulated OOM killer.
	killed := make(chan int, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for procs == "" {
			select {
			case <-stop:
				return
			case <-exited:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if rss := procStatusMB(cmd.Process.Pid, "VmRSS"); rss > rssLimitMB {
				cmd.Process.Kill()
				killed <- rss
				return
			}
		}
	}()
	alive := func(what string) {
		t.Helper()
		select {
		case rss := <-killed:
			t.Fatalf("%s: resident set reached %d MB, over the %d MB limit: killed\n%s", what, rss, rssLimitMB, out)
		case <-exited:
			t.Fatalf("%s: kemi exited (%v; in a cgroup: OOM-killed)\n%s", what, waitErr, out)
		default:
		}
	}

	c := enginetest.Dial(t, "udp", sipAddr)
	for i := 0; i < 3; i++ {
		if r := c.Do(enginetest.Req{Method: "MESSAGE"}, 5*time.Second); r.StatusCode != 200 {
			t.Fatalf("MESSAGE: %d", r.StatusCode)
		}
	}
	for _, h := range []struct{ method, fn, want string }{
		{"REP", "rep", "string.rep: a result of 1073741824 bytes exceeds the memory budget of 32 MB (max_mem_mb)"},
		{"DOUBLE", "double", "exceeding its memory budget: the heap grew by"},
		{"TABLE", "tbl", "exceeding its memory budget: the heap grew by"},
	} {
		c.Send(c.Build(enginetest.Req{Method: h.method}))
		for !out.waitFor("in function '"+h.fn+"'", 100*time.Millisecond) {
			alive(h.method)
		}
		if !strings.Contains(out.String(), h.want) {
			t.Fatalf("%s: no error naming the budget (%q):\n%s", h.method, h.want, out)
		}
		r := c.Do(enginetest.Req{Method: "OPTIONS"}, 10*time.Second)
		alive(h.method)
		if r.StatusCode != 200 {
			t.Fatalf("after %s: %d", h.method, r.StatusCode)
		}
	}
	res, err := jsonrpc.Call(context.Background(), rpcURL, "mqueue.get_size", []any{"q"})
	if err != nil {
		t.Fatal(err)
	}
	var size struct{ Size int }
	json.Unmarshal(res, &size)
	if size.Size != 3 {
		t.Fatalf("%d items queued after the hogs, want 3 (%s)", size.Size, res)
	}
	hwm := procStatusMB(cmd.Process.Pid, "VmHWM")
	alive("end")
	if hwm > rssLimitMB {
		t.Fatalf("peak resident set %d MB, over the %d MB limit", hwm, rssLimitMB)
	}
	t.Logf("peak resident set %d MB (limit %d MB), now %d MB", hwm, rssLimitMB, procStatusMB(cmd.Process.Pid, "VmRSS"))
}

// memoryCgroup creates a memory cgroup limited to mb (cgroup v1, else v2),
// removed at cleanup, and returns its cgroup.procs file; "" when it cannot
// (not root, no writable cgroup file system).
func memoryCgroup(t *testing.T, mb int) string {
	if os.Geteuid() != 0 {
		return ""
	}
	for _, c := range []struct{ root, limit string }{
		{"/sys/fs/cgroup/memory", "memory.limit_in_bytes"},
		{"/sys/fs/cgroup", "memory.max"},
	} {
		dir := filepath.Join(c.root, "kemi-test-"+enginetest.RandomID())
		if err := os.Mkdir(dir, 0o755); err != nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, c.limit), []byte(strconv.Itoa(mb<<20)), 0o644); err != nil {
			os.Remove(dir)
			continue
		}
		// Registered before the child's cleanup, so it runs after the child
		// is gone (an occupied cgroup cannot be removed).
		t.Cleanup(func() { os.Remove(dir) })
		return filepath.Join(dir, "cgroup.procs")
	}
	return ""
}

// logged returns the value after the first key (e.g. "addr=") in log.
func logged(log, key string) string {
	_, v, ok := strings.Cut(log, key)
	if !ok {
		return ""
	}
	v, _, _ = strings.Cut(v, "\n")
	v, _, _ = strings.Cut(v, " ")
	return v
}

// procStatusMB reads a kB field of /proc/pid/status in MB (0 if absent).
func procStatusMB(pid int, field string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(val), " kB"))
		return kb >> 10
	}
	return 0
}
