package sipnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestUDPReaderBatch: datagrams queued on a socket, from IPv4 and IPv6
// peers, come out of the listener's reader one by one, in order, each with
// the source ReadFromUDPAddrPort gives (recvmmsg reads them in batches on
// Linux); more than a batch's worth, and an empty datagram among them.
// Closing the socket ends the reader with net.ErrClosed.
func TestUDPReaderBatch(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			loop := "127.0.0.1:0"
			if network == "udp6" {
				loop = "[::1]:0"
			}
			uc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(loop)))
			if err != nil {
				t.Skipf("no %s loopback: %v", network, err)
			}
			defer uc.Close()
			uc.SetReadBuffer(1 << 20)
			peers := make([]*net.UDPConn, 2)
			for i := range peers {
				if peers[i], err = net.DialUDP(network, nil, uc.LocalAddr().(*net.UDPAddr)); err != nil {
					t.Fatal(err)
				}
				defer peers[i].Close()
			}
			const n = 3*8 + 5 // several batches and a partial one
			for i := range n {
				msg := []byte(fmt.Sprintf("datagram %d", i))
				if i == 7 {
					msg = nil
				}
				if _, err := peers[i%2].Write(msg); err != nil {
					t.Fatal(err)
				}
			}
			rd := newUDPReader(uc)
			for i := range n {
				uc.SetReadDeadline(time.Now().Add(10 * time.Second))
				data, src, err := rd.read()
				if err != nil {
					t.Fatalf("read %d: %v", i, err)
				}
				want := fmt.Sprintf("datagram %d", i)
				if i == 7 {
					want = ""
				}
				if string(data) != want {
					t.Fatalf("read %d: %q, want %q", i, data, want)
				}
				if wantSrc := peers[i%2].LocalAddr().(*net.UDPAddr).AddrPort(); src != wantSrc {
					t.Fatalf("read %d: source %v, want %v", i, src, wantSrc)
				}
			}
			uc.Close()
			if _, _, err := rd.read(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after close: %v, want net.ErrClosed", err)
			}
		})
	}
}
