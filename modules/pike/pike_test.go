package pike_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/engine"
	"kemi/jsonrpc"
	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/luavm"
	"kemi/modules/pike"
	"kemi/timers"
)

// vm returns a Lua VM with KSR bound, pike provisioned with density 5 on
// a fake clock, and the log.
func vm(t *testing.T) (*luavm.VM, *timers.Fake, *bytes.Buffer, *pike.Module) {
	var log bytes.Buffer
	clock := timers.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	d := &ksr.Deps{Log: slog.New(slog.NewTextHandler(&log, nil)), Now: clock.Now, Shv: ksr.NewSharedVars(), PVs: map[string]*ksr.PV{}}
	m := pike.New()
	m.Settings().Density = 5
	m.Settings().Latency = 10
	if err := d.Provision(ksrtest.Host{D: d, Clk: clock}, m); err != nil {
		t.Fatal(err)
	}
	tab, err := ksr.NewTable(ksr.Core(), m)
	if err != nil {
		t.Fatal(err)
	}
	d.Table = tab
	g, err := luavm.Build(1, []string{"t.lua"}, func(string) ([]byte, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	var cur luavm.Current
	cur.Store(g)
	env := ksr.NewEnv(d, "w", "test", 0)
	v, err := luavm.New(&cur, luavm.Options{Name: "w", Init: func(L *lua.LState) error { ksr.Register(L, env); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v, clock, &log, m
}

func eval(t *testing.T, v *luavm.VM, chunk string) string {
	t.Helper()
	if err := v.L.DoString("result = " + chunk); err != nil {
		t.Fatal(err)
	}
	return v.L.GetGlobal("result").String()
}

// TestExports: KSR.pike's return codes (pike_funcs.c at 5.6.3).
func TestExports(t *testing.T) {
	v, clock, log, m := vm(t)
	const loop = `(function() local s = {} for i = 1, 10 do s[i] = KSR.pike.pike_check_ip("198.51.100.7") end return table.concat(s, " ") end)()`
	if got := eval(t, v, loop); got != "1 1 1 1 1 1 1 1 -2 -1" {
		t.Fatalf("codes %s", got)
	}
	if !strings.Contains(log.String(), "PIKE - BLOCKing ip") || !strings.Contains(log.String(), "198.51.100.7") {
		t.Fatalf("log: %s", log)
	}
	for _, c := range []struct{ chunk, want string }{
		{`KSR.pike.pike_check_ip("")`, "-1"},
		{`KSR.pike.pike_check_ip("nope")`, "-1"},
		{`KSR.pike.pike_check_ip("2001:db8::1")`, "-1"}, // str2ip: IPv4 only
		{`KSR.pike.pike_check_ip("203.0.113.1")`, "1"},
		{`KSR.pike.pike_check_req()`, "1"}, // no message: nothing counted
	} {
		if got := eval(t, v, c.chunk); got != c.want {
			t.Errorf("%s = %s, want %s", c.chunk, got, c.want)
		}
	}
	// Two units later the address is no longer hot. Then its nodes go one
	// remove_latency after another, leaf first (the leaf at 14, 198.51.100
	// at 24, 198.51 at 34, 198 at 44): at 34 only 198 is left, besides the
	// new address's first node (203.0.113.1's went at 10).
	clock.Advance(4 * time.Second)
	if got := eval(t, v, `KSR.pike.pike_check_ip("198.51.100.7")`); got != "1" {
		t.Fatalf("after 4 s: %s", got)
	}
	clock.Advance(30 * time.Second)
	eval(t, v, `KSR.pike.pike_check_ip("203.0.113.9")`)
	if n := m.Nodes(); n != 2 {
		t.Fatalf("%d nodes at tick 34, want 2", n)
	}
}

// TestConfig: pike's modparams, with file:line errors.
func TestConfig(t *testing.T) {
	load := func(lines ...string) (*engine.Settings, error) {
		src := "loadmodule \"pike.so\"\nloadmodule \"app_lua.so\"\n" + strings.Join(lines, "\n") + "\nmodparam(\"app_lua\", \"load\", \"s.lua\")\n"
		c, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
		if err != nil {
			return nil, err
		}
		return engine.FromConfig(c, "kemi.cfg")
	}
	if _, err := load(`modparam("pike", "sampling_time_unit", 3)`, `modparam("pike", "reqs_density_per_unit", 40)`,
		`modparam("pike", "remove_latency", 60)`, `modparam("pike", "pike_log_level", 1)`); err != nil {
		t.Fatal(err)
	}
	_, err := load(`modparam("pike", "sampling_time_unit", 0)`)
	if err == nil || !strings.Contains(err.Error(), "kemi.cfg:3") {
		t.Fatalf("sampling_time_unit 0: %v", err)
	}
}

// TestTop: pike.top lists the tracked addresses (HOT by default, ALL),
// last found first, as pike_rpc.c.
func TestTop(t *testing.T) {
	v, clock, _, m := vm(t)
	eval(t, v, `(function() for i = 1, 9 do KSR.pike.pike_check_ip("198.51.100.7") end
		for i = 1, 6 do KSR.pike.pike_check_ip("198.51.100.8") end
		for i = 1, 5 do KSR.pike.pike_check_ip("203.0.113.1") end return 1 end)()`)
	clock.Advance(1 * time.Second)
	call := func(params ...any) string {
		p, err := jsonrpc.NewParams(params...)
		if err != nil {
			t.Fatal(err)
		}
		res, err := m.RPC()[0].Handler(context.Background(), p)
		if err != nil {
			return err.Error()
		}
		b, _ := json.Marshal(res)
		return string(b)
	}
	cases := []struct {
		params []any
		want   string
	}{
		// 198.51.100.8 was split off 198.51.100 after .7: it is the first kid,
		// found first, so listed last.
		{nil, `{"max_hits":5,"list":[{"ip_addr":"198.51.100.7","leaf_hits_prev":0,"leaf_hits_curr":5,"expires":9,"status":"HOT"},` +
			`{"ip_addr":"198.51.100.8","leaf_hits_prev":0,"leaf_hits_curr":5,"expires":9,"status":"HOT"}],"number_of_rows":2}`},
		// WARM is is_warm_leaf: the node's prefix hits (inherited at the split).
		{[]any{"all"}, `{"max_hits":5,"list":[{"ip_addr":"203.0.113.1","leaf_hits_prev":0,"leaf_hits_curr":1,"expires":9,"status":"WARM"},` +
			`{"ip_addr":"198.51.100.7","leaf_hits_prev":0,"leaf_hits_curr":5,"expires":9,"status":"HOT"},` +
			`{"ip_addr":"198.51.100.8","leaf_hits_prev":0,"leaf_hits_curr":5,"expires":9,"status":"HOT"}],"number_of_rows":3}`},
		{[]any{"WARM"}, `{"max_hits":5,"list":[],"number_of_rows":0}`},
		{[]any{"x"}, `jsonrpc fault 500: Bad argument. Select: ALL, HOT or WARM`},
	}
	for _, c := range cases {
		if got := call(c.params...); got != c.want {
			t.Errorf("pike.top %v:\n got %s\nwant %s", c.params, got, c.want)
		}
	}
}
