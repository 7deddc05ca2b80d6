package mqueue_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/luavm"
	"kemi/modules/mqueue"
	"kemi/queues"
)

// mqVM is one VM with KSR registered on its own Env, as an engine worker has.
type mqVM struct {
	tb  testing.TB
	vm  *luavm.VM
	env *ksr.Env
}

// syncBuf is the log sink shared by the VMs of one test.
type syncBuf = ksrtest.LogBuffer

// mqDeps returns bindings dependencies holding a registry of the given queues,
// logging into the returned buffer.
func mqDeps(tb testing.TB, opts ...queues.Options) (*mqDepsT, *syncBuf) {
	tb.Helper()
	buf := &syncBuf{}
	m := mqueue.New()
	m.Settings().Queues = opts
	return &mqDepsT{ksrtest.Deps(tb, buf, m), m.Registry}, buf
}

// mqDepsT are the bindings' dependencies with the module's queues.
type mqDepsT struct {
	*ksr.Deps
	Queues func() *queues.Registry
}

// newMQVM builds a VM running script (may be "") with KSR bound to a fresh Env on d.
func newMQVM(tb testing.TB, d *mqDepsT, name, script string) *mqVM {
	tb.Helper()
	g, err := luavm.Build(1, []string{name + ".lua"}, func(string) ([]byte, error) { return []byte(script), nil })
	if err != nil {
		tb.Fatal(err)
	}
	var cur luavm.Current
	cur.Store(g)
	env := ksr.NewEnv(d.Deps, name, "test", 0)
	vm, err := luavm.New(&cur, luavm.Options{Name: name, Init: func(L *lua.LState) error { ksr.Register(L, env); return nil }})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(vm.Close)
	return &mqVM{tb: tb, vm: vm, env: env}
}

// run runs a Lua chunk in the VM and returns its results as Go values
// (ksrtest.Results).
func (m *mqVM) run(chunk string) []any {
	m.tb.Helper()
	return ksrtest.Results(m.tb, m.vm.L, chunk)
}

// vals builds an expected result list (ksrtest.Vals).
func vals(v ...any) []any { return ksrtest.Vals(v...) }

func sameVals(a, b []any) bool { return slices.Equal(a, b) }

// testQueues are the queues every binding case starts with.
var testQueues = []queues.Options{
	{Name: "q"},
	{Name: "keepold", AddMode: queues.AddModeKeepOldest},
	{Name: "keepnew", AddMode: queues.AddModeKeepNewest},
	{Name: "two", Size: 2},
	{Name: "7"},
}

