package ksr_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/sipnet"
)

// benchCall runs the Lua function f (defined by src) b.N times on a VM
// whose current message is coreInvite.
func benchCall(b *testing.B, src string) {
	d := &ksr.Deps{
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: time.Now,
		Shv: ksr.NewSharedVars(),
	}
	env := ksr.NewEnv(d, "bench/0", "bench", 0)
	L := lua.NewState()
	defer L.Close()
	ksr.Register(L, env)
	m, err := sip.ParseMessage([]byte(coreInvite))
	if err != nil {
		b.Fatal(err)
	}
	env.Msg = &ksr.Msg{Req: sipnet.NewFakeRequest(m.(*sip.Request))}
	if err := L.DoString(src); err != nil {
		b.Fatal(err)
	}
	f := L.GetGlobal("f")
	call := lua.P{Fn: f, NRet: 0, Protect: true}
	if err := L.CallByParam(call); err != nil { // warm the PV cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := L.CallByParam(call); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIsINVITE is a loop of 100 KSR.is_INVITE() calls.
func BenchmarkIsINVITE(b *testing.B) {
	benchCall(b, `function f() for i = 1, 100 do KSR.is_INVITE() end end`)
}

// BenchmarkPVGetCi is a loop of 100 KSR.pv.get("$ci") calls.
func BenchmarkPVGetCi(b *testing.B) {
	benchCall(b, `function f() for i = 1, 100 do KSR.pv.get("$ci") end end`)
}

// BenchmarkPVGetRU is a loop of 100 KSR.pv.get("$rU") calls.
func BenchmarkPVGetRU(b *testing.B) {
	benchCall(b, `function f() for i = 1, 100 do KSR.pv.get("$rU") end end`)
}
