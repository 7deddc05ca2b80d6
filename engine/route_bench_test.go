package engine

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"kemi/sipnet"
)

const benchOptions = "OPTIONS sip:bench@127.0.0.1:5060 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-bench-1\r\n" +
	"From: <sip:sipp@127.0.0.1:5070>;tag=1\r\n" +
	"To: <sip:127.0.0.1:5060>\r\n" +
	"Call-ID: 1-bench@127.0.0.1\r\n" +
	"CSeq: 1 OPTIONS\r\n" +
	"Max-Forwards: 70\r\n" +
	"Content-Length: 0\r\n\r\n"

// BenchmarkOptionsRoute measures one OPTIONS through the whole in-process
// path: parse, ksr_request_route in Lua, KSR.sl.send_reply, reply serialised;
// without budgets, with the default memory budget, with a time budget, and
// with both.
func BenchmarkOptionsRoute(b *testing.B) {
	b.Run("budget=off", func(b *testing.B) {
		benchOptionsRoute(b, "modparam(\"app_lua\", \"max_mem_mb\", 0)\n")
	})
	b.Run("budget=mem", func(b *testing.B) { benchOptionsRoute(b, "") }) // the default: max_mem_mb 256
	b.Run("budget=1000ms", func(b *testing.B) {
		benchOptionsRoute(b, "modparam(\"app_lua\", \"max_mem_mb\", 0)\nmodparam(\"app_lua\", \"max_exec_ms\", 1000)\n")
	})
	b.Run("budget=1000ms,mem", func(b *testing.B) {
		benchOptionsRoute(b, "modparam(\"app_lua\", \"max_exec_ms\", 1000)\n")
	})
}

func benchOptionsRoute(b *testing.B, extra string) {
	w := soloWorker(b, "bench/0", extra, `
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.sl.send_reply(404, "Not here")
end`)
	parser := sip.NewParser()
	raw := []byte(benchOptions)
	var out bytes.Buffer
	src := netip.MustParseAddrPort("127.0.0.1:5070")
	sink := func(r *sip.Response) error { out.Reset(); r.StringWrite(&out); return nil }
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := parser.ParseSIP(raw)
		if err != nil {
			b.Fatal(err)
		}
		r := sipnet.NewFakeRequest(m.(*sip.Request))
		r.Src = src
		r.Sink = sink
		w.e.pending.Add(1)
		w.Run((*requestTask)(r))
	}
	if out.Len() == 0 {
		b.Fatal("no reply")
	}
}

// soloWorker builds an engine without network from a configuration that
// loads script (plus the cfg lines extra) and returns one worker of it, for
// driving the routing path directly; it is closed at cleanup.
func soloWorker(tb testing.TB, name, extra, script string) *worker {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "script.lua"), []byte(script), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg := "loadmodule \"app_lua.so\"\nmodparam(\"app_lua\", \"load\", \"script.lua\")\n" + extra
	if err := os.WriteFile(filepath.Join(dir, "kemi.cfg"), []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
	set, err := Load(filepath.Join(dir, "kemi.cfg"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	e, err := New(set, Options{NoNetwork: true, Logger: discardLogger()})
	if err != nil {
		tb.Fatal(err)
	}
	w, err := e.newWorker(name, strings.SplitN(name, "/", 2)[0], 0, false)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Close)
	return w
}

// BenchmarkEnterLeave is the bookkeeping around every Lua callback: the
// stuck-worker mark (enter) and the latency histogram (leave).
func BenchmarkEnterLeave(b *testing.B) {
	w := soloWorker(b, "bench/0", "", "function ksr_request_route() end")
	fn := w.e.set.RequestCB
	b.ReportAllocs()
	for b.Loop() {
		w.enter(fn)
		w.leave()
	}
}
