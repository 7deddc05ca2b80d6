package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kemi/engine/enginetest"
)

var kemiBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kemi-bin")
	if err != nil {
		panic(err)
	}
	kemiBin = filepath.Join(dir, "kemi")
	if out, err := exec.Command("go", "build", "-race", "-o", kemiBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build kemi: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func script(v string) string {
	return `function ksr_request_route() KSR.sl.send_reply(200, "v` + v + `") end` + "\n"
}

// running is a kemi process started by a test.
type running struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	port int
	rpc  string
	dir  string
}

func startKemi(t *testing.T, extraArgs ...string) *running {
	t.Helper()
	dir := t.TempDir()
	port, rpcPort := freePort(t), freePort(t)
	cfg := fmt.Sprintf("listen=udp:127.0.0.1:%d\nchildren=2\nloadmodule \"sl.so\"\nloadmodule \"app_lua.so\"\nmodparam(\"app_lua\", \"load\", \"kemi.lua\")\ncfgengine \"lua\"\n", port)
	os.WriteFile(filepath.Join(dir, "kemi.cfg"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "kemi.lua"), []byte(script("1")), 0o644)
	r := &running{out: &syncBuffer{}, port: port, rpc: fmt.Sprintf("127.0.0.1:%d", rpcPort), dir: dir}
	args := append([]string{"run", "-f", filepath.Join(dir, "kemi.cfg"), "-rpc", r.rpc}, extraArgs...)
	r.cmd = exec.Command(kemiBin, args...)
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.cmd.Process.Kill(); r.cmd.Wait() })
	if !r.out.waitFor("kemi started", enginetest.Patience) {
		t.Fatalf("kemi did not start:\n%s", r.out)
	}
	return r
}

func (r *running) ask(t *testing.T) string {
	t.Helper()
	c := enginetest.Dial(t, "udp", fmt.Sprintf("127.0.0.1:%d", r.port))
	return c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience).Reason
}

func TestRunReloadsOnSIGHUPAndStopsOnSIGTERM(t *testing.T) {
	r := startKemi(t)
	if got := r.ask(t); got != "v1" {
		t.Fatalf("got %q", got)
	}
	os.WriteFile(filepath.Join(r.dir, "kemi.lua"), []byte(script("2")), 0o644)
	r.cmd.Process.Signal(syscall.SIGHUP)
	if !r.out.waitFor("script reloaded", enginetest.Patience) {
		t.Fatalf("no reload after SIGHUP:\n%s", r.out)
	}
	if got := r.ask(t); got != "v2" {
		t.Fatalf("after SIGHUP: %q", got)
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- r.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, r.out)
		}
	case <-time.After(enginetest.Patience):
		t.Fatalf("kemi did not stop after SIGTERM:\n%s", r.out)
	}
	if !strings.Contains(r.out.String(), "stopped") {
		t.Fatalf("no graceful stop logged:\n%s", r.out)
	}
}

func TestRunWatchReloadsOnFileChange(t *testing.T) {
	r := startKemi(t, "-watch")
	os.WriteFile(filepath.Join(r.dir, "kemi.lua"), []byte(script("3")), 0o644)
	if !r.out.waitFor("reloaded after a script change", enginetest.Patience) {
		t.Fatalf("no reload after the file changed:\n%s", r.out)
	}
	if got := r.ask(t); got != "v3" {
		t.Fatalf("after the change: %q", got)
	}
	// A broken save is refused and the old script keeps answering.
	os.WriteFile(filepath.Join(r.dir, "kemi.lua"), []byte("function ksr_request_route(\n"), 0o644)
	if !r.out.waitFor("reload refused", enginetest.Patience) {
		t.Fatalf("broken script not refused:\n%s", r.out)
	}
	if got := r.ask(t); got != "v3" {
		t.Fatalf("after a broken save: %q", got)
	}
}

func TestRPCCommand(t *testing.T) {
	r := startKemi(t)
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb}
	if err := m.Run(context.Background(), []string{"rpc", "-s", r.rpc, "core.version"}); err != nil {
		t.Fatalf("rpc: %v %s", err, errb.String())
	}
	if !strings.Contains(out.String(), "kemi") {
		t.Fatalf("core.version printed %q", out.String())
	}
	out.Reset()
	// mqueue is not loaded: as in Kamailio, its RPC commands are not there.
	err := m.Run(context.Background(), []string{"rpc", "-s", r.rpc, "mqueue.get_size", "nope"})
	if err == nil || !strings.Contains(errb.String(), "error: 500 - Method Not Found") {
		t.Fatalf("fault: err=%v stderr=%q", err, errb.String())
	}
	// Nothing listening: the error says what to check.
	ln, lerr := net.Listen("tcp", "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	closed := ln.Addr().String()
	ln.Close()
	err = m.Run(context.Background(), []string{"rpc", "-s", closed, "core.version"})
	if err == nil || !strings.Contains(err.Error(), "is kemi running?") {
		t.Fatalf("rpc to a closed port: %v", err)
	}
}