// TestMqueueBindings checks the return codes of every KSR.mqueue function and
// of the mqueue PVs against the reference (§1.3-1.5): KEMI's codes, not the
// native-cfg wrappers' documented in the module README.
func TestMqueueBindings(t *testing.T) {
	const (
		add   = "KSR.mqueue.mq_add"
		fetch = "KSR.mqueue.mq_fetch"
		size  = "KSR.mqueue.mq_size"
		free  = "KSR.mqueue.mq_pv_free"
		get   = "KSR.pv.get"
	)
	cases := []struct {
		name  string
		chunk string
		want  []any
		log   string // substring the log must hold ("" = nothing required)
	}{
		// mq_add: INT 1 ok, -1 unknown queue.
		{"add ok", `return ` + add + `("q", "k", "v"), ` + size + `("q")`, vals(1, 1), ""},
		{"add unknown queue", `return ` + add + `("nope", "k", "v")`, vals(-1), `queue=nope`},
		{"add keep-oldest duplicate is still 1", `return ` + add + `("keepold", "k", "a"), ` + add + `("keepold", "k", "b"),
			` + size + `("keepold"), ` + fetch + `("keepold"), KSR.mqueue.mqv_get("keepold")`, vals(1, 1, 1, 1, "a"), ""},
		{"add keep-newest replaces", add + `("keepnew", "k", "a"); ` + add + `("keepnew", "x", "1"); ` + add + `("keepnew", "k", "b")
			` + fetch + `("keepnew"); local k1 = KSR.mqueue.mqk_get("keepnew")
			` + fetch + `("keepnew"); return ` + size + `("keepnew"), k1, KSR.mqueue.mqk_get("keepnew"), KSR.mqueue.mqv_get("keepnew")`,
			vals(0, "x", "k", "b"), ""},
		{"add beyond size drops the oldest silently", `return ` + add + `("two", "a", "1"), ` + add + `("two", "b", "2"), ` + add + `("two", "c", "3"),
			` + size + `("two"), ` + fetch + `("two"), KSR.mqueue.mqk_get("two")`, vals(1, 1, 1, 2, 1, "b"), ""},
		{"add nil key and value become empty", `return ` + add + `("q", nil, nil), ` + fetch + `("q"), KSR.mqueue.mqk_get("q"), KSR.mqueue.mqv_get("q")`,
			vals(1, 1, "", ""), ""},
		{"add nil queue is an unknown queue", `return ` + add + `(nil, "k", "v")`, vals(-1), "mqueue not found"},
		{"add numbers are converted like tostring", `return ` + add + `(7, 12, 3.5), ` + fetch + `("7"), KSR.mqueue.mqk_get(7), KSR.mqueue.mqv_get("7")`,
			vals(1, 1, "12", "3.5"), ""},

		// mq_fetch: 1 fetched, -1 unknown queue, -2 empty.
		{"fetch ok", add + `("q", "k", "v"); return ` + fetch + `("q"), KSR.mqueue.mqk_get("q"), KSR.mqueue.mqv_get("q"), ` + size + `("q")`,
			vals(1, "k", "v", 0), ""},
		{"fetch unknown queue", `return ` + fetch + `("nope")`, vals(-1), ""},
		{"fetch empty queue", `return ` + fetch + `("q")`, vals(-2), ""},
		{"fetch in order", add + `("q", "a", "1"); ` + add + `("q", "b", "2"); ` + add + `("q", "c", "3")
			local s = ""
			while ` + fetch + `("q") == 1 do s = s .. KSR.mqueue.mqk_get("q") .. KSR.mqueue.mqv_get("q") end
			return s`, vals("a1b2c3"), ""},
		{"previous item freed before the emptiness check", add + `("q", "k", "v"); ` + fetch + `("q")
			return ` + fetch + `("q"), KSR.mqueue.mqk_get("q"), KSR.mqueue.mqv_get("q"), ` + get + `("$mqk(q)"), ` + get + `("$mqv(q)")`,
			vals(-2, nil, nil, nil, nil), ""},
		{"fetch on one queue keeps another queue's item", add + `("q", "k", "v"); ` + fetch + `("q"); ` + fetch + `("keepold")
			return KSR.mqueue.mqk_get("q")`, vals("k"), ""},

		// mq_size: raw count, 0 empty, -1 unknown.
		{"size empty is 0", `return ` + size + `("q")`, vals(0), ""},
		{"size counts", add + `("q", "a", ""); ` + add + `("q", "a", ""); return ` + size + `("q")`, vals(2), ""},
		{"size unknown is -1", `return ` + size + `("nope")`, vals(-1), "mqueue not found"},
		{"size nil name is an unknown queue, a number a name", `return ` + size + `(nil), ` + size + `(7)`, vals(-1, 0), ""},

		// mq_pv_free: 1 always.
		{"pv_free frees the item", add + `("q", "k", "v"); ` + fetch + `("q")
			return ` + free + `("q"), KSR.mqueue.mqk_get("q"), ` + get + `("$mqk(q)"), ` + size + `("q")`, vals(1, nil, nil, 0), ""},
		{"pv_free with nothing fetched", `return ` + free + `("q")`, vals(1), ""},
		{"pv_free unknown queue is 1", `return ` + free + `("nope")`, vals(1), ""},

		// mqk_get / mqv_get: XVAL string or nil; "" for an empty key or value.
		{"get nothing fetched is nil", `return KSR.mqueue.mqk_get("q"), KSR.mqueue.mqv_get("q")`, vals(nil, nil), ""},
		{"get unknown queue is nil", `return KSR.mqueue.mqk_get("nope"), KSR.mqueue.mqv_get("nope")`, vals(nil, nil), ""},
		{"get empty key is \"\", $mqk is nil", add + `("q", "", ""); ` + fetch + `("q")
			return KSR.mqueue.mqk_get("q"), KSR.mqueue.mqv_get("q"), ` + get + `("$mqk(q)"), ` + get + `("$mqv(q)")`,
			vals("", "", nil, nil), ""},
		// Kamailio bug kept: the e/w variants ignore their mode (no "" or "<null>").
		{"e/w variants nil when nothing fetched", `return KSR.mqueue.mqk_gete("q"), KSR.mqueue.mqk_getw("q"),
			KSR.mqueue.mqv_gete("q"), KSR.mqueue.mqv_getw("q")`, vals(nil, nil, nil, nil), ""},
		{"e/w variants after a fetch", add + `("q", "k", "v"); ` + fetch + `("q")
			return KSR.mqueue.mqk_gete("q"), KSR.mqueue.mqk_getw("q"), KSR.mqueue.mqv_gete("q"), KSR.mqueue.mqv_getw("q")`,
			vals("k", "k", "v", "v"), ""},
		{"e/w variants empty key", add + `("q", "", ""); ` + fetch + `("q")
			return KSR.mqueue.mqk_gete("q"), KSR.mqueue.mqk_getw("q"), KSR.mqueue.mqv_gete("q"), KSR.mqueue.mqv_getw("q")`,
			vals("", "", "", ""), ""},

		// PVs.
		{"$mqk/$mqv after a fetch", add + `("q", "k", "v"); ` + fetch + `("q")
			return ` + get + `("$mqk(q)"), ` + get + `("$mqv(q)"), ` + get + `("$mq_size(q)")`, vals("k", "v", 0), ""},
		{"$mqk nothing fetched is nil", `return ` + get + `("$mqk(q)"), ` + get + `("$mqv(q)")`, vals(nil, nil), ""},
		{"$mq_size counts", add + `("q", "k", "v"); ` + add + `("q", "k", "v"); return ` + get + `("$mq_size(q)"), KSR.pv.is_null("$mq_size(q)")`,
			vals(2, false), ""},
		{"$mqk unknown queue is nil", `return ` + get + `("$mqk(nope)"), ` + get + `("$mqv(nope)"), ` + get + `("$mq_size(nope)"),
			KSR.pv.gete("$mq_size(nope)"), KSR.pv.is_null("$mqk(nope)")`, vals(nil, nil, nil, "", true), "mqueue not found"},
		{"$mqk dynamic name", add + `("keepold", "dk", "dv"); ` + fetch + `("keepold"); KSR.pv.sets("$var(q)", "keepold")
			return ` + get + `("$mqk($var(q))"), ` + get + `("$mqv($var(q))"), ` + get + `("$mq_size($var(q))")`, vals("dk", "dv", 0), ""},
		{"$mqk dynamic name unset is nil", `return ` + get + `("$mqk($var(unset))"), ` + get + `("$mq_size($var(unset))")`, vals(nil, nil), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, logs := mqDeps(t, testQueues...)
			m := newMQVM(t, d, "vm", "")
			got := m.run(c.chunk)
			if !sameVals(got, c.want) {
				t.Fatalf("got %#v, want %#v\nlog:\n%s", got, c.want, logs)
			}
			if c.log != "" && !strings.Contains(logs.String(), c.log) {
				t.Fatalf("log lacks %q:\n%s", c.log, logs)
			}
		})
	}
}

