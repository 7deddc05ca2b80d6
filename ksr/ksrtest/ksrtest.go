// Package ksrtest helps test a module's KSR bindings without an engine:
// Deps provisions modules the way the engine does and builds their table;
// VM is one Lua state with KSR bound to a fresh Env and a current request
// whose replies are captured.
//
// Concurrency: a VM belongs to the test goroutine that made it.
package ksrtest

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/sipnet"
	"kemi/timers"
)

// Host is a ksr.Host for tests: the given deps, the real clock.
type Host struct{ D *ksr.Deps }

func (h Host) Logger() *slog.Logger { return h.D.Log }
func (h Host) Clock() timers.Clock  { return timers.Real() }
func (h Host) Deps() *ksr.Deps      { return h.D }

// Deps returns bindings dependencies logging at debug level into log,
// with mods provisioned (in order, after the core) and their exports and
// pseudo-variables in the table, as the engine builds them.
func Deps(tb testing.TB, log io.Writer, mods ...ksr.Module) *ksr.Deps {
	tb.Helper()
	d := &ksr.Deps{
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: time.Now,
		Shv: ksr.NewSharedVars(),
		PVs: map[string]*ksr.PV{},
	}
	all := append([]ksr.Module{ksr.Core()}, mods...)
	for _, m := range mods {
		if err := d.Provision(Host{d}, m); err != nil {
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
