package engine_test

import (
	"bytes"
	"net"
	"strconv"
	"testing"
	"time"

	"kemi/engine/enginetest"
)

// BenchmarkOptionsUDP is the production path of one OPTIONS, end to end on
// loopback: a datagram read by the UDP listener, parsed, handed to a
// receiver, routed by Lua (KSR.sl.send_reply(200)), the reply written
// into a pooled buffer and sent; the client waits for it before sending the
// next. ns/op is the round trip; allocs/op and B/op count every goroutine of
// the process, so they are the engine's allocations per request (the
// client side allocates nothing). It guards the allocations of the hot path
// (bench/floor.sh measures its CPU against a Go floor):
//
//	go test ./engine -run '^$' -bench OptionsUDP -benchmem
func BenchmarkOptionsUDP(b *testing.B) {
	e := enginetest.Start(b, enginetest.Config(), map[string]string{"script.lua": `
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.sl.send_reply(404, "Not here")
end`}, quietLog)
	c, err := net.Dial("udp", e.Addr("udp"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	// One datagram, its counter (Via branch, From tag, Call-ID) rewritten in
	// place: a new transaction each time, no allocation on the client side.
	const mark = "0000000000"
	req := []byte("OPTIONS sip:bench@" + e.Addr("udp") + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-" + mark + "\r\n" +
		"From: <sip:sipp@" + local + ">;tag=" + mark + "\r\n" +
		"To: <sip:bench@" + e.Addr("udp") + ">\r\n" +
		"Call-ID: " + mark + "@bench\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 70\r\n" +
		"User-Agent: kemi-bench\r\n" +
		"Content-Length: 0\r\n\r\n")
	var at []int
	for i := 0; ; {
		j := bytes.Index(req[i:], []byte(mark))
		if j < 0 {
			break
		}
		at = append(at, i+j)
		i += j + len(mark)
	}
	buf := make([]byte, 65535)
	var num [20]byte
	roundTrip := func(i int) {
		d := strconv.AppendUint(num[:0], uint64(i), 10)
		for _, p := range at {
			copy(req[p+len(mark)-len(d):], d)
		}
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(enginetest.Patience))
		n, err := c.Read(buf)
		if err != nil {
			b.Fatal(err)
		}
		if !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200 ")) {
			b.Fatalf("reply %q", buf[:n])
		}
	}
	for i := range 1000 { // warm-up: pools, maps, the Lua state
		roundTrip(i + 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		roundTrip(i + 1001)
	}
}
