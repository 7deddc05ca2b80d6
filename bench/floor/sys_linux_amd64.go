//go:build linux && amd64

package main

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"syscall"
	"unsafe"
)

// socketFD returns conn's descriptor (valid while conn is open).
func socketFD(conn *net.UDPConn) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// serveBlocking is mode block: Kamailio's receive loop (udp_rcv_loop), a
// blocking recvfrom then a sendto to the address it filled in, as raw
// system calls on a thread of its own.
func serveBlocking(conn *net.UDPConn) error {
	fd, err := socketFD(conn)
	if err != nil {
		return err
	}
	if err := syscall.SetNonblock(fd, false); err != nil {
		return err
	}
	runtime.LockOSThread()
	buf := make([]byte, 65535)
	var out bytes.Buffer
	var sa syscall.RawSockaddrAny
	for {
		salen := uint32(syscall.SizeofSockaddrAny)
		n, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
			0, uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&salen)))
		switch e {
		case 0:
		case syscall.EINTR, syscall.EAGAIN:
			continue
		default:
			return fmt.Errorf("recvfrom: %w", e)
		}
		out.Reset()
		if answerRaw(buf[:n], &out) {
			b := out.Bytes()
			syscall.Syscall6(syscall.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
				0, uintptr(unsafe.Pointer(&sa)), uintptr(salen))
		}
	}
}
