package engine_test

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine"
	"kemi/engine/enginetest"
)

// BenchmarkRelayInviteDialog relays whole calls through a proxy engine over
// loopback: INVITE (the proxy's 100 Trying, the UAS's 180 and 200 relayed),
// the ACK for the 200 and a BYE answered 200, the INVITE and BYE with
// t_relay, the ACK forwarded as tm forwards an ACK with no transaction. The
// UAS is in-process; up to 64 calls are in flight; ns/op is per call
// (client, proxy and UAS share the machine). Profile the proxy with
// -cpuprofile; take the process's CPU time over N calls (/usr/bin/time) on a
// loaded machine, where ns/op is wall time.
func BenchmarkRelayInviteDialog(b *testing.B) {
	quiet := func(o *engine.Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	script := `
function ksr_request_route()
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end
`
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
			req, ok := m.(*sip.Request)
			if err != nil || !ok {
				continue
			}
			switch req.Method {
			case sip.INVITE:
				uas.WriteTo([]byte(rawReply(req, 180, "Ringing", "uas")), src)
				uas.WriteTo([]byte(rawReply(req, 200, "OK", "uas", "Contact: <sip:uas@"+uas.LocalAddr().String()+">")), src)
			case sip.BYE:
				uas.WriteTo([]byte(rawReply(req, 200, "OK", "uas")), src)
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
			msg := string(buf[:k])
			if !strings.HasPrefix(msg, "SIP/2.0 200") {
				continue
			}
			var i int
			ci := strings.Index(msg, "\r\nCall-ID: ")
			if ci < 0 {
				continue
			}
			fmt.Sscanf(msg[ci+len("\r\nCall-ID: "):], "%d-call", &i)
			if strings.Contains(msg, "\r\nCSeq: 1 INVITE") {
				// The ACK for the 200 and the BYE, end to end (new branches).
				fmt.Fprintf(c, "ACK %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-a%d\r\nFrom: <sip:a@x>;tag=%d\r\nTo: <%s>;tag=uas\r\n"+
					"Call-ID: %d-call\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", ruri, local, i, i, ruri, i)
				fmt.Fprintf(c, "BYE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-y%d\r\nFrom: <sip:a@x>;tag=%d\r\nTo: <%s>;tag=uas\r\n"+
					"Call-ID: %d-call\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", ruri, local, i, i, ruri, i)
				continue
			}
			if strings.Contains(msg, "\r\nCSeq: 2 BYE") {
				n++
				select {
				case <-slots:
				default:
				}
			}
		}
		done <- n
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		select {
		case slots <- struct{}{}:
		case <-time.After(time.Second): // the window is stuck on losses: go on
		}
		fmt.Fprintf(c, "INVITE %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-i%d\r\nFrom: <sip:a@x>;tag=%d\r\nTo: <%s>\r\n"+
			"Call-ID: %d-call\r\nCSeq: 1 INVITE\r\nContact: <sip:a@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", ruri, local, i, i, ruri, i, local)
	}
	n := <-done
	b.StopTimer()
	if n < b.N*99/100 {
		b.Fatalf("%d of %d calls completed", n, b.N)
	}
	b.ReportMetric(float64(b.N-n), "lost")
}
