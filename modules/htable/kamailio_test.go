package htable_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

// sideBySideScript runs a fixed sequence of KSR.htable (and KSR.pike)
// calls on a MESSAGE and answers 200 with their results, comma-joined,
// as the reason phrase: the same script runs in Kamailio 5.6 and in kemi.
const sideBySideScript = `
local H = KSR.htable
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
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
	add(H.sht_iterator_sets("it", "s9")); add(H.sht_iterator_setex("it", 0)); add(H.sht_iterator_sets("none", "x"))
	add(H.sht_iterator_seti("it", 9)); add(H.sht_iterator_rm("it")); add(H.sht_iterator_rm("it")); add(H.sht_iterator_rm("it")); H.sht_iterator_end("it")
	add(H.sht_reset("t")); add(H.sht_reset("nope"))
	KSR.pv.sets("$sht(t=>s)", "str"); KSR.pv.seti("$sht(t=>i)", 5); add(KSR.pv.get("$sht(t=>s)")); add(KSR.pv.get("$sht(t=>i)"))
	add(KSR.pv.get("$shtcn(t=>**)")); add(KSR.pv.get("$shtcn(t=>~~^S)")); add(KSR.pv.get("$shtcv(t=>eq5)")); add(KSR.pv.get("$shtcn(t=>eq5)"))
	add(KSR.pv.get("$shtcv(t=>==str)")); add(KSR.pv.get("$shtcv(t=>%~st)")); add(KSR.pv.get("$shtcv(t=>~%tr)")); add(KSR.pv.get("$shtcn(t=>~~)"))
	add(KSR.pv.get("$shtinc(i=>z)")); add(KSR.pv.get("$shtdec(t=>s)")); add(KSR.pv.get("$sht(nope=>k)"))
	local p = {}
	for i = 1, 42 do p[i] = KSR.pike.pike_check_ip("198.51.100.7") end
	add(table.concat(p, " ")); add(KSR.pike.pike_check_ip("2001:db8::1")); add(KSR.pike.pike_check_ip("x"))
	for _, ip in ipairs({"198.51.100.8", "198.51.101.1", "198.52.0.1", "10.1.2.3"}) do
		p = {}
		for i = 1, 40 do p[i] = KSR.pike.pike_check_ip(ip) end
		add(table.concat(p, " "))
	end
	KSR.sl.send_reply(200, table.concat(r, ","))
end
`

const sideBySideModparams = `modparam("htable", "htable", "t=>size=4")
modparam("htable", "htable", "i=>size=2;initval=0")
modparam("htable", "htable", "e=>autoexpire=100")
modparam("pike", "sampling_time_unit", 1000)
`

// kamailio starts Kamailio 5.6 on a free loopback port with the modules,
// the modparam lines and script.lua, and returns a client that has had its
// first 200 to OPTIONS; it skips the test without Kamailio.
func kamailio(t *testing.T, mods []string, params, script string) *enginetest.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	kam, err := exec.LookPath("kamailio")
	if err != nil {
		t.Skip("kamailio not installed")
	}
	mpath := "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
	loads := ""
	for _, m := range append([]string{"sl", "pv"}, append(mods, "app_lua")...) {
		if _, err := os.Stat(filepath.Join(mpath, m+".so")); err != nil {
			t.Skipf("kamailio module %s not found in %s", m, mpath)
		}
		loads += fmt.Sprintf("loadmodule %q\n", m+".so")
	}
	dir := t.TempDir()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	c.Close()
	enginetest.Files(t, dir, map[string]string{
		"script.lua": script,
		"kamailio.cfg": fmt.Sprintf(`#!KAMAILIO
debug=1
log_stderror=yes
children=1
listen=udp:127.0.0.1:%d
disable_tcp=yes
mpath=%q
%s
%s
modparam("app_lua", "load", %q)
cfgengine "lua"
`, port, mpath, loads, params, filepath.Join(dir, "script.lua")),
	})
	run := filepath.Join(dir, "run")
	os.Mkdir(run, 0o755)
	klog := &bytes.Buffer{}
	cmd := exec.Command(kam, "-DD", "-E", "-f", filepath.Join(dir, "kamailio.cfg"), "-Y", run,
		"-P", filepath.Join(run, "kamailio.pid"), "-w", "/", "-m", "64", "-M", "8")
	cmd.Stdout, cmd.Stderr = klog, klog
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
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		kc.Send(kc.Build(enginetest.Req{Method: "OPTIONS"}))
		if res, err := kc.RecvResponse(300 * time.Millisecond); err == nil && res.StatusCode == 200 {
			return kc
		}
	}
	t.Fatalf("kamailio did not answer:\n%s", klog.String())
	return nil
}

