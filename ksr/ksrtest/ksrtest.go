// Package ksrtest helps test a module's KSR bindings and runtime without an
// engine: Deps provisions modules the way the engine does and builds their
// table, with a host of a chosen clock whose runners run a given script;
// VM is one Lua state with KSR bound to a fresh Env and a current request
// whose replies are captured.
//
// Concurrency: its values are for one test each; a VM belongs to the test
// goroutine that made it; runners follow the ksr.Runner contract (one
// goroutine at a time).
package ksrtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/luavm"
	"kemi/sipnet"
	"kemi/timers"
)

// Host is a ksr.Host for tests: the given deps and clock (the real one
// when nil). With a script (DepsWith), NewRunner makes runners whose VMs
// run it; there are no worker groups (NewGroup fails, Group finds none)
// and no SIP routing.
type Host struct {
	D   *ksr.Deps
	Clk timers.Clock
	// Sent receives what SendUDP sends, as if from 127.0.0.1:5060.
	Sent func(socket string, dst netip.AddrPort, b []byte)
	cur  *luavm.Current // the script's generation; nil: no runners
}

func (h Host) Logger() *slog.Logger   { return h.D.Log }
func (h Host) Deps() *ksr.Deps        { return h.D }
func (h Host) Group(string) ksr.Group { return nil }
func (h Host) Hold(int)               {}
func (h Host) Precise() bool          { return false }

// SendUDP hands the datagram to Sent when set, else fails: a module's
// test sees what its runtime sends.
func (h Host) SendUDP(socket string, dst netip.AddrPort, build func(netip.AddrPort) []byte) error {
	if h.Sent == nil {
		return errors.New("ksrtest: no network (set Options.Sent)")
	}
	local := netip.MustParseAddrPort("127.0.0.1:5060")
	h.Sent(socket, dst, build(local))
	return nil
}

func (h Host) Clock() timers.Clock {
	if h.Clk == nil {
		return timers.Real()
	}
	return h.Clk
}

// NewRunner makes a runner on a VM of the script given to DepsWith.
func (h Host) NewRunner(name, group string, index int) (ksr.Runner, error) {
	if h.cur == nil {
		return nil, errors.New("ksrtest: no script, no runners (use DepsWith)")
	}
	env := ksr.NewEnv(h.D, name, group, index)
	vm, err := luavm.New(h.cur, luavm.Options{Name: name, Init: func(L *lua.LState) error { ksr.Register(L, env); return nil }})
	if err != nil {
		return nil, err
	}
	r := &runner{vm: vm, env: env, log: h.D.Log}
	env.Runner = r
	return r, nil
}

func (h Host) NewGroup(name string, n int) (ksr.Group, error) {
	return nil, errors.New("ksrtest: no worker groups")
}

// runner is a VM-owning worker outside any group.
type runner struct {
	vm  *luavm.VM
	env *ksr.Env
	log *slog.Logger
}

func (r *runner) Env() *ksr.Env       { return r.env }
func (r *runner) VM() *luavm.VM       { return r.vm }
func (r *runner) Close()              { r.vm.Close() }
func (r *runner) Post(ksr.Task) error { return errors.New("ksrtest: runner outside a group") }

func (r *runner) Call(msg *ksr.Msg, fn string, args ...lua.LValue) error {
	r.vm.Sync()
	r.env.Msg = msg
	err := r.vm.CallGlobal(fn, args...)
	r.env.Msg = nil
	if err != nil {
		r.log.Error("lua call failed", "function", fn, "worker", r.vm.Name(), "error", err)
	}
	return err
}

func (r *runner) Continue(co *luavm.Co, msg *ksr.Msg, vals ...lua.LValue) error {
	r.env.Msg = msg
	_, err := co.Resume(vals...)
	r.env.Msg = nil
	return err
}

func (r *runner) Request(*sipnet.Request, bool)          { panic("ksrtest: no SIP routing") }
func (r *runner) Reply(*sipnet.Response, bool)           { panic("ksrtest: no SIP routing") }
func (r *runner) Finish(req *sipnet.Request, _ *ksr.Msg) { req.Done() }

// Options are what DepsWith gives the modules' host.
type Options struct {
	Clock  timers.Clock // nil: the real clock
	Script string       // Lua source the runners' VMs run ("" : no runners)
	// Sent receives the datagrams the modules send (Host.SendUDP).
	Sent func(socket string, dst netip.AddrPort, b []byte)
}

// Deps returns bindings dependencies logging at debug level into log,
// with mods provisioned (in order, after the core) and their exports and
// pseudo-variables in the table, as the engine builds them.
func Deps(tb testing.TB, log io.Writer, mods ...ksr.Module) *ksr.Deps {
	tb.Helper()
	return DepsWith(tb, log, Options{}, mods...)
}