// TestMqueueArity: too few arguments, or more than Kamailio's
// SR_KEMI_PARAMS_MAX (6), are logged and return false, without a Lua error
// and without touching the queue (reference §0; app_lua_api.c
// sr_kemi_lua_exec_func_ex in 5.6.3). Other extra arguments are ignored:
// see TestMqueueExtraArgumentsIgnored.
func TestMqueueArity(t *testing.T) {
	funcs := map[string]int{
		"mq_add": 3, "mq_fetch": 1, "mq_pv_free": 1, "mq_size": 1,
		"mqk_get": 1, "mqk_gete": 1, "mqk_getw": 1, "mqv_get": 1, "mqv_gete": 1, "mqv_getw": 1,
	}
	for fn, n := range funcs {
		bad := []int{0, 7}
		if n > 1 {
			bad = append(bad, n-1)
		}
		for _, argc := range bad {
			t.Run(fmt.Sprintf("%s/%d", fn, argc), func(t *testing.T) {
				d, logs := mqDeps(t, testQueues...)
				m := newMQVM(t, d, "vm", "")
				args := strings.TrimSuffix(strings.Repeat(`"q", `, argc), ", ")
				got := m.run(fmt.Sprintf(`return KSR.mqueue.%s(%s)`, fn, args))
				if !sameVals(got, vals(false)) {
					t.Fatalf("got %#v, want false", got)
				}
				want := fmt.Sprintf(`function=KSR.mqueue.%s got=%d expected=%d`, fn, argc, n)
				if !strings.Contains(logs.String(), "invalid number of parameters") || !strings.Contains(logs.String(), want) {
					t.Fatalf("log lacks the arity error %q:\n%s", want, logs)
				}
				if l := d.Queues().Get("q").Len(); l != 0 {
					t.Fatalf("queue touched: %d items", l)
				}
			})
		}
	}
}

