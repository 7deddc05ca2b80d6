//go:build linux && (amd64 || arm64)

package sipnet

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
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
// datagram queued (up to udpBatch) in one system call. Under load, when
// datagrams arrive in bursts (sipp sends a rate's worth per millisecond
// tick), that saves a system call per datagram of the burst but the first.
//
// The datagrams are handled inside one RawConn.Read, and a batch shorter
// than udpBatch (the queue was empty when it was read) goes straight to
// waiting for readability, without the read that would only return EAGAIN:
// one system call less each time the listener wakes up, which at a few
// thousand requests a second is every request. That wait misses nothing:
// the netpoller's epoll is edge-triggered, so a datagram queued after the
// read signals readability, and within one RawConn.Read nothing resets the
// signal (a new Read would: poll.FD.RawRead's prepareRead, which is why the
// read loop never leaves it between batches).
type mmsgReader struct {
	rc    syscall.RawConn
	hdrs  [udpBatch]mmsghdr
	names [udpBatch]syscall.RawSockaddrAny
	iovs  [udpBatch]syscall.Iovec
	bufs  [udpBatch][]byte
	errno syscall.Errno
	each  func([]byte, netip.AddrPort) // serve's
	fill  func(fd uintptr) bool        // the read loop (RawConn.Read's callback), built once
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
		for {
			for i := range r.hdrs {
				r.hdrs[i].hdr.Namelen = syscall.SizeofSockaddrAny
			}
			// A raw system call: with MSG_DONTWAIT it never blocks, and
			// syscall.Syscall6's entersyscall would wake the runtime's
			// sysmon thread from its idle sleep for every read (rawSender).
			n, _, e := syscall.RawSyscall6(syscall.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])), udpBatch,
				syscall.MSG_DONTWAIT, 0, 0)
			switch e {
			case 0:
			case syscall.EAGAIN:
				return false // wait for readability
			case syscall.EINTR:
				continue
			default:
				r.errno = e
				return true
			}
			for i := range int(n) {
				r.each(r.bufs[i][:r.hdrs[i].n], sockaddrAddrPort(&r.names[i]))
			}
			if n < udpBatch {
				return false // the queue was empty: wait (see mmsgReader)
			}
		}
	}
	return r
}

func (r *mmsgReader) serve(each func([]byte, netip.AddrPort)) error {
	r.each = each
	for {
		if err := r.rc.Read(r.fill); err != nil {
			return err
		}
		if e := r.errno; e != 0 {
			r.errno = 0
			return os.NewSyscallError("recvmmsg", e)
		}
	}
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

// rawSender writes datagrams on a UDP socket with sendto as a raw system
// call (through RawConn.Write, which waits for writability on EAGAIN as
// net.UDPConn's writes do). A sendto on the non-blocking socket never
// blocks; made through syscall.Syscall6 (what net.UDPConn does) it enters
// the runtime's syscall state, whose first use after an idle spell wakes
// the sysmon thread from its sleep: under a steady load of short requests
// that was a nanosleep or futex wake-up every few requests and a tenth of
// the engine's CPU. Datagrams to an IPv6 address with a zone go through
// net.UDPConn (its zone cache).
type rawSender struct {
	uc    *net.UDPConn
	rc    syscall.RawConn
	inet6 bool // the socket is AF_INET6 (IPv4 peers as v4-mapped addresses)
}

// newRawSender returns the sender of uc, or nil where its descriptor or
// address family cannot be had.
func newRawSender(uc *net.UDPConn) *rawSender {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil
	}
	s := &rawSender{uc: uc, rc: rc}
	ok := false
	rc.Control(func(fd uintptr) {
		sa, err := syscall.Getsockname(int(fd))
		switch sa.(type) {
		case *syscall.SockaddrInet4:
			ok = err == nil
		case *syscall.SockaddrInet6:
			ok, s.inet6 = err == nil, true
		}
	})
	if !ok {
		return nil
	}
	return s
}

// sendOp is one sendto: its arguments and result, and the RawConn.Write
// callback bound to them once (pooled: a write allocates nothing).
type sendOp struct {
	b     []byte
	sa    syscall.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes
	salen uint32
	errno syscall.Errno
	fn    func(fd uintptr) bool
}

var sendOps = sync.Pool{New: func() any {
	op := new(sendOp)
	op.fn = op.sendto
	return op
}}

func (op *sendOp) sendto(fd uintptr) bool {
	_, _, e := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(unsafe.SliceData(op.b))), uintptr(len(op.b)),
		0, uintptr(unsafe.Pointer(&op.sa)), uintptr(op.salen))
	if e == syscall.EAGAIN {
		return false // wait for writability
	}
	op.errno = e
	return true
}

// send writes b to dst, as uc.WriteToUDPAddrPort(b, dst) would.
func (s *rawSender) send(b []byte, dst netip.AddrPort) error {
	a := dst.Addr()
	if a.Zone() != "" || !a.IsValid() || !s.inet6 && !a.Unmap().Is4() {
		_, err := s.uc.WriteToUDPAddrPort(b, dst)
		return err
	}
	op := sendOps.Get().(*sendOp)
	op.b, op.errno = b, 0
	port := dst.Port()
	if s.inet6 {
		op.sa = syscall.RawSockaddrInet6{Family: syscall.AF_INET6, Addr: a.As16()}
		op.salen = syscall.SizeofSockaddrInet6
	} else {
		sa4 := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&op.sa))
		*sa4 = syscall.RawSockaddrInet4{Family: syscall.AF_INET, Addr: a.Unmap().As4()}
		op.salen = syscall.SizeofSockaddrInet4
	}
	p := (*[2]byte)(unsafe.Pointer(&op.sa.Port)) // the same offset in both
	p[0], p[1] = byte(port>>8), byte(port)
	err := s.rc.Write(op.fn)
	if err == nil && op.errno != 0 {
		err = os.NewSyscallError("sendto", op.errno)
	}
	op.b = nil
	sendOps.Put(op)
	if err != nil {
		return &net.OpError{Op: "write", Net: "udp", Source: s.uc.LocalAddr(), Addr: net.UDPAddrFromAddrPort(dst), Err: err}
	}
	return nil
}
