package ksr

import (
	"net/netip"

	lua "github.com/yuin/gopher-lua"
)

// This file holds more of Kamailio's core exports (kemi.c _sr_kemi_core at
// 5.6.3): branch and script flags, the R-URI and destination URI setters,
// force_rport and the connection marks, the remaining is_myself_* and
// protocol checks. All are BOOL in Kamailio.

func coreMoreExports() Submodule {
	flag := []string{"flag"}
	fb := []string{"flag", "branch"}
	return Submodule{Name: "", Funcs: []Export{
		{Name: "setbflag", Func: setBFlag, Ret: Bool, Args: flag, Doc: "Set branch flag 0..31 of branch 0."},
		{Name: "resetbflag", Func: resetBFlag, Ret: Bool, Args: flag, Doc: "Reset branch flag 0..31 of branch 0."},
		{Name: "isbflagset", Func: isBFlagSet, Ret: Bool, Args: flag, Doc: "Branch flag 0..31 of branch 0 is set."},
		{Name: "setbiflag", Func: setBIFlag, Ret: Bool, Args: fb, Doc: "Set branch flag 0..31 of a branch."},
		{Name: "resetbiflag", Func: resetBIFlag, Ret: Bool, Args: fb, Doc: "Reset branch flag 0..31 of a branch."},
		{Name: "isbiflagset", Func: isBIFlagSet, Ret: Bool, Args: fb, Doc: "Branch flag 0..31 of a branch is set."},
		{Name: "setsflag", Func: setSFlag, Ret: Bool, Args: flag, Doc: "Set script flag 0..31 (kept by the VM across messages, as per process in Kamailio)."},
		{Name: "resetsflag", Func: resetSFlag, Ret: Bool, Args: flag, Doc: "Reset script flag 0..31."},
		{Name: "issflagset", Func: isSFlagSet, Ret: Bool, Args: flag, Doc: "Script flag 0..31 is set."},
		{Name: "seturi", Func: setRURI, Ret: Bool, Args: []string{"uri"}, Doc: "Set the R-URI."},
		{Name: "setuser", Func: setRUser, Ret: Bool, Args: []string{"user"}, Doc: "Set the R-URI's user."},
		{Name: "sethost", Func: setRHost, Ret: Bool, Args: []string{"host"}, Doc: "Set the R-URI's host."},
		{Name: "setdsturi", Func: setDstURI, Ret: Bool, Args: []string{"uri"}, Doc: "Set the destination URI ($du); true even when uri is invalid (logged), as Kamailio."},
		{Name: "resetdsturi", Func: resetDstURI, Ret: Bool, Doc: "Unset the destination URI."},
		{Name: "isdsturiset", Func: isDstURISet, Ret: Bool, Doc: "The destination URI is set."},
		{Name: "force_rport", Func: forceRport, Ret: Bool, Doc: "Answer to the source port as if the top Via had rport (RFC 3581)."},
		{Name: "add_local_rport", Func: addLocalRport, Ret: Bool, Doc: "Add rport to the Via of forwarded requests (kemi's Via has it already)."},
		{Name: "set_forward_close", Func: setForwardClose, Ret: Bool, Doc: "Mark: close the TCP connection after forwarding (recorded; kemi keeps it)."},
		{Name: "set_forward_no_connect", Func: setForwardNoConnect, Ret: Bool, Doc: "Mark: forward only over an existing TCP connection (recorded)."},
		{Name: "set_reply_close", Func: setReplyClose, Ret: Bool, Doc: "Mark: close the TCP connection after replying (recorded; kemi keeps it)."},
		{Name: "set_reply_no_connect", Func: setReplyNoConnect, Ret: Bool, Doc: "Mark: reply only over the existing TCP connection (kemi always does)."},
		{Name: "is_myself_duri", Func: isMyselfDURI, Ret: Bool, Doc: "The destination URI is this server's (false when unset)."},
		{Name: "is_myself_nhuri", Func: isMyselfNHURI, Ret: Bool, Doc: "The next hop ($du if set, else the R-URI) is this server's."},
		{Name: "is_myself_suri", Func: isMyselfSURI, Ret: Bool, Doc: "The source address is this server's."},
		{Name: "is_proto", Func: isProto, Ret: Bool, Args: []string{"protos"}, Doc: "The transport is one of the letters: u udp, t tcp, e tls, s sctp, v ws, w wss."},
		{Name: "is_SCTP", Func: isSCTP, Ret: Bool, Doc: "The message came over SCTP (never in kemi)."},
		{Name: "is_IPv4", Func: isIPv4, Ret: Bool, Doc: "The message came over IPv4."},
		{Name: "is_IPv6", Func: isIPv6, Ret: Bool, Doc: "The message came over IPv6."},
		{Name: "is_src_port", Func: isSrcPort, Ret: Bool, Args: []string{"port"}, Doc: "The source port is port."},
		{Name: "is_dst_port", Func: isDstPort, Ret: Bool, Args: []string{"port"}, Doc: "The receiving socket's port is port."},
	}}
}

