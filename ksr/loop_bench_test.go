package ksr_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/luavm"
	"kemi/sipnet"
)

// loopScript is the timed loops of bench/lua/mqueue.lua that do not need
// a queue, one Lua call running n iterations, on a VM built as the
// engine builds its workers' (luavm), so ns/op is per KSR call as in the
// bench/mqueue-loop.sh columns.
const loopScript = `
function empty(n) for _ = 1, n do end end
function is_message(n) for _ = 1, n do KSR.is_MESSAGE() end end
function pv_get_ci(n) for _ = 1, n do KSR.pv.get("$ci") end end
`

// BenchmarkLuaLoop: ns and allocations per iteration of a Lua loop, the
// current message a MESSAGE.
//
//	empty      the bare Lua for loop (gopher-lua boxes its counter)
//	is_MESSAGE KSR.is_MESSAGE()
//	pv_get_ci  KSR.pv.get("$ci")
func BenchmarkLuaLoop(b *testing.B) {
	for _, fn := range []string{"empty", "is_MESSAGE", "pv_get_ci"} {
		b.Run(fn, func(b *testing.B) {
			g, err := luavm.Build(1, []string{"loop.lua"}, func(string) ([]byte, error) { return []byte(loopScript), nil })
			if err != nil {
				b.Fatal(err)
			}
			var cur luavm.Current
			cur.Store(g)
			d := &ksr.Deps{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now, Shv: ksr.NewSharedVars()}
			env := ksr.NewEnv(d, "bench/0", "bench", 0)
			vm, err := luavm.New(&cur, luavm.Options{Name: "bench", Init: func(L *lua.LState) error { ksr.Register(L, env); return nil }})
			if err != nil {
				b.Fatal(err)
			}
			defer vm.Close()
			raw := strings.Replace(strings.Replace(coreInvite, "INVITE sip", "MESSAGE sip", 1), "42 INVITE", "42 MESSAGE", 1)
			m, err := sip.ParseMessage([]byte(raw))
			if err != nil {
				b.Fatal(err)
			}
			env.Msg = &ksr.Msg{Req: sipnet.NewFakeRequest(m.(*sip.Request))}
			if err := vm.L.DoString(`assert(KSR.is_MESSAGE() == true and KSR.pv.get("$ci") == "call-1@10.0.0.1")`); err != nil {
				b.Fatal(err)
			}
			name := strings.ToLower(fn)
			if err := vm.CallGlobal(name, lua.LNumber(100)); err != nil { // warm up: the PV cache
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			if err := vm.CallGlobal(name, lua.LNumber(b.N)); err != nil {
				b.Fatal(err)
			}
		})
	}
}