// TestMqueueExtraArgumentsIgnored: as in Kamailio, arguments beyond a
// function's parameters (up to six in all) are ignored.
func TestMqueueExtraArgumentsIgnored(t *testing.T) {
	d, logs := mqDeps(t, testQueues...)
	m := newMQVM(t, d, "vm", "")
	if got := m.run(`return KSR.mqueue.mq_add("q", "k", "v", "extra")`); !sameVals(got, vals(1)) {
		t.Fatalf("mq_add with an extra argument = %#v, want 1", got)
	}
	if got := m.run(`return KSR.mqueue.mq_size("q", 1, 2, 3, 4, 5)`); !sameVals(got, vals(1)) {
		t.Fatalf("mq_size with five extra arguments = %#v, want 1", got)
	}
	if strings.Contains(logs.String(), "invalid number of parameters") {
		t.Fatalf("extra arguments logged as an error:\n%s", logs)
	}
}

// TestMqueueFetchedItemIsPerVM: each VM (Kamailio: each process) has its own
// fetched item; another VM's fetch or mq_pv_free does not change it.
func TestMqueueFetchedItemIsPerVM(t *testing.T) {
	d, _ := mqDeps(t, testQueues...)
	a := newMQVM(t, d, "a", "")
	b := newMQVM(t, d, "b", "")
	a.run(`KSR.mqueue.mq_add("q", "k1", "v1"); KSR.mqueue.mq_add("q", "k2", "v2")`)
	if got := a.run(`return KSR.mqueue.mq_fetch("q")`); !sameVals(got, vals(1)) {
		t.Fatalf("a fetch: %v", got)
	}
	if got := b.run(`return KSR.mqueue.mqk_get("q"), KSR.pv.get("$mqk(q)")`); !sameVals(got, vals(nil, nil)) {
		t.Fatalf("b sees a's item before fetching: %v", got)
	}
	if got := b.run(`return KSR.mqueue.mq_fetch("q")`); !sameVals(got, vals(1)) {
		t.Fatalf("b fetch: %v", got)
	}
	wantA, wantB := vals("k1", "v1", "k1"), vals("k2", "v2", "k2")
	const who = `return KSR.mqueue.mqk_get("q"), KSR.mqueue.mqv_get("q"), KSR.pv.get("$mqk(q)")`
	if got := a.run(who); !sameVals(got, wantA) {
		t.Fatalf("a's item: %v, want %v", got, wantA)
	}
	if got := b.run(who); !sameVals(got, wantB) {
		t.Fatalf("b's item: %v, want %v", got, wantB)
	}
	// b's empty fetch frees b's item only; a's pv_free frees a's only.
	if got := b.run(`return KSR.mqueue.mq_fetch("q")`); !sameVals(got, vals(-2)) {
		t.Fatalf("b second fetch: %v", got)
	}
	if got := a.run(who); !sameVals(got, wantA) {
		t.Fatalf("a's item after b's empty fetch: %v", got)
	}
	b.run(`KSR.mqueue.mq_add("q", "k3", "v3"); KSR.mqueue.mq_fetch("q")`)
	a.run(`KSR.mqueue.mq_pv_free("q")`)
	if got := b.run(who); !sameVals(got, vals("k3", "v3", "k3")) {
		t.Fatalf("b's item after a's pv_free: %v", got)
	}
	if got := a.run(who); !sameVals(got, vals(nil, nil, nil)) {
		t.Fatalf("a's item after pv_free: %v", got)
	}
}

