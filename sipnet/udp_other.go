//go:build !(linux && (amd64 || arm64))

package sipnet

import (
	"net"
	"net/netip"
)

// newUDPReader reads one datagram per system call where recvmmsg is not
// wired (udp_linux.go).
func newUDPReader(uc *net.UDPConn) udpReader {
	return plainReader{uc: uc, buf: make([]byte, udpReadSize)}
}

// rawSender is Linux's (udp_linux.go); elsewhere listeners write through
// net.UDPConn.
type rawSender struct{}

func newRawSender(*net.UDPConn) *rawSender { return nil }

func (*rawSender) send([]byte, netip.AddrPort) error { return nil }
