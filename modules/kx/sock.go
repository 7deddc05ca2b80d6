package kx

import (
	"net/netip"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
)

// fakedSource is the source of Kamailio's faked request (core/fmsg.c):
// 127.0.0.1 written as the host-order number 0x7f000001 into the address
// bytes, which reads 1.0.0.127 on the little-endian machines Kamailio runs
// on, port 5060, over UDP.
func fakedSource() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{1, 0, 0, 127}), 5060)
}

// Source returns where the VM's message came from (for a faked request,
// Kamailio's faked source), false when unknown.
func Source(e *ksr.Env) (netip.AddrPort, bool) {
	switch {
	case e.Msg == nil:
	case e.Msg.Faked:
		return fakedSource(), true
	case e.Msg.Req != nil && e.Msg.Req.Src.IsValid():
		return e.Msg.Req.Src, true
	case e.Msg.Res != nil && e.Msg.Res.Src.IsValid():
		return e.Msg.Res.Src, true
	}
	return netip.AddrPort{}, false
}

// Received returns the local socket the VM's message came in on and its
// transport ("udp", "tcp"), false for a faked one.
func Received(e *ksr.Env) (netip.AddrPort, string, bool) {
	switch {
	case e.Msg == nil:
	case e.Msg.Req != nil && e.Msg.Req.Listener != nil:
		return e.Msg.Req.Listener.Addr, e.Msg.Req.Listener.Proto, true
	case e.Msg.Res != nil && e.Msg.Res.Listener != nil:
		return e.Msg.Res.Listener.Addr, e.Msg.Res.Listener.Proto, true
	}
	return netip.AddrPort{}, "", false
}

// proto is the message's transport: udp for a faked request, as
// Kamailio's.
func proto(e *ksr.Env) string {
	if e.Msg != nil && e.Msg.Faked {
		return "udp"
	}
	_, p, _ := Received(e)
	return p
}

// hostport writes ip:port with IPv6 addresses in brackets.
func hostport(ap netip.AddrPort) string {
	ip := ap.Addr().Unmap()
	h := ip.String()
	if ip.Is6() {
		h = "[" + h + "]"
	}
	return h + ":" + itoa(int(ap.Port()))
}

func getSrcIP(e *ksr.Env) lua.LValue {
	ap, ok := Source(e)
	if !ok {
		return lua.LString("")
	}
	return lua.LString(ap.Addr().Unmap().String())
}

func getSrcPort(e *ksr.Env) lua.LValue {
	ap, _ := Source(e)
	return ksr.BoxInt(int(ap.Port()))
}

// getSrcURI is get_src_uri with tmode 0: no transport parameter for UDP.
func getSrcURI(e *ksr.Env) lua.LValue {
	ap, ok := Source(e)
	if !ok {
		return lua.LString("")
	}
	s := "sip:" + hostport(ap)
	if p := proto(e); p != "" && p != "udp" {
		if p == "wss" {
			p = "ws" // ws-only in SIP URIs
		}
		s += ";transport=" + p
	}
	return lua.LString(s)
}

// getSrcAddrSock is get_src_address_socket: proto:ip:port.
func getSrcAddrSock(e *ksr.Env) lua.LValue {
	ap, ok := Source(e)
	p := proto(e)
	if !ok || p == "" {
		return lua.LString("")
	}
	if p == "wss" {
		p = "ws"
	}
	return lua.LString(p + ":" + hostport(ap))
}

func getSendSock(e *ksr.Env) lua.LValue { return lua.LNil }
func getSendSockPort(e *ksr.Env) int    { return 0 }

func getRcvIP(e *ksr.Env) lua.LValue {
	ap, _, ok := Received(e)
	if !ok {
		return lua.LNil
	}
	return lua.LString(ap.Addr().Unmap().String())
}

func getRcvPort(e *ksr.Env) lua.LValue {
	ap, _, _ := Received(e)
	return ksr.BoxInt(int(ap.Port()))
}

func getRcvSockName(e *ksr.Env) lua.LValue { return lua.LNil }

// getRcvAddrSock is the receiving socket's sock_str: proto:ip:port.
func getRcvAddrSock(e *ksr.Env) lua.LValue {
	ap, p, ok := Received(e)
	if !ok {
		return lua.LString("")
	}
	return lua.LString(p + ":" + hostport(ap))
}

func getProto(e *ksr.Env) lua.LValue { return lua.LString(proto(e)) }

func getProtoID(e *ksr.Env) int { return ksr.ProtoNum(proto(e)) }
