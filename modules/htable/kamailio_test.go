package htable_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"kemi/engine/enginetest"
)

// sideBySideScript runs a fixed sequence of KSR.htable (and KSR.pike)
// calls on each request and answers 200 with their results, comma-joined,
// as the reason phrase: the same script runs in Kamailio 5.6 and in kemi.
const sideBySideScript = `
local H = KSR.htable
function ksr_request_route()
	local r = {}
	local function add(v) r[#r + 1] = tostring(v) end
	H.sht_reset("t"); H.sht_reset("i"); H.sht_reset("e")
	add(H.sht_get("t", "k")); add(H.sht_gete("t", "k")); add(H.sht_getw("t", "k"))
	add(H.sht_get("i", "k")); add(H.sht_get("nope", "k")); add(H.sht_gete("nope", "k"))
	add(H.sht_sets("t", "k", "v")); add(H.sht_get("t", "k"))
	add(H.sht_seti("t", "n", 2147483647)); add(H.sht_inc("t", "n")); add(H.sht_get("t", "n"))
	add(H.sht_inc("t", "k")); add(H.sht_inc("t", "absent")); add(H.sht_inc("nope", "x"))
	add(H.sht_inc("i", "x")); add(H.sht_inc("i", "x")); add(H.sht_dec("i", "y"))
	add(H.sht_is_null("t", "k")); add(H.sht_is_null("t", "zz")); add(H.sht_is_null("i", "k")); add(H.sht_is_null("nope", "k"))
	add(H.sht_sets("nope", "k", "v")); add(H.sht_seti("nope", "k", 1))
	add(H.sht_setxi("e", "a", 7, 100)); add(H.sht_setxs("e", "b", "s", 100)); add(H.sht_setex("e", "a", 50))
	add(H.sht_setex("nope", "a", 5)); add(H.sht_setxi("nope", "a", 1, 1)); add(H.sht_setxs("nope", "a", "x", 1))
	add(KSR.pv.get("$shtex(e=>a)")); add(KSR.pv.get("$shtex(t=>k)"))
	add(H.sht_rm("t", "k")); add(H.sht_rm("t", "k")); add(H.sht_rm("nope", "k"))
	H.sht_sets("t", "alice", "x1"); H.sht_sets("t", "Bob", "y"); H.sht_seti("t", "carol", 3)
	add(H.sht_match_name("t", "eq", "Bob")); add(H.sht_match_name("t", "eq", "bob")); add(H.sht_match_name("t", "sw", "ali"))
	add(H.sht_match_name("t", "re", "^b")); add(H.sht_match_name("t", "xx", "a")); add(H.sht_match_name("nope", "eq", "a"))
	add(H.sht_match_str_value("t", "eq", "3")); add(H.sht_match_str_value("t", "re", "^x"))
	add(H.sht_rm_name_re("nope", "x")); add(H.sht_rm_name_re("t", "^ALI")); add(H.sht_get("t", "alice"))
	add(H.sht_rm_value_re("t", "^y")); add(H.sht_get("t", "Bob"))
	add(H.sht_rm_name("t", "sw", "car")); add(H.sht_get("t", "carol")); add(H.sht_rm_name("t", "eq", "x")); add(H.sht_rm_value("nope", "sw", "x"))
	add(H.sht_lock("t", "k")); add(H.sht_unlock("t", "k")); add(H.sht_lock("nope", "k"))
	for i = 1, 3 do H.sht_seti("t", "k" .. i, i) end
	add(H.sht_iterator_start("it", "t"))
	local n, sum = 0, 0
	while H.sht_iterator_next("it") == 1 do n = n + 1; sum = sum + KSR.pv.get("$shtitval(it)") end
	add(n); add(sum); add(H.sht_iterator_end("it")); add(H.sht_iterator_next("none"))
	H.sht_iterator_start("it", "t"); H.sht_iterator_next("it")
	add(H.sht_iterator_seti("it", 9)); add(H.sht_iterator_rm("it")); add(H.sht_iterator_rm("it")); add(H.sht_iterator_rm("it")); H.sht_iterator_end("it")
	add(H.sht_reset("t")); add(H.sht_reset("nope"))
	KSR.pv.sets("$sht(t=>s)", "str"); KSR.pv.seti("$sht(t=>i)", 5); add(KSR.pv.get("$sht(t=>s)")); add(KSR.pv.get("$sht(t=>i)"))
	add(KSR.pv.get("$shtinc(i=>z)")); add(KSR.pv.get("$shtdec(t=>s)")); add(KSR.pv.get("$sht(nope=>k)"))
	local p = {}
	for i = 1, 42 do p[i] = KSR.pike.pike_check_ip("198.51.100.7") end
	add(table.concat(p, " ")); add(KSR.pike.pike_check_ip("2001:db8::1")); add(KSR.pike.pike_check_ip("x"))
	KSR.sl.send_reply(200, table.concat(r, ","))
end
`

