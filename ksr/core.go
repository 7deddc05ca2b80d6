package ksr

import (
	"context"
	"log/slog"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Kamailio log levels as slog levels: dbg=debug, info, notice, warn, err,
// crit, alert.
const (
	LevelDbg    = slog.LevelDebug
	LevelInfo   = slog.LevelInfo
	LevelNotice = slog.Level(2)
	LevelWarn   = slog.LevelWarn
	LevelErr    = slog.LevelError
	LevelCrit   = slog.Level(12)
	LevelAlert  = slog.Level(16)
)

// LevelFromDebug maps Kamailio's debug=N to the lowest slog level printed.
func LevelFromDebug(n int) slog.Level {
	switch {
	case n >= 3:
		return LevelDbg
	case n == 2:
		return LevelInfo
	case n == 1:
		return LevelNotice
	case n == 0:
		return LevelWarn
	case n == -1:
		return LevelErr
	case n >= -4:
		return LevelCrit
	default:
		return LevelAlert
	}
}

func parseLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "dbg", "debug":
		return LevelDbg
	case "info":
		return LevelInfo
	case "notice":
		return LevelNotice
	case "warn":
		return LevelWarn
	case "err", "error":
		return LevelErr
	case "crit":
		return LevelCrit
	case "alert":
		return LevelAlert
	}
	return LevelErr
}

// logf prints a script message verbatim (a trailing newline is dropped, as
// the log line ends anyway).
func (e *Env) logf(level slog.Level, msg string) {
	ctx := context.Background()
	if !e.D.Log.Enabled(ctx, level) {
		return
	}
	msg = strings.TrimSuffix(msg, "\n")
	e.D.Log.Log(ctx, level, msg, "worker", e.Name)
}

