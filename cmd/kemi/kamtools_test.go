package main

import (
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

// kamTool runs one of Kamailio's tools from Debian's kamailio package
// (tests/run installs it), with env added; it skips when the tool is
// absent outside CI.
func kamTool(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				bin, err = filepath.Join(dir, name), nil
				break
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skipf("%s not installed (Debian's kamailio package; tests/run installs it)", name)
		}
		t.Fatalf("%s not installed", name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // failure guard
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestKamcmd drives kemi with kamcmd over the ctl module's binrpc unix
// socket, as an operator would.
func TestKamcmd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "kemi_ctl")
	enginetest.Start(t, enginetest.Config(`loadmodule "ctl.so"`, `loadmodule "mqueue.so"`,
		`modparam("ctl", "binrpc", "unix:`+sock+`")`, `modparam("mqueue", "mqueue", "name=myq")`),
		map[string]string{"script.lua": `function ksr_request_route() KSR.sl.send_reply(200, "OK") end`})
	if got := kamTool(t, nil, "kamcmd", "-s", "unix:"+sock, "core.version"); !strings.Contains(got, "kemi") {
		t.Errorf("kamcmd core.version: %q", got)
	}
	got := kamTool(t, nil, "kamcmd", "-s", "unix:"+sock, "mqueue.get_sizes")
	if !strings.Contains(got, "name: myq") || !strings.Contains(got, "size: 0") {
		t.Errorf("kamcmd mqueue.get_sizes: %q", got)
	}
	if got := kamTool(t, nil, "kamcmd", "-s", "unix:"+sock, "stats.get_statistics", "core:"); !strings.Contains(got, "core:rcv_requests = 0") {
		t.Errorf("kamcmd stats.get_statistics core: %q", got)
	}
	if got := kamTool(t, nil, "kamcmd", "-s", "unix:"+sock, "stats.get_statistics", "tmx:"); !strings.Contains(got, "tmx:UAS_transactions = 0") ||
		!strings.Contains(got, "tmx:rpl_sent = 0") {
		t.Errorf("kamcmd stats.get_statistics tmx: %q", got)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", fi, err)
	}
}

// TestKamctl drives kemi with kamctl over the jsonrpcs FIFO, and checks
// the datagram socket with a request of kamcli's shape.
func TestKamctl(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "kemi_rpc.fifo")
	enginetest.Start(t, enginetest.Config(`loadmodule "jsonrpcs.so"`, `loadmodule "mqueue.so"`,
		`modparam("jsonrpcs", "fifo_name", "`+fifo+`")`, `modparam("jsonrpcs", "dgram_socket", "`+filepath.Join(dir, "kemi_rpc.sock")+`")`,
		`modparam("mqueue", "mqueue", "name=myq")`),
		map[string]string{"script.lua": `function ksr_request_route() KSR.sl.send_reply(200, "OK") end`})
	env := []string{"RPCFIFOPATH=" + fifo}
	if got := kamTool(t, env, "kamctl", "rpc", "core.version"); !strings.Contains(got, "kemi") {
		t.Errorf("kamctl rpc core.version: %q", got)
	}
	if got := kamTool(t, env, "kamctl", "rpc", "mqueue.get_sizes"); !strings.Contains(got, `"myq"`) {
		t.Errorf("kamctl rpc mqueue.get_sizes: %q", got)
	}
	if got := kamTool(t, env, "kamctl", "stats"); !strings.Contains(got, "core:rcv_requests = ") || !strings.Contains(got, "sl:200_replies = ") {
		t.Errorf("kamctl stats: %q", got)
	}
	if got := kamTool(t, env, "kamctl", "stats", "sl"); !strings.Contains(got, "sl:200_replies = ") || strings.Contains(got, "core:") {
		t.Errorf("kamctl stats sl: %q", got)
	}
}

// TestRunLogsToSyslog runs kemi with log_stderror=no: its records reach
// the syslog socket (a test socket standing in for /dev/log) with
// log_facility and log_name, as JSON with log_engine_type=json.
func TestRunLogsToSyslog(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	port := freePort(t)
	cfg := fmt.Sprintf("listen=udp:127.0.0.1:%d\nlog_stderror=no\nlog_facility=LOG_LOCAL5\nlog_name=\"kemi-edge\"\nlog_engine_type=\"json\"\n"+
		"loadmodule \"sl.so\"\nloadmodule \"app_lua.so\"\nmodparam(\"app_lua\", \"load\", \"kemi.lua\")\ncfgengine \"lua\"\n", port)
	os.WriteFile(filepath.Join(dir, "kemi.cfg"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "kemi.lua"), []byte(script("1")), 0o644)
	cmd := exec.Command(kemiBin, "run", "-f", filepath.Join(dir, "kemi.cfg"), "-rpc", "-", "-syslog-socket", sock)
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 8192)
	for {
		c.SetReadDeadline(time.Now().Add(enginetest.Patience)) // failure guard
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no \"kemi started\" on syslog: %v; stderr:\n%s", err, stderr.String())
		}
		line := string(buf[:n])
		if !strings.Contains(line, "kemi started") {
			continue
		}
		// LOG_LOCAL5 (21) * 8 + LOG_INFO (6) = 174.
		if !strings.HasPrefix(line, "<174>") || !strings.Contains(line, " kemi-edge[") || !strings.Contains(line, `"msg":"kemi started"`) {
			t.Errorf("syslog line %q", line)
		}
		break
	}
	if s := stderr.String(); strings.Contains(s, "kemi started") {
		t.Errorf("logged to stderr too:\n%s", s)
	}
}
