package sipnet

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// This file is stateless forwarding, Kamailio core's forward() and its
// relaying of replies no transaction claims: a request copy goes out with a
// Via whose branch is derived from the received one (a retransmission is
// forwarded with the same branch), and a reply whose top Via is ours goes to
// the next Via.

// ErrNotOurs is returned by ForwardResponse for a reply whose top Via is not
// one of this server's (Kamailio drops those).
var ErrNotOurs = errors.New("sipnet: reply's top Via is not ours")

// StatelessBranch derives the branch of a statelessly forwarded copy of in
// from in's own top Via branch and method, so that a retransmission is
// forwarded with the same branch (Kamailio computes it from a hash too).
func StatelessBranch(in *sip.Request) string {
	h := fnv.New64a()
	if v := in.Via(); v != nil {
		b, _ := v.Params.Get("branch")
		h.Write([]byte(b))
		h.Write([]byte(v.Host))
	}
	h.Write([]byte(in.Method))
	if c := in.CallID(); c != nil {
		h.Write([]byte(*c))
	}
	return "z9hG4bKsl" + strconv.FormatUint(h.Sum64(), 16)
}

// SendStateless forwards req (a copy the caller owns) to t without a
// transaction: a Via with branch is added on top and the request leaves
// from prefer when it fits t, else from the first listener of t's protocol.
func (s *Server) SendStateless(req *sip.Request, t Target, prefer *Listener, branch string) error {
	ln, err := s.listenerFor(t, prefer)
	if err != nil {
		return err
	}
	doubleRR(req, prefer, ln, t)
	req.PrependHeader(ln.newVia(t, branch))
	if err := ln.write(req, t.Addr); err != nil {
		return fmt.Errorf("send %s to %s: %w", req.Method, t, err)
	}
	s.nRelayed.Add(1)
	return nil
}

// ForwardResponse relays a reply statelessly, as Kamailio's core does for
// replies no transaction claims: the top Via must be ours (else ErrNotOurs);
// it is removed and the reply goes to the next Via's received/rport or
// sent-by.
func (s *Server) ForwardResponse(r *Response) error {
	res := r.Msg
	via := res.Via()
	if via == nil || !s.isOurs(via) {
		return ErrNotOurs
	}
	res.RemoveHeader("Via")
	next := res.Via()
	if next == nil {
		return errors.New("forward reply: no Via left after ours")
	}
	host := next.Host
	if rcv, ok := next.Params.Get("received"); ok && rcv != "" {
		host = rcv
	}
	port := next.Port
	if rp, ok := next.Params.Get("rport"); ok && rp != "" {
		if p, err := strconv.Atoi(rp); err == nil {
			port = p
		}
	}
	if port == 0 {
		port = 5060
	}
	ip, err := s.lookupIP(context.Background(), host)
	if err != nil {
		return fmt.Errorf("forward reply: %w", err)
	}
	t := Target{Proto: strings.ToLower(next.Transport), Addr: netip.AddrPortFrom(ip, uint16(port))}
	ln, err := s.listenerFor(t, r.Listener)
	if err != nil {
		return fmt.Errorf("forward reply: %w", err)
	}
	if err := ln.write(res, t.Addr); err != nil {
		return fmt.Errorf("forward reply to %s: %w", t, err)
	}
	s.nRelayed.Add(1)
	return nil
}

// SendUDP sends one datagram outside any transaction from the UDP
// listener named socket ("udp:ip:port"; "" or a name that is not one of
// the UDP listeners: the first UDP listener of dst's family) to dst.
// build receives the listener's sent-by address. On a virtual server a
// datagram that parses as SIP goes to Options.Outbound as a stateless
// send; other bytes are dropped.
func (s *Server) SendUDP(socket string, dst netip.AddrPort, build func(local netip.AddrPort) []byte) error {
	var ln *Listener
	want := strings.TrimPrefix(strings.ToLower(socket), "udp:")
	for _, l := range s.listeners {
		if l.Proto == "udp" && want != "" && l.Addr.String() == want {
			ln = l
			break
		}
	}
	if ln == nil {
		var err error
		if ln, err = s.listenerFor(Target{Proto: "udp", Addr: dst}, nil); err != nil {
			return err
		}
	}
	b := build(ln.sentBy(dst.Addr()))
	if ln.virtual() {
		if m, err := Parse(b); err == nil {
			s.opts.Outbound(Outgoing{Msg: m, From: ln, To: Target{Proto: "udp", Addr: dst}})
		}
		return nil
	}
	if ln.pc == nil {
		return fmt.Errorf("send to %s: %s is not a datagram socket", dst, ln)
	}
	if _, err := ln.pc.WriteTo(b, net.UDPAddrFromAddrPort(dst)); err != nil {
		return fmt.Errorf("send to %s from %s: %w", dst, ln, err)
	}
	return nil
}
