package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
)

// TestSystemdUnit parses packaging/kemi.service (every line a section, a
// comment or key=value; the keys kemi relies on present) and, when
// systemd-analyze is installed, has systemd verify it with the test's
// binary in place of /usr/local/bin/kemi.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("../../packaging/kemi.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("kemi.service:%d: %q is not key=value in a section", n, line)
			}
			keys[section+k] = v
		}
	}
	for k, want := range map[string]string{
		"[Service]Type": "notify", "[Service]ExecReload": "/bin/kill -HUP $MAINPID",
		"[Service]Restart": "on-failure", "[Install]WantedBy": "multi-user.target",
		"[Service]ExecStart": "/usr/local/bin/kemi run -f /etc/kemi/kemi.cfg",
	} {
		if keys[k] != want {
			t.Errorf("%s = %q, want %q", k, keys[k], want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: parsed only")
	}
	unit := filepath.Join(t.TempDir(), "kemi.service")
	os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/kemi", kemiBin)), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // failure guard
	defer cancel()
	if out, err := exec.CommandContext(ctx, analyze, "verify", unit).CombinedOutput(); err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestRunNotifiesSystemd runs kemi with $NOTIFY_SOCKET as systemd sets it
// for a Type=notify service: READY=1 comes once it serves, STOPPING=1 on
// SIGTERM.
func TestRunNotifiesSystemd(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := freePort(t)
	cfg := fmt.Sprintf("listen=udp:127.0.0.1:%d\nloadmodule \"sl.so\"\nloadmodule \"app_lua.so\"\nmodparam(\"app_lua\", \"load\", \"kemi.lua\")\ncfgengine \"lua\"\n", port)
	os.WriteFile(filepath.Join(dir, "kemi.cfg"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "kemi.lua"), []byte(script("1")), 0o644)
	cmd := exec.Command(kemiBin, "run", "-f", filepath.Join(dir, "kemi.cfg"), "-rpc", "-")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	read := func() string {
		buf := make([]byte, 512)
		c.SetReadDeadline(time.Now().Add(enginetest.Patience)) // failure guard
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("notify socket: %v\n%s", err, out.String())
		}
		return string(buf[:n])
	}
	if got := read(); !strings.HasPrefix(got, "READY=1\n") || !strings.Contains(got, fmt.Sprintf("MAINPID=%d", cmd.Process.Pid)) {
		t.Errorf("first notification %q", got)
	}
	if got := (&running{port: port}).ask(t); got != "v1" {
		t.Errorf("not serving after READY: %q", got)
	}
	cmd.Process.Signal(os.Interrupt)
	if got := read(); got != "STOPPING=1" {
		t.Errorf("on SIGINT: %q", got)
	}
}