// DepsWith is Deps with the modules provisioned on a host with o's clock
// and, when o.Script is set, runners whose VMs run it.
func DepsWith(tb testing.TB, log io.Writer, o Options, mods ...ksr.Module) *ksr.Deps {
	tb.Helper()
	d := &ksr.Deps{
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: time.Now,
		Shv: ksr.NewSharedVars(),
		PVs: map[string]*ksr.PV{},
	}
	all := append([]ksr.Module{ksr.Core()}, mods...)
	h := Host{D: d, Clk: o.Clock, Sent: o.Sent}
	if o.Script != "" {
		g, err := luavm.Build(1, []string{"test.lua"}, func(string) ([]byte, error) { return []byte(o.Script), nil })
		if err != nil {
			tb.Fatal(err)
		}
		h.cur = new(luavm.Current)
		h.cur.Store(g)
	}
	for _, m := range mods {
		if err := d.Provision(h, m); err != nil {
			tb.Fatal(err)
		}
	}
	t, err := ksr.NewTable(all...)
	if err != nil {
		tb.Fatal(err)
	}
	d.Table = t
	return d
}

// VM is one Lua state with KSR registered on a fresh Env, for testing a
// module's exports without an engine.
type VM struct {
	TB  testing.TB
	L   *lua.LState
	Env *ksr.Env
	// Replies are the replies sent to the requests Bind made current.
	Replies []*sip.Response
}

// NewVM returns a VM bound to d (see Deps); it is closed when the test ends.
func NewVM(tb testing.TB, d *ksr.Deps) *VM {
	tb.Helper()
	v := &VM{TB: tb, L: lua.NewState(), Env: ksr.NewEnv(d, "test/0", "test", 0)}
	tb.Cleanup(v.L.Close)
	ksr.Register(v.L, v.Env)
	return v
}

// Bind parses the request raw and makes it the current message, received
// from 10.0.0.1:5062; its replies are appended to Replies.
func (v *VM) Bind(raw string) *ksr.Msg {
	v.TB.Helper()
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		v.TB.Fatal(err)
	}
	r, ok := m.(*sip.Request)
	if !ok {
		v.TB.Fatalf("not a request: %q", raw)
	}
	req := sipnet.NewFakeRequest(r)
	req.Src = netip.MustParseAddrPort("10.0.0.1:5062")
	req.Sink = func(r *sip.Response) error { v.Replies = append(v.Replies, r); return nil }
	msg := &ksr.Msg{Req: req, Time: time.Unix(1700000000, 0)}
	v.Env.Msg = msg
	return msg
}

// Eval runs "return <expr>" and returns the value as tostring shows it.
func (v *VM) Eval(expr string) string {
	v.TB.Helper()
	if err := v.L.DoString("return " + expr); err != nil {
		v.TB.Fatalf("%s: %v", expr, err)
	}
	r := v.L.Get(-1)
	v.L.Pop(1)
	return r.String()
}

// LogBuffer is a log sink the VMs and runtimes of one test may share:
// writes and reads are safe from any goroutine.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Results runs a Lua chunk on L and returns its results as Go values (see
// GoValue); a chunk that does not compile or raises an error fails tb.
func Results(tb testing.TB, L *lua.LState, chunk string) []any {
	tb.Helper()
	fn, err := L.LoadString(chunk)
	if err != nil {
		tb.Fatalf("compile %q: %v", chunk, err)
	}
	L.Push(fn)
	if err := L.PCall(0, lua.MultRet, nil); err != nil {
		tb.Fatalf("run %q: %v", chunk, err)
	}
	n := L.GetTop()
	out := make([]any, n)
	for i := 1; i <= n; i++ {
		out[i-1] = GoValue(L.Get(i))
	}
	L.SetTop(0)
	return out
}

// GoValue is a Lua value as a test compares it: int64 for an integral
// number, float64, string, bool, nil, else "<type value>".
func GoValue(v lua.LValue) any {
	switch x := v.(type) {
	case lua.LNumber:
		if float64(x) == float64(int64(x)) {
			return int64(x)
		}
		return float64(x)
	case lua.LString:
		return string(x)
	case lua.LBool:
		return bool(x)
	case *lua.LNilType:
		return nil
	}
	return fmt.Sprintf("<%s %v>", v.Type(), v)
}

// Vals builds an expected result list for Results: ints become int64.
func Vals(v ...any) []any {
	for i, x := range v {
		if n, ok := x.(int); ok {
			v[i] = int64(n)
		}
	}
	return v
}
