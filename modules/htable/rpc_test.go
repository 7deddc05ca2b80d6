package htable_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"kemi/config"
	"kemi/engine"
	"kemi/jsonrpc"
	"kemi/modules/htable"
)

// call runs an htable RPC command and returns its JSON result, or
// "fault <code> <message>".
func (f *fixture) call(method string, params ...any) string {
	f.tb.Helper()
	p, err := jsonrpc.NewParams(params...)
	if err != nil {
		f.tb.Fatal(err)
	}
	for _, m := range f.m.RPC() {
		if m.Name != method {
			continue
		}
		res, err := m.Handler(context.Background(), p)
		var fl *jsonrpc.Fault
		if errors.As(err, &fl) {
			return "fault " + itoa(fl.Code) + " " + fl.Message
		}
		if err != nil {
			f.tb.Fatal(err)
		}
		b, err := json.Marshal(res)
		if err != nil {
			f.tb.Fatal(err)
		}
		return string(b)
	}
	f.tb.Fatalf("no RPC method %q", method)
	return ""
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestRPC checks every htable.* command's reply and faults against
// htable.c's htable_rpc_* at 5.6.3.
func TestRPC(t *testing.T) {
	type step struct {
		method string
		params []any
		want   string
	}
	expire := time.Unix(t0.Unix()+10, 0).Local().Format("2006-01-02 15:04:05")
	cases := []struct {
		name  string
		steps []step
	}{
		{"sets, seti, get", []step{
			{"htable.sets", []any{"t", "k", "v"}, `"Ok. Key set to new value."`},
			{"htable.get", []any{"t", "k"}, `{"item":{"name":"k","value":"v","flags":2,"expire":"NEVER"}}`},
			{"htable.seti", []any{"t", "n", 42}, `"Ok. Key set to new value."`},
			{"htable.seti", []any{"t", "s", "7"}, `"Ok. Key set to new value."`},
			{"htable.get", []any{"t", "n"}, `{"item":{"name":"n","value":42,"flags":0,"expire":"NEVER"}}`},
			// jsonrpcs's "d" takes a JSON string as 0; ".S" converts a number.
			{"htable.get", []any{"t", "s"}, `{"item":{"name":"s","value":0,"flags":0,"expire":"NEVER"}}`},
			{"htable.sets", []any{"t", "num", 12}, `"Ok. Key set to new value."`},
			{"htable.get", []any{"t", "num"}, `{"item":{"name":"num","value":"12","flags":2,"expire":"NEVER"}}`},
		}},
		{"get faults", []step{
			{"htable.get", []any{"t"}, `fault 500 Not enough parameters (htable name and key name)`},
			{"htable.get", []any{"nope", "k"}, `fault 500 No such htable`},
			{"htable.get", []any{"t", "k"}, `fault 500 Key name doesn't exist in htable.`},
		}},
		{"get shows the expiry in local time", []step{
			{"htable.sets", []any{"e", "k", "v"}, `"Ok. Key set to new value."`},
			{"htable.get", []any{"e", "k"}, `{"item":{"name":"k","value":"v","flags":2,"expire":"` + expire + `"}}`},
		}},
		{"set faults", []step{
			{"htable.sets", []any{"t", "k"}, `fault 500 Not enough parameters (htable name, key name and value)`},
			{"htable.sets", []any{"nope", "k", "v"}, `fault 500 No such htable`},
			{"htable.seti", []any{"t", "k"}, `fault 500 Not enough parameters (htable name, key name and value)`},
			{"htable.sets", []any{"t", 5, "v"}, `fault 500 Not enough parameters (htable name, key name and value)`},
			{"htable.seti", []any{"nope", "k", 1}, `fault 500 No such htable`},
		}},
		{"setex, setxs, setxi", []step{
			{"htable.setxs", []any{"e", "a", "v", 100}, `"Ok. Key set to new value."`},
			{"htable.setxi", []any{"e", "b", 5, 100}, `"Ok. Key set to new value."`},
			{"htable.setex", []any{"e", "a", 0}, `"Ok"`},
			{"htable.get", []any{"e", "a"}, `{"item":{"name":"a","value":"v","flags":2,"expire":"NEVER"}}`},
			{"htable.setxs", []any{"nope", "a", "v", 1}, `fault 500 Failed to set the item`},
			{"htable.setxi", []any{"e", "a", 1}, `fault 500 Not enough parameters (htable name, key name, value and expire)`},
			{"htable.setex", []any{"nope", "a", 1}, `fault 500 No such htable`},
		}},
		{"delete", []step{
			{"htable.sets", []any{"t", "k", "v"}, `"Ok. Key set to new value."`},
			{"htable.delete", []any{"t", "k"}, `"Ok. Key deleted."`},
			{"htable.delete", []any{"t", "k"}, `fault 404 Key not found in htable.`},
			{"htable.delete", []any{"nope", "k"}, `fault 500 No such htable`},
			{"htable.delete", []any{"t"}, `fault 500 Not enough parameters (htable name & key name`},
		}},
		{"dump in Kamailio's slot order", []step{
			{"htable.dump", []any{"t"}, `[]`},
			// hash("k1") = 26214 (slot 6 of 16), hash("a") = 109 (slot 13).
			{"htable.sets", []any{"t", "a", "x"}, `"Ok. Key set to new value."`},
			{"htable.seti", []any{"t", "k1", 1}, `"Ok. Key set to new value."`},
			{"htable.dump", []any{"t"}, `[{"entry":6,"size":1,"slot":[{"name":"k1","value":1,"type":"int"}]},{"entry":13,"size":1,"slot":[{"name":"a","value":"x","type":"str"}]}]`},
			{"htable.dump", []any{}, `fault 500 No htable name given`},
			{"htable.dump", []any{"nope"}, `fault 500 No such htable`},
		}},
		{"flush", []step{
			{"htable.sets", []any{"t", "k", "v"}, `"Ok. Key set to new value."`},
			{"htable.flush", []any{"t"}, `"Ok. Htable flushed."`},
			{"htable.dump", []any{"t"}, `[]`},
			{"htable.flush", []any{"nope"}, `fault 500 No such htable`},
			{"htable.flush", []any{}, `fault 500 No htable name given`},
		}},
		{"listTables, last defined first", []step{
			{"htable.listTables", nil, `[{"name":"e","dbtable":"","dbmode":0,"expire":10,"updateexpire":1,"size":16,"dmqreplicate":0},` +
				`{"name":"t","dbtable":"","dbmode":0,"expire":0,"updateexpire":1,"size":16,"dmqreplicate":0}]`},
		}},
		{"stats", []step{
			{"htable.sets", []any{"t", "a", "x"}, `"Ok. Key set to new value."`},
			{"htable.sets", []any{"t", "b", "x"}, `"Ok. Key set to new value."`},
			{"htable.stats", nil, `[{"name":"e","slots":16,"all":0,"min":0,"max":0},{"name":"t","slots":16,"all":2,"min":0,"max":1}]`},
		}},
		{"reload and store without db_url", []step{
			{"htable.reload", []any{"t"}, `fault 500 No htable db_url`},
			{"htable.store", []any{"t"}, `fault 500 No htable db_url`},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, "t=>size=4", "e=>autoexpire=10")
			for i, s := range c.steps {
				if got := f.call(s.method, s.params...); got != s.want {
					t.Errorf("step %d %s%v:\n got %s\nwant %s", i, s.method, s.params, got, s.want)
				}
			}
		})
	}
}