// TestSideBySideKamailio runs sideBySideScript in Kamailio 5.6 and in kemi
// and compares the results, call by call.
func TestSideBySideKamailio(t *testing.T) {
	kc := kamailio(t, []string{"htable", "pike"}, sideBySideModparams, sideBySideScript)
	e := enginetest.Start(t, enginetest.Config(`loadmodule "htable.so"`, `loadmodule "pike.so"`, sideBySideModparams),
		map[string]string{"script.lua": sideBySideScript})
	kemiRes := enginetest.Dial(t, "udp", e.Addr("udp")).Do(enginetest.Req{Method: "MESSAGE"}, 5*time.Second)
	kamRes := kc.Do(enginetest.Req{Method: "MESSAGE"}, 5*time.Second)
	if kemiRes == nil || kamRes == nil {
		t.Fatalf("no answer: kemi %v, kamailio %v", kemiRes, kamRes)
	}
	k, m := strings.Split(kamRes.Reason, ","), strings.Split(kemiRes.Reason, ",")
	if len(k) != len(m) {
		t.Fatalf("kamailio gave %d results, kemi %d:\nkamailio %s\nkemi     %s", len(k), len(m), kamRes.Reason, kemiRes.Reason)
	}
	for i := range k {
		if k[i] != m[i] {
			t.Errorf("result %d: kamailio %q, kemi %q", i+1, k[i], m[i])
		}
	}
	t.Logf("%d results agree: %s", len(k), kamRes.Reason)
}

// rpcScript runs the JSON-RPC request of the X-RPC header with
// jsonrpcs's jsonrpc_exec and answers 200 with the reply, on one line, as
// the reason phrase (Kamailio side of TestRPCSideBySideKamailio); with
// "X-Pike: <ip> <n>" it checks ip n times with pike_check_ip.
const rpcScript = `
function ksr_request_route()
	local pk = KSR.hdr.get("X-Pike")
	if pk ~= nil then
		local ip, n = string.match(pk, "(%S+) (%d+)")
		for _ = 1, tonumber(n) do KSR.pike.pike_check_ip(ip) end
		KSR.sl.send_reply(200, "OK")
		return
	end
	local req = KSR.hdr.get("X-RPC")
	if req == nil then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.jsonrpcs.exec(req)
	local body = KSR.pv.get("$jsonrpl(body)") or "none"
	KSR.sl.send_reply(200, (string.gsub(body, "[\r\n\t]", "")))
end
`

