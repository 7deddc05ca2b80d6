//go:build linux && amd64

package main

import (
	"net"
	"testing"
	"time"
)

// TestRawModes: modes block and batch answer each request as answerRaw
// does, to its source (several queued at once for batch).
func TestRawModes(t *testing.T) {
	for name, serve := range map[string]func(*net.UDPConn) error{"block": serveBlocking, "batch": serveBatch} {
		t.Run(name, func(t *testing.T) {
			conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			// A blocked recvfrom outlives Close (mode block): the goroutine
			// ends with the test binary.
			defer conn.Close()
			go serve(conn)
			c, err := net.DialUDP("udp", nil, conn.LocalAddr().(*net.UDPAddr))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			const n = 20
			for i := range n {
				req := "OPTIONS sip:a@b SIP/2.0\r\nCall-ID: c" + string(rune('a'+i)) + "\r\n\r\n"
				if _, err := c.Write([]byte(req)); err != nil {
					t.Fatal(err)
				}
			}
			buf := make([]byte, 2048)
			for i := range n {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				k, err := c.Read(buf)
				if err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
				want := "SIP/2.0 200 OK\r\nCall-ID: c" + string(rune('a'+i)) + "\r\n\r\n"
				if got := string(buf[:k]); got != want {
					t.Fatalf("answer %d: %q, want %q", i, got, want)
				}
			}
		})
	}
}