// TestRPCNoTables: listTables and stats fault without tables.
func TestRPCNoTables(t *testing.T) {
	f := newFixture(t)
	for _, m := range []string{"htable.listTables", "htable.stats"} {
		if got := f.call(m); got != "fault 500 No htables" {
			t.Errorf("%s: %s", m, got)
		}
	}
}

// TestSweep: the timer removes expired items (stats drop), reads never
// see them either way.
func TestSweep(t *testing.T) {
	f := newFixture(t, "e=>autoexpire=10", "t=>size=2")
	v := f.vm("w", "")
	v.run(`KSR.htable.sht_sets("e","a","x"); KSR.htable.sht_sets("t","b","x")`)
	f.clock.Advance(5 * time.Second)
	v.run(`KSR.htable.sht_sets("e","c","x")`)
	f.clock.Advance(6 * time.Second) // a expired at t0+10 < now
	if n := f.m.Sweep(); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	f.clock.Advance(5 * time.Second)
	if n := f.m.Sweep(); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	if got := f.m.Table("t").Len() + f.m.Table("e").Len(); got != 1 {
		t.Fatalf("%d items left, want 1", got)
	}
}

// TestLazySweep: the first call after each timer_interval seconds of the
// engine's clock removes the expired items (Kamailio's ht_timer).
func TestLazySweep(t *testing.T) {
	m := htable.New()
	sp, _ := htable.ParseSpec("e=>autoexpire=1")
	m.Settings().Tables = []htable.Spec{sp}
	m.Settings().TimerInterval = 5
	f := provision(t, m)
	v := f.vm("w", "")
	v.run(`KSR.htable.sht_sets("e","a","x"); KSR.htable.sht_sets("e","b","x")`)
	f.clock.Advance(4 * time.Second)
	v.run(`KSR.htable.sht_get("e","zz")`)
	if n := m.Table("e").Len(); n != 2 {
		t.Fatalf("%d items before the interval, want 2 (expired, not swept)", n)
	}
	f.clock.Advance(1 * time.Second)
	v.run(`KSR.htable.sht_lock("e","a"); KSR.htable.sht_get("e","zz"); KSR.htable.sht_unlock("e","a")`)
	if n := m.Table("e").Len(); n != 0 {
		t.Fatalf("%d items after the interval, want 0", n)
	}
}

