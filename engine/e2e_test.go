package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"kemi/engine"
	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

const routingScript = `
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.hdr.append_to_reply("X-Proto: " .. KSR.pv.get("$pr") .. "\r\n")
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_method("BOOM") then
		local t = nil
		return t.field -- runtime error
	end
	if KSR.is_method("PANIC") then
		KSR.pv.sets("$var(x)", "y")
		error({code = 1})
	end
	if KSR.is_MESSAGE() then
		KSR.sl.send_reply(202, "Accepted " .. KSR.pv.get("$rU"))
		return
	end
	KSR.sl.send_reply(405, "Method Not Allowed Here")
end
`

func TestSIPOverUDPAndTCP(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(), map[string]string{"script.lua": routingScript})
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			c := enginetest.Dial(t, proto, e.Addr(proto))
			res := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience)
			if res.StatusCode != 200 || res.Reason != "OK" {
				t.Fatalf("OPTIONS: got %d %s", res.StatusCode, res.Reason)
			}
			if h := res.GetHeader("X-Proto"); h == nil || h.Value() != proto {
				t.Fatalf("X-Proto header %v, want %s", h, proto)
			}
			if to := res.To(); to == nil || !to.Params.Has("tag") {
				t.Fatalf("reply without To tag: %v", res)
			}
			res = c.Do(enginetest.Req{Method: "MESSAGE", URI: "sip:bob@example.com"}, enginetest.Patience)
			if res.StatusCode != 202 || res.Reason != "Accepted bob" {
				t.Fatalf("MESSAGE: got %d %q", res.StatusCode, res.Reason)
			}
			res = c.Do(enginetest.Req{Method: "SUBSCRIBE"}, enginetest.Patience)
			if res.StatusCode != 405 || res.Reason != "Method Not Allowed Here" {
				t.Fatalf("SUBSCRIBE: got %d %q", res.StatusCode, res.Reason)
			}
		})
	}
}

func TestLuaErrorKeepsEngineAnswering(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(), map[string]string{"script.lua": routingScript})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	for _, m := range []string{"BOOM", "PANIC"} {
		c.Send(c.Build(enginetest.Req{Method: m}))
		if res, err := c.RecvResponse(300 * time.Millisecond); err == nil {
			t.Fatalf("%s got a reply %d: a Lua error must not reply", m, res.StatusCode)
		}
	}
	if !e.Log.WaitFor("attempt to index a non-table object", enginetest.Patience) {
		t.Fatalf("the Lua error was not logged:\n%s", e.Log)
	}
	line := 1 + strings.Count(routingScript[:strings.Index(routingScript, "return t.field")], "\n")
	if !e.Log.Contains(fmt.Sprintf("script.lua:%d:", line)) || !e.Log.Contains("stack traceback") {
		t.Fatalf("the Lua error log lacks file:line or traceback:\n%s", e.Log)
	}
	for i := 0; i < 5; i++ {
		if res := c.Do(enginetest.Req{Method: "OPTIONS"}, enginetest.Patience); res.StatusCode != 200 {
			t.Fatalf("after the errors: %d", res.StatusCode)
		}
	}
}

func TestRetransmissionWhileRoutingIsAbsorbed(t *testing.T) {
	// The handler holds the request until the test releases it (an item in "release"), so
	// the retransmissions surely arrive while the first copy is being routed, however slow
	// the machine; the 60 s guard only keeps a broken test from spinning forever.
	script := `
function ksr_request_route()
	KSR.mqueue.mq_add("seen", KSR.pv.get("$ci"), "x")
	local t0 = os.time()
	while KSR.mqueue.mq_size("release") == 0 and os.time() - t0 < 60 do end
	KSR.sl.send_reply(200, "OK")
end`
	e := enginetest.Start(t, enginetest.Config(`loadmodule "mqueue.so"`, `modparam("mqueue", "mqueue", "name=seen")`, `modparam("mqueue", "mqueue", "name=release")`),
		map[string]string{"script.lua": script})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	raw := c.Build(enginetest.Req{Method: "MESSAGE"})
	c.Send(raw)
	waitFor(t, "the handler to start", func() bool { return e.Queues().Get("seen").Len() == 1 })
	absorbed := e.SIP().Stats().Absorbed
	c.Send(raw) // retransmissions while the first copy is being routed
	c.Send(raw)
	waitFor(t, "both retransmissions to be absorbed", func() bool { return e.SIP().Stats().Absorbed-absorbed == 2 })
	if err := e.Queues().Get("release").Add("go", ""); err != nil {
		t.Fatal(err)
	}
	if res, err := c.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 200 {
		t.Fatalf("reply: %v %v", res, err)
	}
	if n := e.Queues().Get("seen").Len(); n != 1 {
		t.Fatalf("the script ran %d times for one request and its retransmissions", n)
	}
}