// TestMqueueConcurrentVMs: VMs on their own goroutines adding and fetching
// on one queue lose and duplicate nothing.
func TestMqueueConcurrentVMs(t *testing.T) {
	d, _ := mqDeps(t, queues.Options{Name: "q"}, queues.Options{Name: "out"})
	const vms, per = 4, 500
	script := `
function produce(id, from, n)
	for i = from, from + n - 1 do KSR.mqueue.mq_add("q", id, tostring(i)) end
end
function consume()
	while KSR.mqueue.mq_fetch("q") == 1 do
		KSR.mqueue.mq_add("out", KSR.mqueue.mqk_get("q"), KSR.mqueue.mqv_get("q"))
	end
end`
	ms := make([]*mqVM, vms)
	for i := range ms {
		ms[i] = newMQVM(t, d, fmt.Sprintf("vm%d", i), script)
	}
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			for j := 0; j < per; j += 50 {
				if err := m.vm.CallGlobal("produce", lua.LString(fmt.Sprint("p", i)), lua.LNumber(j+1), lua.LNumber(50)); err != nil {
					t.Error(err)
				}
				if err := m.vm.CallGlobal("consume"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := d.Queues().Get("q").Len(); n != 0 {
		t.Fatalf("%d items left", n)
	}
	// Exactly once each; the order in "out" is not defined, as two consumers
	// may fetch two items and add them back in either order.
	seen := map[queues.Item]int{}
	got := d.Queues().Get("out").Snapshot()
	for _, it := range got {
		seen[it]++
	}
	for i := range vms {
		for j := 1; j <= per; j++ {
			if it := (queues.Item{Key: fmt.Sprint("p", i), Val: fmt.Sprint(j)}); seen[it] != 1 {
				t.Fatalf("item %v arrived %d times", it, seen[it])
			}
		}
	}
	if len(got) != vms*per {
		t.Fatalf("%d items out, want %d", len(got), vms*per)
	}
}

// failingStore is a MemStore whose row writes can be made to fail.
type failingStore struct {
	*queues.MemStore
	mu   sync.Mutex
	fail bool
}

var errDisk = errors.New("disk on fire")

func (s *failingStore) failing() bool { s.mu.Lock(); defer s.mu.Unlock(); return s.fail }

func (s *failingStore) Insert(ctx context.Context, q string, it queues.Item) (int64, error) {
	if s.failing() {
		return 0, errDisk
	}
	return s.MemStore.Insert(ctx, q, it)
}

func (s *failingStore) Delete(ctx context.Context, q string, id int64) error {
	if s.failing() {
		return errDisk
	}
	return s.MemStore.Delete(ctx, q, id)
}

// TestMqueueDurableStoreErrors: with a durable queue (dbmode 4, a kemi
// extension) a failed row write is mq_add -1 and mq_fetch -1 (not -2: the
// queue is not empty), logged, and the item stays queued.
func TestMqueueDurableStoreErrors(t *testing.T) {
	d, logs := mqDeps(t, queues.Options{Name: "dq", DBMode: queues.DBModeDurable})
	m := newMQVM(t, d, "vm", "")
	if got := m.run(`return KSR.mqueue.mq_add("dq", "k", "v")`); !sameVals(got, vals(-1)) {
		t.Fatalf("add before Load: %v, want -1", got)
	}
	st := &failingStore{MemStore: queues.NewMemStore()}
	if err := d.Queues().Load(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if got := m.run(`return KSR.mqueue.mq_add("dq", "k", "v")`); !sameVals(got, vals(1)) {
		t.Fatalf("add: %v", got)
	}
	st.mu.Lock()
	st.fail = true
	st.mu.Unlock()
	got := m.run(`return KSR.mqueue.mq_add("dq", "k2", "v2"), KSR.mqueue.mq_fetch("dq"), KSR.mqueue.mqk_get("dq"), KSR.mqueue.mq_size("dq")`)
	if !sameVals(got, vals(-1, -1, nil, 1)) {
		t.Fatalf("with a failing store: %v, want -1 -1 nil 1", got)
	}
	if !strings.Contains(logs.String(), "disk on fire") {
		t.Fatalf("store error not logged:\n%s", logs)
	}
	st.mu.Lock()
	st.fail = false
	st.mu.Unlock()
	if got := m.run(`return KSR.mqueue.mq_fetch("dq"), KSR.mqueue.mqk_get("dq"), KSR.mqueue.mq_fetch("dq")`); !sameVals(got, vals(1, "k", -2)) {
		t.Fatalf("after the store recovered: %v", got)
	}
}