// TestConfigErrors: bad htable modparams are configuration errors with
// file:line.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		lines []string
		want  string
	}{
		{[]string{`modparam("htable", "htable", "t=>size=x")`},
			`modparam htable htable "t=>size=x": size: "x" is not an unsigned integer, at kemi.cfg:3`},
		{[]string{`modparam("htable", "htable", "t=>a=1")`},
			`modparam htable htable "t=>a=1": unknown parameter "a" (want size, autoexpire, initval, updateexpire, dbtable, dbmode, dmqreplicate), at kemi.cfg:3`},
		{[]string{`modparam("htable", "htable", "t=>size=2")`, `modparam("htable", "htable", "t=>size=3")`},
			`modparam htable htable: duplicate table name "t" (first defined at kemi.cfg:3), at kemi.cfg:4`},
		{[]string{`modparam("htable", "htable", "t=>dbtable=x")`},
			`modparam htable htable: table "t" has dbtable "x" but modparam("htable", "db_url", ...) is not set, at kemi.cfg:3`},
		{[]string{`modparam("htable", "db_url", "mysql://u:p@h/db")`},
			`modparam htable db_url: unsupported scheme "mysql": kemi stores htables in SQLite ("sqlite:///path/file.db" or a plain path), at kemi.cfg:3`},
		{[]string{`modparam("htable", "nats_url", "http://h:4222")`},
			`modparam htable nats_url: url "http://h:4222": scheme "http", want nats, at kemi.cfg:3`},
		{[]string{`modparam("htable", "nats_replicas", 7)`},
			`modparam htable nats_replicas: must be 1..5, got 7, at kemi.cfg:3`},
		{[]string{`modparam("htable", "timer_interval", "x")`},
			`modparam htable timer_interval: expected an integer, got "x", at kemi.cfg:3`},
	}
	for _, c := range cases {
		src := "loadmodule \"htable.so\"\nloadmodule \"app_lua.so\"\n" + strings.Join(c.lines, "\n") +
			"\nmodparam(\"app_lua\", \"load\", \"script.lua\")\n"
		cfg, err := config.Parse("kemi.cfg", []byte(src), config.Options{})
		if err == nil {
			_, err = engine.FromConfig(cfg, "kemi.cfg")
		}
		if err == nil || err.Error() != c.want {
			t.Errorf("%v:\n got %v\nwant %s", c.lines, err, c.want)
		}
	}
}

// TestSweepSkipsHeldSlots: a worker holding a slot (sht_lock) whose call
// runs the sweep does not wait for a slot another worker holds.
func TestSweepSkipsHeldSlots(t *testing.T) {
	f := newFixture(t, "e=>size=1;autoexpire=1") // 2 slots: "a" in slot 1, "k" in slot 0
	a, b := f.vm("a", ""), f.vm("b", "")
	a.run(`KSR.htable.sht_sets("e","a","x"); KSR.htable.sht_sets("e","k","x"); KSR.htable.sht_lock("e","a")`)
	b.run(`KSR.htable.sht_lock("e","k")`)
	f.clock.Advance(20 * time.Second)
	if got := a.run(`return KSR.htable.sht_get("e","a")`); !same(got, vals(nil)) { // runs the sweep
		t.Fatalf("got %v", got)
	}
	b.run(`KSR.htable.sht_unlock("e","k")`)
	a.run(`KSR.htable.sht_unlock("e","a")`)
	if n := f.m.Table("e").Len(); n != 1 {
		t.Fatalf("%d items, want 1 (slot 0, held by b, skipped)", n)
	}
	f.clock.Advance(20 * time.Second)
	a.run(`KSR.htable.sht_get("e","zz")`)
	if n := f.m.Table("e").Len(); n != 0 {
		t.Fatalf("%d items after the next sweep, want 0", n)
	}
}
