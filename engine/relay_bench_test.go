package engine_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine"
	"kemi/engine/enginetest"
)

// relayBench is the harness of the relay benchmarks: a proxy engine running
// script, an in-process UAS on loopback that answer answers, and a client
// that sends b.N transactions with send (i, the R-URI of the UAS and the
// client's own address) with up to 64 in flight; onReply reads every reply
// the client gets and says whether it completes one of them. ns/op is per
// completed one (client, proxy and UAS share the machine); profile the
// proxy with -cpuprofile, or take the process's CPU over N (/usr/bin/time)
// on a loaded machine, where ns/op is wall time.
func relayBench(b *testing.B, script string,
	answer func(uas net.PacketConn, req *sip.Request, src net.Addr),
	send func(c net.Conn, i int, ruri, local string),
	onReply func(c net.Conn, msg, ruri, local string) bool) {
	b.Helper()
	quiet := func(o *engine.Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	b.ReportAllocs()
	proxy := enginetest.Start(b, proxyConfig(), map[string]string{"script.lua": script}, quiet)
	uas, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer uas.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, src, err := uas.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(buf[:n])
			if req, ok := m.(*sip.Request); err == nil && ok {
				answer(uas, req, src)
			}
		}
	}()
	c, err := net.Dial("udp", proxy.Addr("udp"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	ruri := "sip:uas@" + uas.LocalAddr().String()
	const window = 64
	slots := make(chan struct{}, window)
	done := make(chan int)
	go func() {
		buf := make([]byte, 65536)
		n := 0
		for n < b.N {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, err := c.Read(buf)
			if err != nil {
				break // a lost datagram: nobody retransmits here
			}
			if onReply(c, string(buf[:k]), ruri, local) {
				n++
				select {
				case <-slots:
				default:
				}
			}
		}
		done <- n
	}()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		select {
		case slots <- struct{}{}:
		case <-time.After(time.Second): // the window is stuck on losses: go on
		}
		send(c, i, ruri, local)
	}
	n := <-done
	b.StopTimer()
	if time.Since(start) < 4*time.Second { // all still in tm's wait state (5 s)
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if f := os.Getenv("HELDPROF"); f != "" {
			w, _ := os.Create(f)
			pprof.WriteHeapProfile(w)
			w.Close()
		}
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "B-held/op")
	}
	if n < b.N*99/100 {
		b.Fatalf("%d of %d completed", n, b.N)
	}
	b.ReportMetric(float64(b.N-n), "lost")
}

// BenchmarkRelayMessage relays MESSAGEs through a proxy engine to a UAS
// answering 200 (relayBench): ns/op is per relayed MESSAGE.
func BenchmarkRelayMessage(b *testing.B) {
	relayBench(b, `
function ksr_request_route()
	if KSR.pv.get("$tt") ~= nil then return end
	KSR.tm.t_on_failure("ksr_failure")
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end
function ksr_failure() end
function ksr_reply_route() end
`,
		func(uas net.PacketConn, req *sip.Request, src net.Addr) {
			uas.WriteTo([]byte(rawReply(req, 200, "OK", "uas")), src)
		},
		func(c net.Conn, i int, ruri, local string) {
			fmt.Fprintf(c, "MESSAGE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-b%d\r\nFrom: <sip:a@x>;tag=%d\r\nTo: <%s>\r\n"+
				"Call-ID: %d-bench\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 5\r\n\r\nhello", ruri, local, i, i, ruri, i)
		},
		func(_ net.Conn, msg, _, _ string) bool { return strings.HasPrefix(msg, "SIP/2.0 200") })
}

// BenchmarkRelayInviteDialog relays whole calls through a proxy engine
// (relayBench): INVITE (the proxy's 100 Trying, the UAS's 180 and 200
// relayed), the ACK for the 200 and a BYE answered 200, the INVITE and BYE
// with t_relay, the ACK forwarded as tm forwards an ACK with no
// transaction; ns/op is per call.
func BenchmarkRelayInviteDialog(b *testing.B) {
	relayBench(b, `
function ksr_request_route()
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end
`,
		func(uas net.PacketConn, req *sip.Request, src net.Addr) {
			switch req.Method {
			case sip.INVITE:
				uas.WriteTo([]byte(rawReply(req, 180, "Ringing", "uas")), src)
				uas.WriteTo([]byte(rawReply(req, 200, "OK", "uas", "Contact: <sip:uas@"+uas.LocalAddr().String()+">")), src)
			case sip.BYE:
				uas.WriteTo([]byte(rawReply(req, 200, "OK", "uas")), src)
			}
		},
		func(c net.Conn, i int, ruri, local string) {
			fmt.Fprintf(c, "INVITE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-i%d\r\nFrom: <sip:a@x>;tag=%d\r\nTo: <%s>\r\n"+
				"Call-ID: %d-call\r\nCSeq: 1 INVITE\r\nContact: <sip:a@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", ruri, local, i, i, ruri, i, local)
		},
		func(c net.Conn, msg, ruri, local string) bool {
			if !strings.HasPrefix(msg, "SIP/2.0 200") {
				return false
			}
			var i int
			ci := strings.Index(msg, "\r\nCall-ID: ")
			if ci < 0 {
				return false
			}
			fmt.Sscanf(msg[ci+len("\r\nCall-ID: "):], "%d-call", &i)
			if strings.Contains(msg, "\r\nCSeq: 1 INVITE") {
				// The ACK for the 200 and the BYE, end to end (new branches).
				fmt.Fprintf(c, "ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-a%d\r\nFrom: <sip:a@x>;tag=%d\r\nTo: <%s>;tag=uas\r\n"+
					"Call-ID: %d-call\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", ruri, local, i, i, ruri, i)
				fmt.Fprintf(c, "BYE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-y%d\r\nFrom: <sip:a@x>;tag=%d\r\nTo: <%s>;tag=uas\r\n"+
					"Call-ID: %d-call\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", ruri, local, i, i, ruri, i)
				return false
			}
			return strings.Contains(msg, "\r\nCSeq: 2 BYE")
		})
}