// method returns the request method, or the CSeq method of a reply.
func (e *Env) method() string {
	if r := e.Msg.Request(); r != nil {
		return string(r.Method)
	}
	if e.Msg != nil && e.Msg.Res != nil {
		if c := e.Msg.Res.Msg.CSeq(); c != nil {
			return string(c.MethodName)
		}
	}
	return ""
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// methodLetter maps an is_method_in letter (either case) to its method,
// as Kamailio's kemi.c does: E is PRACK, F is REFER, T is POST, V is PUT;
// INFO has no letter.
func methodLetter(c byte) string {
	switch c &^ 0x20 {
	case 'I':
		return "INVITE"
	case 'A':
		return "ACK"
	case 'B':
		return "BYE"
	case 'C':
		return "CANCEL"
	case 'M':
		return "MESSAGE"
	case 'R':
		return "REGISTER"
	case 'E':
		return "PRACK"
	case 'P':
		return "PUBLISH"
	case 'S':
		return "SUBSCRIBE"
	case 'N':
		return "NOTIFY"
	case 'O':
		return "OPTIONS"
	case 'F':
		return "REFER"
	case 'G':
		return "GET"
	case 'U':
		return "UPDATE"
	case 'K':
		return "KDMQ"
	case 'D':
		return "DELETE"
	case 'T':
		return "POST"
	case 'V':
		return "PUT"
	}
	return ""
}

// coreExports is KSR.*: Kamailio's core functions (src/core/kemi.c,
// _sr_kemi_core) that kemi has, with their parameter and return kinds.
// KSR.alert, KSR.is_request and KSR.is_reply are kemi's own: Kamailio 5.6
// has none of them in its core.
func coreExports() Submodule {
	msg := []string{"msg"}
	fs := []Export{
		{Name: "dbg", NoRetain: true, Func: logDbg, Ret: None, Args: msg, Doc: "Log msg at debug level."},
		{Name: "info", NoRetain: true, Func: logInfo, Ret: None, Args: msg, Doc: "Log msg at info level."},
		{Name: "notice", NoRetain: true, Func: logNotice, Ret: None, Args: msg, Doc: "Log msg at notice level."},
		{Name: "warn", NoRetain: true, Func: logWarn, Ret: None, Args: msg, Doc: "Log msg at warning level."},
		{Name: "err", NoRetain: true, Func: logErr, Ret: None, Args: msg, Doc: "Log msg at error level."},
		{Name: "crit", NoRetain: true, Func: logCrit, Ret: None, Args: msg, Doc: "Log msg at critical level."},
		{Name: "alert", NoRetain: true, Func: logAlert, Ret: None, Args: msg, Doc: "Log msg at alert level (kemi's; not in Kamailio 5.6)."},
		{Name: "log", NoRetain: true, Func: logLevel, Ret: None, Args: []string{"level", "msg"}, Doc: "Log msg at the named level (dbg, info, notice, warn, err, crit, alert)."},
		{Name: "set_drop", NoRetain: true, Func: setDrop, Ret: None, Doc: "Mark the message dropped when the callback returns."},
		{Name: "is_method", NoRetain: true, Func: isMethod, Ret: Bool, Args: []string{"method"}, Doc: "The request method (a reply's CSeq method) is method, in any case."},
		{Name: "is_method_in", NoRetain: true, Func: isMethodIn, Ret: Bool, Args: []string{"letters"}, Doc: "The method is one of the letters (I A B C M R E P S N O F G U K D T V)."},
		{Name: "is_myself", Func: isMyselfURI, Ret: Bool, Args: []string{"uri"}, Doc: "The URI's host and port are this server's."},
		{Name: "is_myself_ruri", NoRetain: true, Func: isMyselfRURI, Ret: Bool, Doc: "The R-URI is this server's."},
		{Name: "is_myself_furi", Func: isMyselfFURI, Ret: Bool, Doc: "The From URI is this server's."},
		{Name: "is_myself_turi", Func: isMyselfTURI, Ret: Bool, Doc: "The To URI is this server's."},
		{Name: "is_myself_srcip", Func: isMyselfSrcIP, Ret: Bool, Doc: "The source IP is one of this server's."},
		{Name: "is_request", Func: isRequest, Ret: Bool, Doc: "The message is a request (kemi's; not in Kamailio 5.6's core)."},
		{Name: "is_reply", Func: isReply, Ret: Bool, Doc: "The message is a reply (kemi's; not in Kamailio 5.6's core)."},
		{Name: "is_UDP", Func: isUDP, Ret: Bool, Doc: "The message came over UDP."},
		{Name: "is_TCP", Func: isTCP, Ret: Bool, Doc: "The message came over TCP."},
		{Name: "is_TLS", Func: isTLS, Ret: Bool, Doc: "The message came over TLS."},
		{Name: "is_WS", Func: isWS, Ret: Bool, Doc: "The message came over plain WebSocket (ws)."},
		{Name: "is_WSS", Func: isWSS, Ret: Bool, Doc: "The message came over secure WebSocket."},
		{Name: "is_WSX", Func: isWSX, Ret: Bool, Doc: "The message came over WebSocket (ws or wss)."},
		{Name: "setflag", Func: setFlag, Ret: Bool, Args: []string{"flag"}, Doc: "Set message flag 0..31."},
		{Name: "resetflag", Func: resetFlag, Ret: Bool, Args: []string{"flag"}, Doc: "Reset message flag 0..31."},
		{Name: "isflagset", Func: isFlagSet, Ret: Bool, Args: []string{"flag"}, Doc: "Message flag 0..31 is set."},
		{Name: "forward", Func: forward, Ret: Int, Doc: "Forward the request statelessly to $du or the R-URI: 1 ok, -1 error."},
		{Name: "forward_uri", Func: forwardURI, Ret: Int, Args: []string{"uri"}, Doc: "Forward the request statelessly to uri: 1 ok, -1 error."},
	}
	for _, m := range []struct {
		name string
		f    func(*Env) int
	}{
		{"INVITE", isINVITE}, {"ACK", isACK}, {"BYE", isBYE}, {"CANCEL", isCANCEL},
		{"REGISTER", isREGISTER}, {"OPTIONS", isOPTIONS}, {"MESSAGE", isMESSAGE},
		{"SUBSCRIBE", isSUBSCRIBE}, {"NOTIFY", isNOTIFY}, {"PUBLISH", isPUBLISH},
		{"INFO", isINFO}, {"UPDATE", isUPDATE}, {"PRACK", isPRACK}, {"REFER", isREFER},
		{"KDMQ", isKDMQ}, {"GET", isGET}, {"POST", isPOST}, {"PUT", isPUT}, {"DELETE", isDELETE},
	} {
		fs = append(fs, Export{Name: "is_" + m.name, Func: m.f, Ret: Bool, Doc: "The method is " + m.name + ".", NoRetain: true})
	}
	return Submodule{Name: "", Funcs: fs}
}

func logDbg(e *Env, msg string) int    { e.logf(LevelDbg, msg); return 0 }
func logInfo(e *Env, msg string) int   { e.logf(LevelInfo, msg); return 0 }
func logNotice(e *Env, msg string) int { e.logf(LevelNotice, msg); return 0 }
func logWarn(e *Env, msg string) int   { e.logf(LevelWarn, msg); return 0 }
func logErr(e *Env, msg string) int    { e.logf(LevelErr, msg); return 0 }
func logCrit(e *Env, msg string) int   { e.logf(LevelCrit, msg); return 0 }
func logAlert(e *Env, msg string) int  { e.logf(LevelAlert, msg); return 0 }

func logLevel(e *Env, level, msg string) int { e.logf(parseLevel(level), msg); return 0 }

func setDrop(e *Env) int {
	if e.Msg != nil {
		e.Msg.Drop = true
	}
	return 0
}

func isMethod(e *Env, m string) int { return b2i(strings.EqualFold(e.method(), m)) }

func isMethodIn(e *Env, letters string) int {
	m := e.method()
	for i := 0; i < len(letters); i++ {
		if l := methodLetter(letters[i]); l != "" && l == m {
			return 1
		}
	}
	return 0
}

// The KSR.is_<METHOD> functions: one comparison, no allocation.
func isINVITE(e *Env) int    { return b2i(e.method() == "INVITE") }
func isACK(e *Env) int       { return b2i(e.method() == "ACK") }
func isBYE(e *Env) int       { return b2i(e.method() == "BYE") }
func isCANCEL(e *Env) int    { return b2i(e.method() == "CANCEL") }
func isREGISTER(e *Env) int  { return b2i(e.method() == "REGISTER") }
func isOPTIONS(e *Env) int   { return b2i(e.method() == "OPTIONS") }
func isMESSAGE(e *Env) int   { return b2i(e.method() == "MESSAGE") }
func isSUBSCRIBE(e *Env) int { return b2i(e.method() == "SUBSCRIBE") }
func isNOTIFY(e *Env) int    { return b2i(e.method() == "NOTIFY") }
func isPUBLISH(e *Env) int   { return b2i(e.method() == "PUBLISH") }
func isINFO(e *Env) int      { return b2i(e.method() == "INFO") }
func isUPDATE(e *Env) int    { return b2i(e.method() == "UPDATE") }
func isPRACK(e *Env) int     { return b2i(e.method() == "PRACK") }
func isREFER(e *Env) int     { return b2i(e.method() == "REFER") }
func isKDMQ(e *Env) int      { return b2i(e.method() == "KDMQ") }
func isGET(e *Env) int       { return b2i(e.method() == "GET") }
func isPOST(e *Env) int      { return b2i(e.method() == "POST") }
func isPUT(e *Env) int       { return b2i(e.method() == "PUT") }
func isDELETE(e *Env) int    { return b2i(e.method() == "DELETE") }

func isMyselfURI(e *Env, uri string) int {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return 0
	}
	return b2i(e.IsMyself(u.Host, u.Port))
}

