package main

import (
	"bytes"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRun: against a responder that answers every request with a 200, a
// short run sends rate*duration requests, all answered, each a new
// transaction, and measures this process's CPU.
func TestRun(t *testing.T) {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	branches := make(chan string, 100)
	go func() {
		buf := make([]byte, 65535)
		for {
			n, src, err := srv.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			req := buf[:n]
			i := bytes.Index(req, []byte("branch="))
			j := bytes.IndexByte(req[i:], '\r')
			select {
			case branches <- string(req[i : i+j]):
			default:
			}
			srv.WriteToUDPAddrPort(append([]byte("SIP/2.0 200 OK\r\n"), req[bytes.IndexByte(req, '\n')+1:]...), src)
		}
	}()
	// Every answer is waited for (up to 30 s, a guard: a busy machine
	// may be slow, the loopback responder loses none).
	r, err := run(srv.LocalAddr().String(), 500, 100*time.Millisecond, 30*time.Second, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if r.sent != 50 || r.ok != 50 {
		t.Fatalf("sent %d, answered %d; want 50 and 50", r.sent, r.ok)
	}
	if r.ns <= 0 {
		t.Fatalf("no CPU measured for this process: %+v", r)
	}
	seen := map[string]bool{}
	for len(branches) > 0 {
		b := <-branches
		if seen[b] {
			t.Fatalf("branch %s sent twice", b)
		}
		seen[b] = true
	}
	if len(seen) != 50 || !strings.Contains(r.String(), "sent 50 ok 50") {
		t.Fatalf("%d distinct branches, result %q", len(seen), r)
	}
}

func TestStamp(t *testing.T) {
	req := []byte("a=" + mark + " b=" + mark)
	stamp(req, []int{2, 15}, 42)
	if got := string(req); got != "a=0000000042 b=0000000042" {
		t.Fatalf("got %q", got)
	}
}
