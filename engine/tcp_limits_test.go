package engine_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
)

// TestTCPLimitsFromConfig: tcp_max_connections, tcp_connection_lifetime and
// tcp_rd_timeout reach the TCP listener, and what they close is counted in
// kemi.status.
func TestTCPLimitsFromConfig(t *testing.T) {
	const guard = 30 * time.Second
	e := enginetest.Start(t, enginetest.Config(
		"tcp_max_connections=2", "tcp_connection_lifetime=1", "tcp_rd_timeout=1"),
		map[string]string{"script.lua": `function ksr_request_route() KSR.sl.send_reply(200, "OK") end`})
	addr := e.Addr("tcp")
	counter := func(name string) int64 { return e.Status().Counters[name] }
	// closed waits until the server closes c.
	closed := func(c *enginetest.Client) {
		t.Helper()
		for {
			_, err := c.Recv(guard)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("the server did not close the connection")
			}
			if err != nil {
				return
			}
		}
	}

	c1, c2 := enginetest.Dial(t, "tcp", addr), enginetest.Dial(t, "tcp", addr)
	for _, c := range []*enginetest.Client{c1, c2} {
		if r := c.Do(enginetest.Req{Method: "OPTIONS"}, guard); r.StatusCode != 200 {
			t.Fatalf("reply %d", r.StatusCode)
		}
	}
	// Over the cap: accepted and closed at once.
	closed(enginetest.Dial(t, "tcp", addr))
	if n := counter("tcp_rejected"); n != 1 {
		t.Fatalf("tcp_rejected %d, want 1", n)
	}
	// c2 stops in the middle of a message: cut by tcp_rd_timeout. c1 says
	// nothing more: closed by tcp_connection_lifetime.
	req := c2.Build(enginetest.Req{Method: "OPTIONS"})
	c2.Send(req[:strings.Index(req, "\r\n")+2])
	closed(c2)
	closed(c1)
	if r, i := counter("tcp_read_timeouts"), counter("tcp_idle_closed"); r != 1 || i != 1 {
		t.Fatalf("tcp_read_timeouts %d, tcp_idle_closed %d; want 1, 1", r, i)
	}
	// Both places are free again.
	deadline := time.Now().Add(guard)
	for counter("tcp_connections") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("tcp_connections %d, want 0", counter("tcp_connections"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := enginetest.Dial(t, "tcp", addr).Do(enginetest.Req{Method: "OPTIONS"}, guard); r.StatusCode != 200 {
		t.Fatalf("reply %d", r.StatusCode)
	}
}

func TestTCPLimitSettings(t *testing.T) {
	for _, bad := range []string{"tcp_max_connections=0", "tcp_connection_lifetime=-1", `tcp_rd_timeout="x"`} {
		cfg := enginetest.Config(bad)
		_, err := enginetest.TryStart(t, cfg, map[string]string{"script.lua": `function ksr_request_route() end`})
		name := bad[:strings.Index(bad, "=")]
		if err == nil || !strings.Contains(err.Error(), name+": expected an integer >= 1") {
			t.Errorf("%s: error %v", bad, err)
		}
	}
}
