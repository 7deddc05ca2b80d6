package sipnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// readDatagram is what a test's reader got: a copy of the data and its source.
type readDatagram struct {
	data string
	src  netip.AddrPort
}

// serveInto runs rd.serve on a goroutine, sending every datagram to the
// returned channel; the error serve ends with goes to the second one.
func serveInto(rd udpReader) (<-chan readDatagram, <-chan error) {
	got := make(chan readDatagram, 1024)
	done := make(chan error, 1)
	go func() {
		done <- rd.serve(func(data []byte, src netip.AddrPort) { got <- readDatagram{string(data), src} })
	}()
	return got, done
}

// TestUDPReaderBatch: datagrams queued on a socket, from IPv4 and IPv6
// peers, come out of the listener's reader one by one, in order, each with
// the source ReadFromUDPAddrPort gives (recvmmsg reads them in batches on
// Linux); more than a batch's worth, and an empty datagram among them.
// Closing the socket ends the reader with net.ErrClosed.
func TestUDPReaderBatch(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			uc, peers := udpPeers(t, network)
			const n = 3*16 + 5 // several recvmmsg batches (16) and a partial one
			for i := range n {
				msg := []byte(fmt.Sprintf("datagram %d", i))
				if i == 7 {
					msg = nil
				}
				if _, err := peers[i%2].Write(msg); err != nil {
					t.Fatal(err)
				}
			}
			got, done := serveInto(newUDPReader(uc))
			for i := range n {
				d := recvDatagram(t, got)
				want := fmt.Sprintf("datagram %d", i)
				if i == 7 {
					want = ""
				}
				if d.data != want {
					t.Fatalf("read %d: %q, want %q", i, d.data, want)
				}
				if wantSrc := peers[i%2].LocalAddr().(*net.UDPAddr).AddrPort(); d.src != wantSrc {
					t.Fatalf("read %d: source %v, want %v", i, d.src, wantSrc)
				}
			}
			uc.Close()
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("serve after close: %v, want net.ErrClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("serve did not return after the socket was closed")
			}
		})
	}
}

// TestUDPReaderWakes: after a short batch the reader waits for readability
// without reading again (udp_linux.go); a datagram sent once it has gone
// back to waiting is still read, every time: one datagram, then its
// answer awaited before the next, 500 times, so each one finds the reader
// waiting on an empty queue.
func TestUDPReaderWakes(t *testing.T) {
	uc, peers := udpPeers(t, "udp4")
	got, _ := serveInto(newUDPReader(uc))
	for i := range 500 {
		want := fmt.Sprintf("ping %d", i)
		if _, err := peers[0].Write([]byte(want)); err != nil {
			t.Fatal(err)
		}
		if d := recvDatagram(t, got); d.data != want {
			t.Fatalf("got %q, want %q", d.data, want)
		}
	}
}

// udpPeers returns a listening socket and two peers connected to it.
func udpPeers(t *testing.T, network string) (*net.UDPConn, []*net.UDPConn) {
	t.Helper()
	loop := "127.0.0.1:0"
	if network == "udp6" {
		loop = "[::1]:0"
	}
	uc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(loop)))
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	t.Cleanup(func() { uc.Close() })
	uc.SetReadBuffer(1 << 20)
	peers := make([]*net.UDPConn, 2)
	for i := range peers {
		if peers[i], err = net.DialUDP(network, nil, uc.LocalAddr().(*net.UDPAddr)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { peers[i].Close() })
	}
	return uc, peers
}

func recvDatagram(t *testing.T, got <-chan readDatagram) readDatagram {
	t.Helper()
	select {
	case d := <-got:
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no datagram read within 10 s")
		return readDatagram{}
	}
}

// TestSendUDP: a listener's writes reach IPv4 and IPv6 peers from an IPv4,
// an IPv6 and a dual-stack socket (IPv4 peers as v4-mapped addresses there),
// leaving from the listener's socket, as net.UDPConn's writes do; one to a
// family the socket cannot reach fails (sendto through the raw system call
// on Linux, net.UDPConn elsewhere).
func TestSendUDP(t *testing.T) {
	listen := func(t *testing.T, network, addr string) *net.UDPConn {
		t.Helper()
		ua, err := net.ResolveUDPAddr(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		uc, err := net.ListenUDP(network, ua)
		if err != nil {
			t.Skipf("%s %s: %v", network, addr, err)
		}
		t.Cleanup(func() { uc.Close() })
		return uc
	}
	cases := []struct {
		name, network, addr string
		peers               []string // peer socket addresses (network udp)
		fails               string   // a destination the socket cannot reach
	}{
		{"ipv4", "udp4", "127.0.0.1:0", []string{"127.0.0.1:0"}, "[::1]:5060"},
		{"ipv6", "udp6", "[::1]:0", []string{"[::1]:0"}, ""},
		{"dual-stack", "udp", ":0", []string{"127.0.0.1:0", "[::1]:0"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			uc := listen(t, c.network, c.addr)
			ln := &Listener{pc: uc, raw: newRawSender(uc)}
			port := uc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
			for _, pa := range c.peers {
				peer := listen(t, "udp", pa)
				dst := peer.LocalAddr().(*net.UDPAddr).AddrPort()
				msg := []byte("to " + dst.String())
				if err := ln.sendUDP(uc, msg, dst); err != nil {
					t.Fatalf("send to %v: %v", dst, err)
				}
				peer.SetReadDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 100)
				n, src, err := peer.ReadFromUDPAddrPort(buf)
				if err != nil {
					t.Fatalf("peer %v: %v", dst, err)
				}
				if string(buf[:n]) != string(msg) || src.Port() != port {
					t.Fatalf("peer %v got %q from %v, want %q from port %d", dst, buf[:n], src, msg, port)
				}
			}
			if c.fails != "" {
				if err := ln.sendUDP(uc, []byte("x"), netip.MustParseAddrPort(c.fails)); err == nil {
					t.Fatalf("send to %s from %s: no error", c.fails, c.addr)
				}
			}
		})
	}
}

// TestSrcNames: the text of each of the last 8 source addresses is kept
// (a relay's peers alternate), the oldest gives way to a ninth, and every
// name is the address's String.
func TestSrcNames(t *testing.T) {
	var c srcNames
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), uint16(5060+i))
	}
	for round := 0; round < 3; round++ {
		for i := range 8 {
			if got, want := c.name(addr(i)), addr(i).String(); got != want {
				t.Fatalf("name %q, want %q", got, want)
			}
		}
	}
	first := c.text[0]
	if n := testing.AllocsPerRun(100, func() { c.name(addr(3)); c.name(addr(4)) }); n != 0 {
		t.Fatalf("%v allocations for remembered addresses", n)
	}
	if got := c.name(addr(8)); got != addr(8).String() || c.addr[0] != addr(8) || c.text[0] == first {
		t.Fatalf("the ninth address did not replace the oldest: %q, %v", got, c.addr[0])
	}
	v6 := netip.MustParseAddrPort("[2001:db8::1]:5060")
	if got := c.name(v6); got != "[2001:db8::1]:5060" {
		t.Fatalf("IPv6 name %q", got)
	}
}
