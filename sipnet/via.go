package sipnet

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// This file chooses the socket a message leaves from and what it says about
// it: the listener for a target, the sent-by a listener advertises (the
// routed local address for a wildcard listener), the Via kemi adds to a
// request it sends, whether a reply's top Via is one of ours, and the
// received/rport stamping of a request about to be forwarded.

// listenerFor picks the socket to send to t from: prefer when it fits,
// else the first listener of t's protocol and address family.
func (s *Server) listenerFor(t Target, prefer *Listener) (*Listener, error) {
	if t.Proto == "ws" || t.Proto == "wss" {
		// A WebSocket peer is reached over the connection it opened, on
		// whichever ws or wss listener accepted it (a browser's Contact
		// says transport=ws over wss too).
		for _, ln := range s.listeners {
			if (ln.Proto == "ws" || ln.Proto == "wss") && ln.tcp != nil && ln.tcp.conn(t.Addr) != nil {
				return ln, nil
			}
		}
	}
	if prefer != nil && prefer.srv == s && prefer.Proto == t.Proto && sameFamily(prefer.Addr.Addr(), t.Addr.Addr()) {
		return prefer, nil
	}
	for _, ln := range s.listeners {
		if ln.Proto == t.Proto && sameFamily(ln.Addr.Addr(), t.Addr.Addr()) {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("no %s listener to send to %s from", t.Proto, t.Addr)
}

// sentBy is the host:port this listener puts in Via and Record-Route. A
// wildcard listener uses the local address the kernel would route to dst
// from (cached per destination address).
func (ln *Listener) sentBy(dst netip.Addr) netip.AddrPort {
	if !ln.Addr.Addr().IsUnspecified() || !dst.IsValid() || ln.srv == nil {
		return ln.Addr
	}
	s := ln.srv
	s.srcMu.Lock()
	ip, ok := s.srcIP[dst]
	s.srcMu.Unlock()
	if !ok {
		ip = ln.Addr.Addr()
		if c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9))); err == nil {
			ip = c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap()
			c.Close()
		}
		s.srcMu.Lock()
		if len(s.srcIP) < 4096 {
			s.srcIP[dst] = ip
		}
		s.srcMu.Unlock()
	}
	return netip.AddrPortFrom(ip, ln.Addr.Port())
}

// AdvertisedAddr is the address this listener puts in headers it adds
// (Via, Record-Route) for messages going to dst (an invalid dst is fine for
// a listener bound to a specific address).
func (ln *Listener) AdvertisedAddr(dst netip.Addr) netip.AddrPort { return ln.sentBy(dst) }

// newVia is this listener's Via for a request to t with branch.
func (ln *Listener) newVia(t Target, branch string) *sip.ViaHeader {
	v := new(ownVia)
	ln.setVia(v, t, branch)
	return &v.ViaHeader
}

// ownVia is a Via kemi adds with the storage of its one parameter, so that
// it takes one allocation (none in a Branch, which holds it).
type ownVia struct {
	sip.ViaHeader
	param [1]sip.HeaderKV
}

// setVia makes v this listener's Via for a request to t with branch.
func (ln *Listener) setVia(v *ownVia, t Target, branch string) {
	sb := ln.sentBy(t.Addr.Addr())
	v.param[0] = sip.HeaderKV{K: "branch", V: branch}
	v.ViaHeader = sip.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       upperProto(ln.Proto),
		Host:            ln.hostText(sb.Addr()),
		Port:            int(sb.Port()),
		Params:          v.param[:],
	}
}

// hostText is a's text; the listener's own address's is made once.
func (ln *Listener) hostText(a netip.Addr) string {
	if a != ln.Addr.Addr() {
		return a.String() // a wildcard listener's routed source address
	}
	if h := ln.host.Load(); h != nil && h.addr == a {
		return h.text
	}
	h := &hostText{addr: a, text: a.String()}
	ln.host.Store(h)
	return h.text
}

// hostText is an address and its text.
type hostText struct {
	addr netip.Addr
	text string
}

// upperProto is proto as a Via writes it.
func upperProto(proto string) string {
	switch proto {
	case "udp":
		return "UDP"
	case "tcp":
		return "TCP"
	case "tls":
		return "TLS"
	case "ws":
		return "WS"
	case "wss":
		return "WSS"
	}
	return strings.ToUpper(proto)
}

// isOurs reports whether a Via's sent-by is one of our listeners.
func (s *Server) isOurs(v *sip.ViaHeader) bool {
	ip, err := netip.ParseAddr(strings.Trim(v.Host, "[]"))
	if err != nil {
		return false
	}
	port := v.Port
	if port == 0 {
		port = 5060
	}
	proto := strings.ToLower(v.Transport)
	for _, ln := range s.listeners {
		if ln.Proto != proto || int(ln.Addr.Port()) != port {
			continue
		}
		if ln.Addr.Addr() == ip.Unmap() || ln.Addr.Addr().IsUnspecified() {
			return true
		}
	}
	return false
}