func setBFlag(e *Env, flag int) int   { return setBIFlag(e, flag, 0) }
func resetBFlag(e *Env, flag int) int { return resetBIFlag(e, flag, 0) }
func isBFlagSet(e *Env, flag int) int { return isBIFlagSet(e, flag, 0) }

// bflags returns the flags of branch (0 the R-URI's, 1..n the
// destination set's), nil for a branch that does not exist (Kamailio's
// get_bflags_ptr fails).
func (e *Env) bflags(branch int) *uint32 {
	switch {
	case branch == 0:
		return &e.Msg.BFlags
	case branch > 0 && branch <= len(e.Msg.Branches):
		return &e.Msg.Branches[branch-1].Flags
	}
	return nil
}

// setBIFlag is sr_kemi_core_setbiflag: false for an invalid flag, true
// otherwise, also for a branch that does not exist (Kamailio ignores
// setbflag's failure).
func setBIFlag(e *Env, flag, branch int) int {
	if !e.validFlag("setbiflag", flag) {
		return 0
	}
	if f := e.bflags(branch); f != nil {
		*f |= 1 << flag
	}
	return 1
}

func resetBIFlag(e *Env, flag, branch int) int {
	if !e.validFlag("resetbiflag", flag) {
		return 0
	}
	if f := e.bflags(branch); f != nil {
		*f &^= 1 << flag
	}
	return 1
}

func isBIFlagSet(e *Env, flag, branch int) int {
	if !e.validFlag("isbiflagset", flag) {
		return 0
	}
	f := e.bflags(branch)
	return b2i(f != nil && *f&(1<<flag) != 0)
}

func validSFlag(e *Env, fn string, flag int) bool {
	if flag < 0 || flag > maxFlag {
		e.D.Log.Error("invalid flag", "function", "KSR."+fn, "flag", flag)
		return false
	}
	return true
}

func setSFlag(e *Env, flag int) int {
	if !validSFlag(e, "setsflag", flag) {
		return 0
	}
	e.sflags |= 1 << flag
	return 1
}

func resetSFlag(e *Env, flag int) int {
	if !validSFlag(e, "resetsflag", flag) {
		return 0
	}
	e.sflags &^= 1 << flag
	return 1
}

func isSFlagSet(e *Env, flag int) int {
	if !validSFlag(e, "issflagset", flag) {
		return 0
	}
	return b2i(e.sflags&(1<<flag) != 0)
}

func setRURI(e *Env, uri string) int   { return e.pvSet("$ru", lua.LString(uri)) }
func setRUser(e *Env, user string) int { return e.pvSet("$rU", lua.LString(user)) }
func setRHost(e *Env, host string) int { return e.pvSet("$rd", lua.LString(host)) }

