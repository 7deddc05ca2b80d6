package sipnet

import (
	"bytes"
	"errors"
	"net"
	"net/netip"

	"github.com/emiago/sipgo/sip"
)

// serveUDP is kemi's own read loop for a UDP listener: one reused buffer,
// no per-packet address string or connection-pool bookkeeping (sipgo's
// parser copies what it keeps). It returns when the socket is closed.
func (ln *Listener) serveUDP(parser *sip.Parser) error {
	uc, ok := ln.pc.(*net.UDPConn)
	if !ok {
		return ln.tp.ServeUDP(ln.pc)
	}
	s := ln.srv
	rd := newUDPReader(uc)
	var names srcNames
	each := func(data []byte, src netip.AddrPort) {
		if len(bytes.Trim(data, "\r\n\x00")) == 0 {
			return // keep-alive (CRLF) or padding
		}
		msg, arena, err := parse(data, &s.arenas)
		if err != nil {
			s.nParseErrors.Add(1)
			s.log.Debug("unparsable datagram dropped", "listen", ln.String(), "src", src.String(), "error", err)
			return
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		msg.SetTransport("UDP")
		msg.SetSource(names.name(src))
		ln.handleParsed(msg, arena, src)
	}
	for {
		err := rd.serve(each)
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		s.log.Debug("udp read", "listen", ln.String(), "error", err)
	}
}

// srcNames remembers the text of the last few source addresses a listener
// read from, the text being what sipgo keeps as a message's source:
// traffic comes from a few peers (a relay's caller and callee, an SBC, a
// load generator), and a single remembered address would be replaced at
// every datagram of a relay, whose requests and replies alternate.
type srcNames struct {
	addr [8]netip.AddrPort
	text [8]string
	next int // the entry replaced next
}

// name returns a.String(), remembered.
func (c *srcNames) name(a netip.AddrPort) string {
	for i := range c.addr {
		if c.addr[i] == a && c.text[i] != "" {
			return c.text[i]
		}
	}
	t := a.String()
	c.addr[c.next], c.text[c.next] = a, t
	c.next = (c.next + 1) % len(c.addr)
	return t
}

// udpReader reads a UDP listener's datagrams: serve calls each for every
// datagram read (data is valid until each returns) until a read fails, and
// returns that error.
type udpReader interface {
	serve(each func(data []byte, src netip.AddrPort)) error
}

// plainReader reads one datagram per system call.
type plainReader struct {
	uc  *net.UDPConn
	buf []byte
}

func (r plainReader) serve(each func([]byte, netip.AddrPort)) error {
	for {
		n, src, err := r.uc.ReadFromUDPAddrPort(r.buf)
		if err != nil {
			return err
		}
		each(r.buf[:n], src)
	}
}

// sendUDP writes b to dst on the listener's UDP socket uc.
func (ln *Listener) sendUDP(uc *net.UDPConn, b []byte, dst netip.AddrPort) error {
	return sendDatagram(ln.raw, uc, b, dst)
}

// sendDatagram writes b to dst on uc, through raw when there is one.
func sendDatagram(raw *rawSender, uc *net.UDPConn, b []byte, dst netip.AddrPort) error {
	if raw != nil {
		return raw.send(b, dst)
	}
	_, err := uc.WriteToUDPAddrPort(b, dst)
	return err
}

// SocketPath is a UDP listener's socket path alone, without parsing or
// routing: the reads serveUDP makes (recvmmsg batches on Linux) and the
// writes of replies (raw sendto). bench/floor measures it as a floor.
type SocketPath struct {
	uc  *net.UDPConn
	rd  udpReader
	raw *rawSender
}

// NewSocketPath returns uc's socket path.
func NewSocketPath(uc *net.UDPConn) *SocketPath {
	return &SocketPath{uc: uc, rd: newUDPReader(uc), raw: newRawSender(uc)}
}

// Serve reads datagrams until a read fails and calls each for every one
// (data is valid until each returns), as serveUDP does; it returns the
// failure (net.ErrClosed once the socket is closed).
func (p *SocketPath) Serve(each func(data []byte, src netip.AddrPort)) error {
	return p.rd.serve(each)
}

// Write sends b to dst.
func (p *SocketPath) Write(b []byte, dst netip.AddrPort) error {
	return sendDatagram(p.raw, p.uc, b, dst)
}

// udpReadSize is the largest datagram read; sipgo's parser refuses messages
// over 65,535 bytes anyway.
const udpReadSize = 65535

// udpConn is the sip.Connection a server transaction on a UDP listener
// answers through: the listener's own socket, to each response's destination.
type udpConn struct {
	ln  *Listener
	dst netip.AddrPort
}

func (c udpConn) LocalAddr() net.Addr { return c.ln.pc.LocalAddr() }

func (c udpConn) WriteMsg(msg sip.Message) error {
	dst := c.dst
	if d, err := netip.ParseAddrPort(msg.Destination()); err == nil {
		dst = d
	}
	return c.ln.write(msg, dst)
}

// The listener socket outlives every transaction: reference counting is a
// no-op and closing does nothing.
func (c udpConn) Ref(int) int            { return 1 }
func (c udpConn) TryClose() (int, error) { return 1, nil }
func (c udpConn) Close() error           { return nil }