// StampVia adds received and rport to the top Via of out, a copy of r's
// message about to be forwarded (RFC 3261 18.2.1, RFC 3581), so that
// replies find their way back to r's source, where Kamailio's
// build_req_buf_from_sip_req puts them: received when the Via has rport or
// a received already (overwritten in place) or its host is not the source
// address (received_test), right after host:port; rport, when the Via has
// one (its value overwritten in place) or forceRport (KSR.force_rport),
// just before it.
func (r *Request) StampVia(out *sip.Request, forceRport bool) {
	v := out.Via()
	if v == nil || !r.Src.IsValid() {
		return
	}
	var text [64]byte // the source address as text, made a string only when written
	ipb := r.Src.Addr().AppendTo(text[:0])
	at := 0 // where a new parameter goes: after host:port
	if i := paramIndex(v.Params, "received"); i >= 0 {
		v.Params[i].V = string(ipb)
		at = i
	} else if v.Host != string(ipb) || paramIndex(v.Params, "rport") >= 0 {
		v.Params = insertParam(v.Params, 0, "received", string(ipb))
	}
	if i := paramIndex(v.Params, "rport"); i >= 0 {
		v.Params[i].V = strconv.Itoa(int(r.Src.Port()))
	} else if forceRport {
		v.Params = insertParam(v.Params, at, "rport", strconv.Itoa(int(r.Src.Port())))
	}
}

// paramIndex is the index of the parameter named key in ps, -1 if none.
func paramIndex(ps sip.HeaderParams, key string) int {
	for i, kv := range ps {
		if kv.K == key {
			return i
		}
	}
	return -1
}

// insertParam inserts key=val at index i of ps.
func insertParam(ps sip.HeaderParams, i int, key, val string) sip.HeaderParams {
	ps = append(ps, sip.HeaderKV{})
	copy(ps[i+1:], ps[i:])
	ps[i] = sip.HeaderKV{K: key, V: val}
	return ps
}

// RRTransport is the ;transport= value a Record-Route or Path URI of a
// listener of proto carries, as Kamailio's rr writes it: none for udp, and
// "ws" for both ws and wss.
func RRTransport(proto string) string {
	switch proto {
	case "udp", "":
		return ""
	case "wss":
		return "ws"
	}
	return proto
}

// doubleRR is rr's enable_double_rr=1 (Kamailio's default): when the
// request's top Record-Route is the receiving listener's own and the
// request leaves from another realm (protocol, address or port), a second
// Record-Route for the sending listener goes on top of it, and both get
// ;r2=on, so that each side of the proxy routes in-dialog requests to the
// socket that faces it.
func doubleRR(req *sip.Request, in, out *Listener, t Target) {
	if in == nil || out == nil || in == out {
		return
	}
	all := req.Headers()
	at := -1
	for i, h := range all {
		if strings.EqualFold(h.Name(), "Record-Route") {
			at = i
			break
		}
	}
	if at < 0 {
		return
	}
	// The rr module adds its Record-Route as a header of its own; one that
	// came in the message (a raw header, maybe a list) is not ours.
	top, ok := all[at].(*sip.RecordRouteHeader)
	if !ok || !in.isOwnRR(&top.Address) {
		return
	}
	outAddr := out.sentBy(t.Addr.Addr())
	if in.Proto == out.Proto && in.Addr.Port() == outAddr.Port() && in.sentBy(t.Addr.Addr()).Addr() == outAddr.Addr() {
		return
	}
	// Kamailio writes ;transport= right after the host, then ;r2=on.
	withR2 := func(transport string) sip.HeaderParams {
		p := sip.NewParams()
		if transport != "" {
			p.Add("transport", transport)
		}
		p.Add("r2", "on")
		for _, kv := range top.Address.UriParams {
			if kv.K != "transport" && kv.K != "r2" {
				p.Add(kv.K, kv.V)
			}
		}
		return p
	}
	u := top.Address.Clone()
	u.Host, u.Port = outAddr.Addr().String(), int(outAddr.Port())
	u.UriParams = withR2(RRTransport(out.Proto))
	rr := &sip.RecordRouteHeader{Address: *u}
	// The request shares its headers with the received one (RelayCopy):
	// the receiving side's Record-Route is replaced by a copy with r2=on,
	// not changed in place.
	mine := top.Clone()
	mine.Address.UriParams = withR2(RRTransport(in.Proto))
	hs := append([]sip.Header(nil), all...)
	hs[at] = mine
	for _, h := range hs {
		req.RemoveHeader(h.Name())
	}
	for i, h := range hs {
		if i == at {
			req.AppendHeader(rr)
		}
		req.AppendHeader(h)
	}
}

// isOwnRR reports whether u is a Record-Route this listener would add
// (rr's record_route on a request it received).
func (ln *Listener) isOwnRR(u *sip.Uri) bool {
	ip, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return false
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	if int(ln.Addr.Port()) != port || (!ln.Addr.Addr().IsUnspecified() && ln.Addr.Addr() != ip.Unmap()) {
		return false
	}
	tp, _ := u.UriParams.Get("transport")
	return strings.EqualFold(tp, RRTransport(ln.Proto))
}