func isMyselfRURI(e *Env) int {
	r := e.Msg.Request()
	if r == nil {
		return 0
	}
	return b2i(e.IsMyself(r.Recipient.Host, r.Recipient.Port))
}

func isMyselfFURI(e *Env) int { return b2i(e.isMyselfHdr(e.fromURI())) }
func isMyselfTURI(e *Env) int { return b2i(e.isMyselfHdr(e.toURI())) }

func isMyselfSrcIP(e *Env) int {
	if e.Msg == nil || e.Msg.Req == nil {
		return 0
	}
	return b2i(e.IsMyself(e.Msg.Req.Src.Addr().String(), 0))
}

func isRequest(e *Env) int { return b2i(e.Msg.Request() != nil) }
func isReply(e *Env) int   { return b2i(e.Msg != nil && e.Msg.Res != nil) }
func isUDP(e *Env) int     { return b2i(e.proto() == "udp") }
func isTCP(e *Env) int     { return b2i(e.proto() == "tcp") }
func isTLS(e *Env) int     { return b2i(e.proto() == "tls") }
func isWSS(e *Env) int     { return b2i(e.proto() == "wss") }
func isWS(e *Env) int      { return b2i(e.proto() == "ws") }
func isWSX(e *Env) int     { return b2i(e.proto() == "ws" || e.proto() == "wss") }