func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.cfg"), []byte("loadmodule \"app_lua.so\"\nmodparam(\"app_lua\", \"load\", \"ok.lua\")\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ok.lua"), []byte(script("1")), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.cfg"), []byte("loadmodule \"app_lua.so\"\nmodparam(\"app_lua\", \"load\", \"bad.lua\")\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.lua"), []byte("function ksr_request_route()\n  x = = 1\nend\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "loop.cfg"), []byte("loadmodule \"app_lua.so\"\nmodparam(\"app_lua\", \"load\", \"loop.lua\")\nmodparam(\"app_lua\", \"load_timeout_ms\", 100)\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "loop.lua"), []byte(script("1")+"while true do end\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "route.cfg"), []byte("loadmodule \"app_lua.so\"\nrequest_route {\n}\n"), 0o644)
	tests := []struct {
		args []string
		ok   bool
		want string
	}{
		{[]string{"check", "-f", filepath.Join(dir, "ok.cfg")}, true, "ok.cfg: ok"},
		{[]string{"check"}, true, "embedded:default.cfg: ok"},
		{[]string{"check", "-f", filepath.Join(dir, "bad.cfg")}, false, "bad.lua:2"},
		{[]string{"check", "-f", filepath.Join(dir, "route.cfg")}, false, "route.cfg:2"},
		{[]string{"check", "-f", filepath.Join(dir, "loop.cfg")}, false, "script top level did not finish within 100ms (stopped at " + filepath.Join(dir, "loop.lua") + ":2)"},
		{[]string{"check", "-f", filepath.Join(dir, "missing.cfg")}, false, "missing.cfg"},
		{[]string{"version"}, true, "kemi "},
	}
	for _, tt := range tests {
		cmd := exec.Command(kemiBin, tt.args...)
		out, err := cmd.CombinedOutput()
		if (err == nil) != tt.ok || !strings.Contains(string(out), tt.want) {
			t.Errorf("kemi %s: err=%v output %q, want ok=%v containing %q", strings.Join(tt.args, " "), err, out, tt.ok, tt.want)
		}
	}
}

func TestRunEmbeddedDefault(t *testing.T) {
	// The embedded default listens on 127.0.0.1:5060: skip when it is taken.
	if c, err := net.ListenPacket("udp", "127.0.0.1:5060"); err != nil {
		t.Skip("127.0.0.1:5060 is in use")
	} else {
		c.Close()
	}
	out := &syncBuffer{}
	cmd := exec.Command(kemiBin, "run", "-rpc", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	if !out.waitFor("kemi started", enginetest.Patience) {
		t.Fatalf("no start:\n%s", out)
	}
	for _, proto := range []string{"udp", "tcp"} {
		c := enginetest.Dial(t, proto, "127.0.0.1:5060")
		if r := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); r.StatusCode != 200 {
			t.Fatalf("%s OPTIONS: %d", proto, r.StatusCode)
		}
		if r := c.Do(enginetest.Req{Method: "MESSAGE"}, enginetest.Patience); r.StatusCode != 501 {
			t.Fatalf("%s MESSAGE: %d", proto, r.StatusCode)
		}
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) waitFor(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(b.String(), s) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestCheckRefusesUnknownKSRFunctions: kemi check reads the scripts for KSR
// functions kemi lacks and exits 2 naming file:line; a wrong literal
// argument count is a warning only.
func TestCheckRefusesUnknownKSRFunctions(t *testing.T) {
	dir := t.TempDir()
	cfg := "loadmodule \"app_lua.so\"\nloadmodule \"mqueue.so\"\nmodparam(\"mqueue\", \"mqueue\", \"name=q\")\nmodparam(\"app_lua\", \"load\", \"s.lua\")\n"
	os.WriteFile(filepath.Join(dir, "k.cfg"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "s.lua"), []byte("function ksr_request_route()\n"+
		"  KSR.dispatcher.ds_select_dst(1, 4)\n"+
		"  KSR.mqueue.mq_addd(\"q\", \"k\", \"v\")\n"+
		"  KSR.mqueue.mq_add(\"q\")\n"+
		"end\n"), 0o644)
	out, err := exec.Command(kemiBin, "check", "-f", filepath.Join(dir, "k.cfg")).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2\n%s", err, out)
	}
	for _, want := range []string{
		"s.lua:2: warning: KSR.dispatcher.ds_select_dst: module dispatcher is not loaded, so KSR.dispatcher is nil and this fails if it runs",
		"s.lua:3: unknown KSR function KSR.mqueue.mq_addd (did you mean KSR.mqueue.mq_add?)",
		"s.lua:4: warning: KSR.mqueue.mq_add takes 3 arguments",
		"1 unknown KSR function(s)",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// With the unknown calls gone, the warning alone does not fail the check.
	os.WriteFile(filepath.Join(dir, "s.lua"), []byte("function ksr_request_route()\n  KSR.mqueue.mq_add(\"q\")\nend\n"), 0o644)
	if out, err := exec.Command(kemiBin, "check", "-f", filepath.Join(dir, "k.cfg")).CombinedOutput(); err != nil || !strings.Contains(string(out), "warning:") {
		t.Fatalf("warning only: err=%v\n%s", err, out)
	}
}

// TestStubsCommand: kemi stubs prints a LuaLS meta file with every KSR
// function kemi exports.
func TestStubsCommand(t *testing.T) {
	out, err := exec.Command(kemiBin, "stubs").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"---@meta", "---@class KSR.mqueue", "---@param queue string", "function KSR.mqueue.mq_add(queue, key, value) end"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("stubs lack %q", want)
		}
	}
}

// TestModulesDocIsCurrent: docs/modules.md is what `kemi stubs -md` prints
// from the export tables. Regenerate it with
// `go run ./cmd/kemi stubs -md > docs/modules.md`.
func TestModulesDocIsCurrent(t *testing.T) {
	out, err := exec.Command(kemiBin, "stubs", "-md").Output()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/modules.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != string(out) {
		t.Fatal("docs/modules.md is stale: run `go run ./cmd/kemi stubs -md > docs/modules.md`")
	}
}
