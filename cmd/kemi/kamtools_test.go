package main

import (
	"context"
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