// setDstURI is sr_kemi_core_setdsturi: true even when the URI is refused
// (Kamailio logs "setting dst uri failed" and returns true); false only
// without a message.
func setDstURI(e *Env, uri string) int {
	if e.Msg == nil {
		return 0
	}
	e.setDU(uri) // unlike $du, does not make the R-URI available for forking again
	return 1
}

func resetDstURI(e *Env) int {
	if e.Msg == nil {
		return 0
	}
	e.Msg.DstURI = ""
	return 1
}

func isDstURISet(e *Env) int { return b2i(e.Msg != nil && e.Msg.DstURI != "") }

// forceRport is sr_kemi_core_force_rport: the reply goes to the source
// port and the Via gets rport=, as if the client had asked (kemi adds an
// empty rport parameter to the received top Via).
func forceRport(e *Env) int {
	if e.Msg == nil {
		return 0
	}
	e.Msg.ForceRport = true
	if r := e.Msg.Request(); r != nil {
		if v := r.Via(); v != nil && !v.Params.Has("rport") {
			v.Params.Add("rport", "")
		}
	}
	return 1
}

func addLocalRport(e *Env) int { return b2i(e.Msg != nil) }

func mark(e *Env, f *bool) int {
	*f = true
	return 1
}

func setForwardClose(e *Env) int {
	if e.Msg == nil {
		return 0
	}
	return mark(e, &e.Msg.ForwardClose)
}

func setForwardNoConnect(e *Env) int {
	if e.Msg == nil {
		return 0
	}
	return mark(e, &e.Msg.ForwardNoConnect)
}

func setReplyClose(e *Env) int {
	if e.Msg == nil {
		return 0
	}
	return mark(e, &e.Msg.ReplyClose)
}

func setReplyNoConnect(e *Env) int {
	if e.Msg == nil {
		return 0
	}
	return mark(e, &e.Msg.ReplyNoConnect)
}

func isMyselfDURI(e *Env) int {
	if e.Msg == nil || e.Msg.DstURI == "" {
		return 0
	}
	return isMyselfURI(e, e.Msg.DstURI)
}

func isMyselfNHURI(e *Env) int {
	if e.Msg != nil && e.Msg.DstURI != "" {
		return isMyselfURI(e, e.Msg.DstURI)
	}
	return isMyselfRURI(e)
}

// isMyselfSURI is sr_kemi_core_is_myself_suri: the source as
// sip:IP:PORT, so the port must be a listening one.
func isMyselfSURI(e *Env) int {
	ap, ok := e.srcAddr()
	if !ok {
		return 0
	}
	return b2i(e.IsMyself(ap.Addr().String(), int(ap.Port())))
}

func isProto(e *Env, letters string) int {
	p := e.proto()
	for i := 0; i < len(letters); i++ {
		switch letters[i] | 0x20 {
		case 'u':
			if p == "udp" {
				return 1
			}
		case 't':
			if p == "tcp" {
				return 1
			}
		case 'e':
			if p == "tls" {
				return 1
			}
		case 's':
			if p == "sctp" {
				return 1
			}
		case 'v':
			if p == "ws" {
				return 1
			}
		case 'w':
			if p == "wss" {
				return 1
			}
		}
	}
	return 0
}

func isSCTP(e *Env) int { return b2i(e.proto() == "sctp") }

func rcvFamily(e *Env) netip.Addr {
	if ap, ok := e.rcvAddr(); ok {
		return ap.Addr()
	}
	if ap, ok := e.srcAddr(); ok {
		return ap.Addr()
	}
	return netip.Addr{}
}

func isIPv4(e *Env) int { a := rcvFamily(e); return b2i(a.IsValid() && a.Unmap().Is4()) }
func isIPv6(e *Env) int { a := rcvFamily(e); return b2i(a.IsValid() && !a.Unmap().Is4()) }

func isSrcPort(e *Env, port int) int {
	ap, ok := e.srcAddr()
	return b2i(ok && int(ap.Port()) == port)
}

func isDstPort(e *Env, port int) int {
	ap, ok := e.rcvAddr()
	return b2i(ok && int(ap.Port()) == port)
}
