//go:build !(linux && (amd64 || arm64))

package sipnet

import "net"

// newUDPReader reads one datagram per system call where recvmmsg is not
// wired (udp_mmsg_linux.go).
func newUDPReader(uc *net.UDPConn) udpReader {
	return plainReader{uc: uc, buf: make([]byte, udpReadSize)}
}
