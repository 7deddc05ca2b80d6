package engine_test

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
)

// TestAsyncThousandSuspendedAtOnce: 1,000 MESSAGEs from 10 UDP sockets, each
// suspended 1 s with KSR.async.route and answered 200 by the resumed route.
// The client retransmits every request without a final reply every 300 ms
// (the first two rounds before any resume): each request must run the script
// once, resume once and get one final reply (repeated only for a
// retransmission that crossed it).
func TestAsyncThousandSuspendedAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 requests over loopback")
	}
	script := `
function ksr_request_route()
	KSR.mqueue.mq_add("seen", "route", KSR.pv.get("$ci"))
	if KSR.async.route("resume", 1) < 0 then
		KSR.sl.send_reply(500, "async failed")
	end
	KSR.x.exit()
end
function resume()
	KSR.mqueue.mq_add("seen", "resume", KSR.pv.get("$ci"))
	KSR.tm.t_reply(200, "OK")
end`
	e := enginetest.Start(t, asyncCfg(`modparam("async", "workers", 2)`), map[string]string{"script.lua": script})
	const sockets, perSocket = 10, 100
	srv, err := net.ResolveUDPAddr("udp", e.Addr("udp"))
	if err != nil {
		t.Fatal(err)
	}

	type call struct {
		raw    []byte
		sent   time.Time // first transmission
		first  time.Time // arrival of the first final reply
		finals []string  // "code to-tag", in arrival order
	}
	var mu sync.Mutex
	calls := map[string]*call{}
	var readers sync.WaitGroup
	conns := make([]*net.UDPConn, sockets)
	for s := range conns {
		c, err := net.DialUDP("udp", nil, srv)
		if err != nil {
			t.Fatal(err)
		}
		c.SetReadBuffer(1 << 20)
		conns[s] = c
		t.Cleanup(func() { c.Close() })
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, 65536)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return // closed at the end
				}
				m, err := sip.ParseMessage(buf[:n])
				if err != nil {
					t.Errorf("unparsable reply: %v", err)
					continue
				}
				res, ok := m.(*sip.Response)
				if !ok || res.StatusCode < 200 {
					continue
				}
				tag, _ := res.To().Params.Get("tag")
				mu.Lock()
				if cl := calls[res.CallID().Value()]; cl != nil {
					if len(cl.finals) == 0 {
						cl.first = time.Now()
					}
					cl.finals = append(cl.finals, fmt.Sprintf("%d %s", res.StatusCode, tag))
				}
				mu.Unlock()
			}
		}()
	}
	order := make([][]string, sockets) // call ids per socket, in send order
	for s, c := range conns {
		local := c.LocalAddr().String()
		for i := 0; i < perSocket; i++ {
			cid := fmt.Sprintf("load-%d-%d-%s", s, i, enginetest.RandomID())
			raw := fmt.Sprintf("MESSAGE sip:load@%s SIP/2.0\r\n"+
				"Via: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
				"From: <sip:alice@example.com>;tag=%d\r\nTo: <sip:load@example.com>\r\n"+
				"Call-ID: %s\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
				e.Addr("udp"), local, enginetest.RandomID(), i, cid)
			mu.Lock()
			calls[cid] = &call{raw: []byte(raw)}
			mu.Unlock()
			order[s] = append(order[s], cid)
		}
	}
	send := func(retransmission bool) {
		for s, c := range conns {
			for _, cid := range order[s] {
				mu.Lock()
				var raw []byte
				if cl := calls[cid]; !retransmission || len(cl.finals) == 0 {
					raw = cl.raw
					if !retransmission {
						cl.sent = time.Now()
					}
				}
				mu.Unlock()
				if raw != nil {
					if _, err := c.Write(raw); err != nil {
						t.Errorf("send: %v", err)
					}
				}
			}
		}
	}
	start := time.Now()
	send(false)
	// Retransmit every request still without a final reply every 300 ms, as a client's
	// timer would, until each has one. The first rounds land while the requests are
	// suspended (1 s) and must be absorbed; a datagram lost to a full socket buffer is sent
	// again. Driven by the replies, not by a fixed schedule.
	deadline := time.Now().Add(enginetest.Patience)
	for {
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		missing := 0
		for _, cl := range calls {
			if len(cl.finals) == 0 {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests got no final reply", missing, sockets*perSocket)
		}
		send(true)
	}
	// A little longer for duplicates.
	time.Sleep(300 * time.Millisecond)
	for _, c := range conns {
		c.Close()
	}
	readers.Wait()
	bad := 0
	for cid, cl := range calls {
		// A retransmission that crossed the final reply gets that same reply again (the
		// server transaction's job); a second, different final would be a bug.
		if len(cl.finals) == 0 || !strings.HasPrefix(cl.finals[0], "200 ") || slices.ContainsFunc(cl.finals, func(f string) bool { return f != cl.finals[0] }) {
			if bad++; bad <= 5 {
				t.Errorf("%s: finals %v, want one 200 (repeated only as a retransmission)", cid, cl.finals)
			}
		}
		// A lower bound only: the resume may come late on a busy machine,
		// never early.
		if d := cl.first.Sub(cl.sent); d < time.Second {
			if bad++; bad <= 5 {
				t.Errorf("%s: answered %s after sending, before its 1 s suspension ended", cid, d)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d calls without exactly one final 200", bad)
	}
	waitPending(t, e, 0)
	if r, s := seen(e, "route"), seen(e, "resume"); r != sockets*perSocket || s != sockets*perSocket {
		t.Fatalf("the route ran %d times and the resume %d times, want %d each", r, s, sockets*perSocket)
	}
	st := e.SIP().Stats()
	t.Logf("requests %d (absorbed %d), replies %d, %s", st.Requests, st.Absorbed, st.Replies, time.Since(start).Round(time.Millisecond))
}
