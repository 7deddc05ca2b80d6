package engine_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine"
	"kemi/engine/enginetest"
	"kemi/timers"
)

// benchScripts: a MESSAGE is suspended for X-Delay ms with KSR.async.ms_route
// (route) or KSR.async.ms_sleep (sleep), then answered 200. They are two
// scripts because a script that names ms_sleep runs every request handler
// as a coroutine; the sleep handler ends with return, so that its coroutine
// thread is reused (docs/async.md).
var benchScripts = map[string]string{
	"route": `
function ksr_request_route()
	if KSR.async.ms_route("resume", tonumber(KSR.hdr.get("X-Delay") or "50")) < 0 then
		KSR.sl.send_reply(500, "async failed")
	end
	KSR.x.exit()
end
function resume() KSR.tm.t_reply(200, "OK") end`,
	"sleep": `
function ksr_request_route()
	if KSR.async.ms_sleep(tonumber(KSR.hdr.get("X-Delay") or "50")) < 0 then
		KSR.sl.send_reply(500, "async failed")
		return
	end
	KSR.sl.send_reply(200, "OK")
end`,
}

// quietLog keeps benchmarks from logging (and from holding the log lines).
func quietLog(o *engine.Options) {
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}

func benchMessage(local, server, cid, mode string, delayMS int) []byte {
	return []byte(fmt.Sprintf("MESSAGE sip:b@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: %s\r\nCSeq: 1 MESSAGE\r\n"+
		"X-Mode: %s\r\nX-Delay: %d\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		server, local, enginetest.RandomID(), cid, mode, delayMS))
}

// BenchmarkAsyncResumeDelay measures, on the real clock, how late the reply
// of a request suspended for ASYNC_BENCH_DELAY (default 50 ms) arrives at a
// UDP client on loopback: (arrival - send - delay), reported as p50/p99/max
// in ms. Requests go out at ASYNC_BENCH_RATE/s (default 1,000). It is a
// measurement, not a test: run it on a quiet machine
//
//	go test -run '^$' -bench BenchmarkAsyncResumeDelay -benchtime 5000x ./engine/
//	ASYNC_BENCH_RATE=5000 ASYNC_BENCH_DELAY=1s go test -run '^$' -bench BenchmarkAsyncResumeDelay -benchtime 50000x ./engine/
func BenchmarkAsyncResumeDelay(b *testing.B) {
	rate, delay := 1000, 50*time.Millisecond
	if v, err := strconv.Atoi(os.Getenv("ASYNC_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	if v, err := time.ParseDuration(os.Getenv("ASYNC_BENCH_DELAY")); err == nil && v >= time.Millisecond {
		delay = v
	}
	for _, mode := range []string{"route", "sleep"} {
		b.Run(mode, func(b *testing.B) {
			e := enginetest.Start(b, asyncCfg(`modparam("async", "workers", 2)`),
				map[string]string{"script.lua": benchScripts[mode]}, quietLog)
			c, err := net.Dial("udp", e.Addr("udp"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.(*net.UDPConn).SetReadBuffer(4 << 20)
			var mu sync.Mutex
			sent := make(map[string]time.Time, b.N)
			lateness := make([]float64, 0, b.N)
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 65536)
				for len(lateness) < b.N {
					c.SetReadDeadline(time.Now().Add(delay + 5*time.Second))
					n, err := c.Read(buf)
					if err != nil {
						return
					}
					now := time.Now()
					m, err := sip.ParseMessage(buf[:n])
					if err != nil {
						continue
					}
					if res, ok := m.(*sip.Response); ok && res.StatusCode == 200 {
						mu.Lock()
						if t0, ok := sent[res.CallID().Value()]; ok {
							lateness = append(lateness, float64(now.Sub(t0)-delay)/float64(time.Millisecond))
						}
						mu.Unlock()
					}
				}
			}()
			local := c.LocalAddr().String()
			start := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
				cid := fmt.Sprintf("d%d-%s", i, enginetest.RandomID())
				msg := benchMessage(local, e.Addr("udp"), cid, mode, int(delay/time.Millisecond))
				mu.Lock()
				sent[cid] = time.Now()
				mu.Unlock()
				c.Write(msg)
			}
			<-done
			b.StopTimer()
			mu.Lock()
			defer mu.Unlock()
			if len(lateness) == 0 {
				b.Fatal("no reply")
			}
			slices.Sort(lateness)
			pct := func(p float64) float64 { return lateness[min(len(lateness)-1, int(p*float64(len(lateness))))] }
			b.ReportMetric(pct(0.5), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(lateness[len(lateness)-1], "max-ms")
			b.ReportMetric(lateness[0], "min-ms")
			b.ReportMetric(float64(b.N-len(lateness)), "lost")
		})
	}
}

// BenchmarkAsyncSuspendedMemory measures the Go heap held per suspended
// request (a fake clock keeps them suspended): live heap after a GC with N
// requests suspended, minus before, over N. route = KSR.async.ms_route (a
// server transaction and the message), sleep = KSR.async.ms_sleep (the same
// plus the handler's coroutine).
//
//	go test -run '^$' -bench BenchmarkAsyncSuspendedMemory -benchtime 1x ./engine/
func BenchmarkAsyncSuspendedMemory(b *testing.B) {
	for _, mode := range []string{"route", "sleep"} {
		b.Run(mode, func(b *testing.B) {
			const n = 20000
			clk := timers.NewFake(time.Now())
			e := enginetest.Start(b, asyncCfg(`modparam("async", "workers", 2)`),
				map[string]string{"script.lua": benchScripts[mode]}, quietLog, func(o *engine.Options) { o.Clock = clk })
			c, err := net.Dial("udp", e.Addr("udp"))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			local := c.LocalAddr().String()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for sent := 0; sent < n; {
					for j := 0; j < 200; j++ {
						c.Write(benchMessage(local, e.Addr("udp"), fmt.Sprintf("m%d-%d-%s", i, sent, enginetest.RandomID()), mode, 20000))
						sent++
					}
					deadline := time.Now().Add(5 * time.Second)
					for e.Status().Suspended < sent-5 && time.Now().Before(deadline) {
						time.Sleep(time.Millisecond)
					}
				}
			}
			b.StopTimer()
			time.Sleep(100 * time.Millisecond)
			held := e.Status().Suspended
			runtime.GC()
			runtime.ReadMemStats(&after)
			if held == 0 {
				b.Fatal("nothing suspended")
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(held), "B/suspended")
			b.ReportMetric(float64(held), "suspended")
		})
	}
}