func (e *Env) proto() string {
	switch {
	case e.Msg == nil:
		return ""
	case e.Msg.Req != nil:
		return e.Msg.Req.Proto()
	case e.Msg.Res != nil && e.Msg.Res.Listener != nil:
		return e.Msg.Res.Listener.Proto
	}
	return ""
}

func (e *Env) isMyselfHdr(u *sip.Uri) bool {
	return u != nil && e.IsMyself(u.Host, u.Port)
}

// IsMyself reports whether host[:port] is one of the engine's addresses or
// aliases (port 0 matches any listening port, as for is_myself without
// port): Kamailio's check_self, used by KSR.is_myself and rr's loose_route.
func (e *Env) IsMyself(host string, port int) bool {
	host = strings.Trim(host, "[]")
	for _, a := range e.D.Aliases {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	for _, f := range e.D.CheckSelf {
		if f(host, port) {
			return true
		}
	}
	if e.D.Myself == nil {
		return false
	}
	for _, ap := range e.D.Myself() {
		if ap.Addr().String() != host && !(host == e.D.Hostname && host != "") {
			continue
		}
		if port == 0 || port == int(ap.Port()) {
			return true
		}
	}
	return false
}

// maxFlag is the highest message flag (Kamailio's MAX_FLAG).
const maxFlag = 31

// validFlag reports whether KSR.setflag and friends may act on flag n: a
// message and a flag 0..maxFlag (Kamailio's flag_in_range), logged if not.
func (e *Env) validFlag(fn string, n int) bool {
	if n < 0 || n > maxFlag || e.Msg == nil {
		e.D.Log.Error("invalid flag", "function", "KSR."+fn, "flag", n)
		return false
	}
	return true
}

// setFlag is KSR.setflag: BOOL, false for an invalid flag (kemi.c
// sr_kemi_core_setflag).
func setFlag(e *Env, n int) int {
	if !e.validFlag("setflag", n) {
		return 0
	}
	e.Msg.Flags |= 1 << n
	return 1
}

func resetFlag(e *Env, n int) int {
	if !e.validFlag("resetflag", n) {
		return 0
	}
	e.Msg.Flags &^= 1 << n
	return 1
}

func isFlagSet(e *Env, n int) int {
	if !e.validFlag("isflagset", n) {
		return 0
	}
	return b2i(e.Msg.Flags&(1<<n) != 0)
}

// forward is KSR.forward: the request statelessly to $du or the R-URI.
func forward(e *Env) int { return forwardURI(e, "") }

// forwardURI is KSR.forward_uri: the request statelessly to uri ("": $du
// or the R-URI).
func forwardURI(e *Env, uri string) int {
	if e.D.Relay == nil {
		e.D.Log.Error("forward: no SIP network to forward on")
		return -1
	}
	return e.D.Relay.Forward(e, uri)
}
