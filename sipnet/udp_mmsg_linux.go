//go:build linux && (amd64 || arm64)

package sipnet

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// udpBatch is how many datagrams one recvmmsg may return. Each has a buffer
// of udpReadSize; the pages a datagram does not touch are never faulted in.
const udpBatch = 16

// mmsghdr is Linux's struct mmsghdr.
type mmsghdr struct {
	hdr syscall.Msghdr
	n   uint32
	_   [4]byte
}

// mmsgReader reads a UDP socket with recvmmsg through the netpoller: every
// datagram queued (up to udpBatch) in one system call, then one more
// (EAGAIN) and a wait for readability once the queue is empty. Under load,
// when datagrams arrive in bursts (sipp sends a rate's worth per
// millisecond tick), that saves a system call per datagram of the burst
// but the first.
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  [udpBatch]mmsghdr
	names [udpBatch]syscall.RawSockaddrAny
	iovs  [udpBatch]syscall.Iovec
	bufs  [udpBatch][]byte
	n     int // datagrams in the batch
	next  int // the next one read returns
	errno syscall.Errno
	fill  func(fd uintptr) bool // recvmmsg, built once (RawConn.Read's callback)
}

func newUDPReader(uc *net.UDPConn) udpReader {
	rc, err := uc.SyscallConn()
	if err != nil {
		return plainReader{uc: uc, buf: make([]byte, udpReadSize)}
	}
	r := &mmsgReader{rc: rc}
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, udpReadSize)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(udpReadSize)
		r.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
		r.hdrs[i].hdr.Iov = &r.iovs[i]
		r.hdrs[i].hdr.Iovlen = 1
	}
	r.fill = func(fd uintptr) bool {
		for i := range r.hdrs {
			r.hdrs[i].hdr.Namelen = syscall.SizeofSockaddrAny
		}
		n, _, e := syscall.Syscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), udpBatch,
			syscall.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			r.n = int(n)
		case syscall.EAGAIN:
			return false // wait for readability
		case syscall.EINTR:
		default:
			r.errno = e
		}
		return true
	}
	return r
}

func (r *mmsgReader) read() ([]byte, netip.AddrPort, error) {
	for r.next >= r.n {
		r.n, r.next = 0, 0
		if err := r.rc.Read(r.fill); err != nil {
			return nil, netip.AddrPort{}, err
		}
		if e := r.errno; e != 0 {
			r.errno = 0
			return nil, netip.AddrPort{}, os.NewSyscallError("recvmmsg", e)
		}
	}
	i := r.next
	r.next++
	return r.bufs[i][:r.hdrs[i].n], sockaddrAddrPort(&r.names[i]), nil
}

// sockaddrAddrPort is the address of sa as net.UDPConn.ReadFromUDPAddrPort
// returns it (an IPv6 scope as its interface's name, as net's zone cache
// names it).
func sockaddrAddrPort(sa *syscall.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		p := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), uint16(port[0])<<8|uint16(port[1]))
	case syscall.AF_INET6:
		p := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := (*[2]byte)(unsafe.Pointer(&p.Port))
		a := netip.AddrFrom16(p.Addr)
		if p.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(p.Scope_id)); err == nil {
				a = a.WithZone(ifi.Name)
			} else {
				a = a.WithZone(strconv.FormatUint(uint64(p.Scope_id), 10))
			}
		}
		return netip.AddrPortFrom(a, uint16(port[0])<<8|uint16(port[1]))
	}
	return netip.AddrPort{}
}