// TestRPCSideBySideKamailio sends the same htable.* commands to Kamailio
// 5.6 (through jsonrpc_exec) and to kemi's JSON-RPC server, one after the
// other, and compares the results and faults.
func TestRPCSideBySideKamailio(t *testing.T) {
	params := `modparam("htable", "htable", "t=>size=4")
modparam("htable", "htable", "e=>autoexpire=100;size=2")
`
	params += `modparam("pike", "sampling_time_unit", 1000)
modparam("pike", "reqs_density_per_unit", 5)
`
	kc := kamailio(t, []string{"htable", "pike", "jsonrpcs"}, params+`modparam("jsonrpcs", "transport", 0)`, rpcScript)
	e := enginetest.Start(t, enginetest.Config(`loadmodule "htable.so"`, `loadmodule "pike.so"`, params), map[string]string{"script.lua": rpcScript})
	kemi := enginetest.Dial(t, "udp", e.Addr("udp"))
	for _, pk := range []string{"198.51.100.7 9", "198.51.100.8 6", "203.0.113.1 5", "2001:db8::1 30"} {
		for _, c := range []*enginetest.Client{kc, kemi} {
			if r := c.Do(enginetest.Req{Method: "MESSAGE", Headers: []string{"X-Pike: " + pk}}, 5*time.Second); r == nil || r.StatusCode != 200 {
				t.Fatalf("X-Pike %s: %v", pk, r)
			}
		}
	}
	calls := []struct {
		method string
		params []any
	}{
		{"htable.get", []any{"t", "k"}},
		{"htable.sets", []any{"t", "k", "v"}},
		{"htable.seti", []any{"t", "n", 5}},
		{"htable.seti", []any{"t", "s", "12"}},
		{"htable.get", []any{"t", "k"}},
		{"htable.get", []any{"t", "n"}},
		{"htable.get", []any{"nope", "k"}},
		{"htable.get", []any{"t"}},
		{"htable.sets", []any{"t", "k"}},
		{"htable.seti", []any{"t", "k", "x"}},
		{"htable.dump", []any{"t"}},
		{"htable.dump", []any{"e"}},
		{"htable.dump", []any{"nope"}},
		{"htable.dump", nil},
		{"htable.delete", []any{"t", "k"}},
		{"htable.delete", []any{"t", "k"}},
		{"htable.delete", []any{"nope", "k"}},
		{"htable.delete", []any{"t"}},
		{"htable.setxs", []any{"e", "a", "x", 100}},
		{"htable.setxi", []any{"e", "b", 3, 100}},
		{"htable.setex", []any{"e", "a", 0}},
		{"htable.get", []any{"e", "a"}},
		{"htable.setxs", []any{"nope", "a", "x", 1}},
		{"htable.setex", []any{"nope", "a", 1}},
		{"htable.listTables", nil},
		{"htable.stats", nil},
		{"htable.flush", []any{"t"}},
		{"htable.flush", []any{"nope"}},
		{"htable.dump", []any{"t"}},
		{"htable.reload", []any{"t"}},
		{"htable.store", []any{"t"}},
		{"pike.top", nil},
		{"pike.top", []any{"ALL"}},
		{"pike.list", []any{"warm"}},
		{"pike.top", []any{"nothing"}},
	}
	for i, c := range calls {
		req, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": c.method, "params": c.params, "id": 1})
		if c.params == nil {
			req, _ = json.Marshal(map[string]any{"jsonrpc": "2.0", "method": c.method, "id": 1})
		}
		kres := kc.Do(enginetest.Req{Method: "MESSAGE", Headers: []string{"X-RPC: " + string(req)}}, 5*time.Second)
		if kres == nil {
			t.Fatalf("%s: kamailio did not answer", req)
		}
		var kam struct {
			Result any
			Error  *struct {
				Code    int
				Message string
			}
		}
		if err := json.Unmarshal([]byte(kres.Reason), &kam); err != nil {
			t.Fatalf("%s: kamailio replied %q: %v", req, kres.Reason, err)
		}
		kemiRaw, err := jsonrpc.Call(context.Background(), e.RPCURL(), c.method, c.params)
		var f *jsonrpc.Fault
		switch {
		case errors.As(err, &f):
			if kam.Error == nil || kam.Error.Code != f.Code || kam.Error.Message != f.Message {
				t.Errorf("call %d %s: kamailio %s, kemi fault %d %q", i+1, req, kres.Reason, f.Code, f.Message)
			}
		case err != nil:
			t.Fatalf("%s: kemi: %v", req, err)
		default:
			var got any
			json.Unmarshal(kemiRaw, &got)
			if strings.HasPrefix(c.method, "pike.") {
				// expires is seconds left by each engine's tick count: a
				// second apart at most.
				if d := expiresSkew(kam.Result, got); d > 1 {
					t.Errorf("call %d %s: expires %d s apart", i+1, req, d)
				}
			}
			if kam.Error != nil || !reflect.DeepEqual(kam.Result, got) {
				t.Errorf("call %d %s:\nkamailio %s\nkemi     %s", i+1, req, kres.Reason, kemiRaw)
			}
		}
	}
}

// expiresSkew zeroes the "expires" of pike.top items in a and b and
// returns the largest difference it found.
func expiresSkew(a, b any) int {
	items := func(v any) []any {
		m, _ := v.(map[string]any)
		l, _ := m["list"].([]any)
		return l
	}
	la, lb := items(a), items(b)
	skew := 0
	for i := range la {
		ia, _ := la[i].(map[string]any)
		if i < len(lb) {
			ib, _ := lb[i].(map[string]any)
			ea, _ := ia["expires"].(float64)
			eb, _ := ib["expires"].(float64)
			skew = max(skew, int(max(ea-eb, eb-ea)))
			ib["expires"] = 0.0
		}
		ia["expires"] = 0.0
	}
	return skew
}
