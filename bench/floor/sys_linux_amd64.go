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

// batchSize is how many datagrams mode batch reads (and answers) per call.
const batchSize = 32

// sysSendmmsg is sendmmsg's number on linux/amd64 (the syscall package
// has recvmmsg's only).
const sysSendmmsg = 307

// mmsghdr is Linux's struct mmsghdr.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

// serveBatch is mode batch: recvmmsg of up to batchSize datagrams through
// the netpoller (RawConn.Read waits for readability on EAGAIN), then one
// sendmmsg of the answers, each to the source of its request.
func serveBatch(conn *net.UDPConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var (
		in    [batchSize]mmsghdr
		out   [batchSize]mmsghdr
		names [batchSize]syscall.RawSockaddrAny
		inIov [batchSize]syscall.Iovec
		oIov  [batchSize]syscall.Iovec
		bufs  [batchSize][]byte
		outs  [batchSize]bytes.Buffer
	)
	for i := range in {
		bufs[i] = make([]byte, 65535)
		inIov[i].Base = &bufs[i][0]
		inIov[i].SetLen(len(bufs[i]))
		in[i].hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
		in[i].hdr.Iov = &inIov[i]
		in[i].hdr.Iovlen = 1
		outs[i].Grow(65535 + 64)
	}
	for {
		var got int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			for i := range in {
				in[i].hdr.Namelen = syscall.SizeofSockaddrAny
			}
			n, _, e := syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&in[0])), batchSize,
				syscall.MSG_DONTWAIT, 0, 0)
			switch e {
			case syscall.EAGAIN:
				return false // wait for the poller
			case 0:
				got = int(n)
			case syscall.EINTR:
			default:
				rerr = e
			}
			return true
		})
		if err != nil {
			return nil // closed
		}
		if rerr != nil {
			return fmt.Errorf("recvmmsg: %w", rerr)
		}
		k := 0
		for i := 0; i < got; i++ {
			outs[k].Reset()
			if !answerRaw(bufs[i][:in[i].n], &outs[k]) {
				continue
			}
			b := outs[k].Bytes()
			oIov[k].Base = &b[0]
			oIov[k].SetLen(len(b))
			out[k].hdr = syscall.Msghdr{Name: in[i].hdr.Name, Namelen: in[i].hdr.Namelen, Iov: &oIov[k]}
			out[k].hdr.Iovlen = 1
			k++
		}
		for sent := 0; sent < k; {
			werr := rc.Write(func(fd uintptr) bool {
				n, _, e := syscall.Syscall6(sysSendmmsg, fd, uintptr(unsafe.Pointer(&out[sent])), uintptr(k-sent),
					syscall.MSG_DONTWAIT, 0, 0)
				switch e {
				case syscall.EAGAIN:
					return false
				case 0:
					sent += int(n)
				default:
					sent = k // dropped, as a failed sendto is
				}
				return true
			})
			if werr != nil {
				return nil
			}
		}
	}
}
