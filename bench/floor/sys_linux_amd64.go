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

// batchSize is how many datagrams mode batch reads per call (kemi's
// udpBatch).
const batchSize = 16

// mmsghdr is Linux's struct mmsghdr.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

// serveBatch is mode batch, kemi's UDP socket path (sipnet/udp_linux.go):
// recvmmsg of up to batchSize datagrams through the netpoller (RawConn.Read
// waits for readability on EAGAIN), then a sendto per answer, both as raw
// system calls (no runtime syscall state, which wakes the sysmon thread).
func serveBatch(conn *net.UDPConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var (
		hdrs  [batchSize]mmsghdr
		names [batchSize]syscall.RawSockaddrAny
		iovs  [batchSize]syscall.Iovec
		bufs  [batchSize][]byte
		out   bytes.Buffer
		got   int
		errno syscall.Errno
		dst   *syscall.RawSockaddrAny
		dlen  uint32
	)
	for i := range hdrs {
		bufs[i] = make([]byte, 65535)
		iovs[i].Base = &bufs[i][0]
		iovs[i].SetLen(len(bufs[i]))
		hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
		hdrs[i].hdr.Iov = &iovs[i]
		hdrs[i].hdr.Iovlen = 1
	}
	recv := func(fd uintptr) bool {
		for i := range hdrs {
			hdrs[i].hdr.Namelen = syscall.SizeofSockaddrAny
		}
		n, _, e := syscall.RawSyscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&hdrs[0])), batchSize,
			syscall.MSG_DONTWAIT, 0, 0)
		if e == syscall.EAGAIN {
			return false // wait for the poller
		}
		got, errno = int(n), e
		return true
	}
	send := func(fd uintptr) bool {
		b := out.Bytes()
		_, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			0, uintptr(unsafe.Pointer(dst)), uintptr(dlen))
		return e != syscall.EAGAIN
	}
	for {
		if err := rc.Read(recv); err != nil {
			return nil // closed
		}
		switch errno {
		case 0:
		case syscall.EINTR:
			continue
		default:
			return fmt.Errorf("recvmmsg: %w", errno)
		}
		for i := 0; i < got; i++ {
			out.Reset()
			if !answerRaw(bufs[i][:hdrs[i].n], &out) {
				continue
			}
			dst, dlen = &names[i], hdrs[i].hdr.Namelen
			if err := rc.Write(send); err != nil {
				return nil
			}
		}
	}
}