const sideBySideModparams = `modparam("htable", "htable", "t=>size=4")
modparam("htable", "htable", "i=>size=2;initval=0")
modparam("htable", "htable", "e=>autoexpire=100")
modparam("pike", "sampling_time_unit", 1000)
`

// TestSideBySideKamailio runs sideBySideScript in Kamailio 5.6 and in kemi
// and compares the results, call by call.
func TestSideBySideKamailio(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	kam, err := exec.LookPath("kamailio")
	if err != nil {
		t.Skip("kamailio not installed")
	}
	mpath := "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
	for _, m := range []string{"app_lua.so", "htable.so", "pike.so", "sl.so", "pv.so"} {
		if _, err := os.Stat(filepath.Join(mpath, m)); err != nil {
			t.Skipf("kamailio module %s not found in %s", m, mpath)
		}
	}
	// kemi.
	e := enginetest.Start(t, enginetest.Config(`loadmodule "htable.so"`, `loadmodule "pike.so"`, sideBySideModparams),
		map[string]string{"script.lua": sideBySideScript})
	kemiRes := enginetest.Dial(t, "udp", e.Addr("udp")).Do(enginetest.Req{Method: "OPTIONS"}, 5*time.Second)

	// Kamailio.
	dir := t.TempDir()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	enginetest.Files(t, dir, map[string]string{
		"script.lua": sideBySideScript,
		"kamailio.cfg": fmt.Sprintf(`#!KAMAILIO
debug=1
log_stderror=yes
children=1
listen=udp:127.0.0.1:%d
disable_tcp=yes
mpath=%q
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "htable.so"
loadmodule "pike.so"
loadmodule "app_lua.so"
%s
modparam("app_lua", "load", %q)
cfgengine "lua"
`, port, mpath, sideBySideModparams, filepath.Join(dir, "script.lua")),
	})
	run := filepath.Join(dir, "run")
	os.Mkdir(run, 0o755)
	var klog bytes.Buffer
	cmd := exec.Command(kam, "-DD", "-E", "-f", filepath.Join(dir, "kamailio.cfg"), "-Y", run,
		"-P", filepath.Join(run, "kamailio.pid"), "-w", "/", "-m", "64", "-M", "8")
	cmd.Stdout, cmd.Stderr = &klog, &klog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	kc := enginetest.Dial(t, "udp", fmt.Sprintf("127.0.0.1:%d", port))
	var kamReason string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && kamReason == ""; {
		kc.Send(kc.Build(enginetest.Req{Method: "OPTIONS"}))
		if res, err := kc.RecvResponse(300 * time.Millisecond); err == nil && res.StatusCode == 200 {
			kamReason = res.Reason
		}
	}
	if kamReason == "" {
		t.Fatalf("kamailio did not answer:\n%s", klog.String())
	}
	if kemiRes == nil {
		t.Fatal("kemi did not answer")
	}
	k, m := strings.Split(kamReason, ","), strings.Split(kemiRes.Reason, ",")
	if len(k) != len(m) {
		t.Fatalf("kamailio gave %d results, kemi %d:\nkamailio %s\nkemi     %s", len(k), len(m), kamReason, kemiRes.Reason)
	}
	for i := range k {
		if k[i] != m[i] {
			t.Errorf("result %d: kamailio %q, kemi %q", i+1, k[i], m[i])
		}
	}
	t.Logf("%d results agree: %s", len(k), kamReason)
}