// waitFor polls cond until it holds, failing after enginetest.Patience (a guard against a
// hang, not a measurement).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(enginetest.Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRPCOverHTTP(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(`loadmodule "mqueue.so"`), map[string]string{"script.lua": routingScript})
	ctx := context.Background()
	res, err := jsonrpc.Call(ctx, e.RPCURL(), "core.version", nil)
	if err != nil || !strings.Contains(string(res), "kemi") {
		t.Fatalf("core.version: %s %v", res, err)
	}
	res, err = jsonrpc.Call(ctx, e.RPCURL(), "system.listMethods", nil)
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	json.Unmarshal(res, &methods)
	for _, m := range []string{"core.version", "core.uptime", "app_lua.reload", "mqueue.get_size", "system.listMethods"} {
		if !contains(methods, m) {
			t.Errorf("listMethods lacks %s: %v", m, methods)
		}
	}
	// app_lua.api_list lists the export tables' functions, as Kamailio's
	res, err = jsonrpc.Call(ctx, e.RPCURL(), "app_lua.api_list", nil)
	if err != nil {
		t.Fatal(err)
	}
	var api struct {
		Methods []struct {
			Func struct{ Module, Name string } `json:"func"`
		} `json:"methods"`
	}
	if err := json.Unmarshal(res, &api); err != nil {
		t.Fatal(err)
	}
	var fns []string
	for _, m := range api.Methods {
		fns = append(fns, m.Func.Module+"."+m.Func.Name)
	}
	for _, f := range []string{".is_INVITE", "x.exit", "pv.get", "sl.send_reply", "tm.t_relay", "rr.loose_route", "mqueue.mq_add"} {
		if !contains(fns, f) {
			t.Errorf("app_lua.api_list lacks %s", f)
		}
	}
	_, err = jsonrpc.Call(ctx, e.RPCURL(), "no.such", nil)
	if f, ok := err.(*jsonrpc.Fault); !ok || f.Code != 500 || f.Message != "Method Not Found" {
		t.Fatalf("unknown method: %v", err)
	}
}

func contains(s []string, x string) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}

// TestAPIListIsTheExportTable: app_lua.api_list answers in Kamailio's shape
// ({msize, methods: [{func: {ret, module, name, params}}]}) and lists
// exactly the functions of the export table.
func TestAPIListIsTheExportTable(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(`loadmodule "mqueue.so"`), map[string]string{"script.lua": routingScript})
	res, err := jsonrpc.Call(context.Background(), e.RPCURL(), "app_lua.api_list", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Msize   int `json:"msize"`
		Methods []struct {
			Func struct{ Ret, Module, Name, Params string } `json:"func"`
		} `json:"methods"`
	}
	if err := json.Unmarshal(res, &got); err != nil {
		t.Fatal(err)
	}
	tbl, err := engine.Exports()
	if err != nil {
		t.Fatal(err)
	}
	want := tbl.API()
	if got.Msize != len(want) || len(got.Methods) != len(want) {
		t.Fatalf("msize %d, %d methods; the table has %d", got.Msize, len(got.Methods), len(want))
	}
	for i, w := range want {
		g := got.Methods[i].Func
		if g.Ret != w.Ret || g.Module != w.Module || g.Name != w.Name || g.Params != w.Params {
			t.Fatalf("method %d = %+v, want %+v", i, g, w)
		}
	}
	var add bool
	for _, m := range got.Methods {
		f := m.Func
		add = add || (f.Module == "mqueue" && f.Name == "mq_add" && f.Ret == "int" && f.Params == "str, str, str")
	}
	if !add {
		t.Fatalf("no mqueue.mq_add (int; str, str, str) in %s", res)
	}
}
