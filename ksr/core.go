package ksr

import (
	"context"
	"log/slog"
	"strings"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"
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

func (e *Env) logFunc(name string, level slog.Level) lua.LGFunction {
	return func(L *lua.LState) int {
		if !e.arity(L, name, 1) {
			return 1
		}
		e.logf(level, argStr(L, 1))
		return retNone(L)
	}
}

func (e *Env) methodFunc(m sip.RequestMethod) lua.LGFunction {
	return func(L *lua.LState) int {
		return retBool(L, b2i(e.method() == string(m)))
	}
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

func (e *Env) coreFuncs() map[string]lua.LGFunction {
	f := map[string]lua.LGFunction{
		"dbg":    e.logFunc("dbg", LevelDbg),
		"info":   e.logFunc("info", LevelInfo),
		"notice": e.logFunc("notice", LevelNotice),
		"warn":   e.logFunc("warn", LevelWarn),
		"err":    e.logFunc("err", LevelErr),
		"crit":   e.logFunc("crit", LevelCrit),
		"alert":  e.logFunc("alert", LevelAlert),
		"log": func(L *lua.LState) int {
			if !e.arity(L, "log", 2) {
				return 1
			}
			e.logf(parseLevel(argStr(L, 1)), argStr(L, 2))
			return retNone(L)
		},
		"set_drop": func(L *lua.LState) int {
			if e.Msg != nil {
				e.Msg.Drop = true
			}
			return retNone(L)
		},
		"is_method": func(L *lua.LState) int {
			if !e.arity(L, "is_method", 1) {
				return 1
			}
			return retBool(L, b2i(strings.EqualFold(e.method(), argStr(L, 1))))
		},
		"is_method_in": func(L *lua.LState) int {
			if !e.arity(L, "is_method_in", 1) {
				return 1
			}
			m := e.method()
			s := argStr(L, 1)
			for i := 0; i < len(s); i++ {
				if l := methodLetter(s[i]); l != "" && l == m {
					return retBool(L, 1)
				}
			}
			return retBool(L, 0)
		},
		"is_myself": func(L *lua.LState) int {
			if !e.arity(L, "is_myself", 1) {
				return 1
			}
			var u sip.Uri
			if err := sip.ParseUri(argStr(L, 1), &u); err != nil {
				return retBool(L, 0)
			}
			return retBool(L, b2i(e.isMyself(u.Host, u.Port)))
		},
		"is_myself_ruri": func(L *lua.LState) int {
			r := e.Msg.Request()
			if r == nil {
				return retBool(L, 0)
			}
			return retBool(L, b2i(e.isMyself(r.Recipient.Host, r.Recipient.Port)))
		},
		"is_myself_furi": func(L *lua.LState) int {
			return retBool(L, b2i(e.isMyselfHdr(e.fromURI())))
		},
		"is_myself_turi": func(L *lua.LState) int {
			return retBool(L, b2i(e.isMyselfHdr(e.toURI())))
		},
		"is_myself_srcip": func(L *lua.LState) int {
			if e.Msg == nil || e.Msg.Req == nil {
				return retBool(L, 0)
			}
			return retBool(L, b2i(e.isMyself(e.Msg.Req.Src.Addr().String(), 0)))
		},
		"is_request": func(L *lua.LState) int { return retBool(L, b2i(e.Msg.Request() != nil)) },
		"is_reply":   func(L *lua.LState) int { return retBool(L, b2i(e.Msg != nil && e.Msg.Res != nil)) },
		"is_UDP":     func(L *lua.LState) int { return retBool(L, b2i(e.proto() == "udp")) },
		"is_TCP":     func(L *lua.LState) int { return retBool(L, b2i(e.proto() == "tcp")) },
	}
	for _, m := range []sip.RequestMethod{sip.INVITE, sip.ACK, sip.BYE, sip.CANCEL, sip.REGISTER, sip.OPTIONS,
		sip.MESSAGE, sip.SUBSCRIBE, sip.NOTIFY, sip.PUBLISH, sip.INFO, sip.UPDATE, sip.PRACK, sip.REFER,
		"KDMQ", "GET", "POST", "PUT", "DELETE"} {
		f["is_"+string(m)] = e.methodFunc(m)
	}
	e.flagAndForwardFuncs(f)
	return f
}

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
	return u != nil && e.isMyself(u.Host, u.Port)
}

// isMyself reports whether host[:port] is one of the engine's addresses
// (port 0 matches any listening port, as for is_myself without port).
func (e *Env) isMyself(host string, port int) bool {
	host = strings.Trim(host, "[]")
	for _, a := range e.D.Aliases {
		if strings.EqualFold(a, host) {
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

// flagAndForwardFuncs adds the message flags (KSR.setflag, resetflag,
// isflagset: 0..31, INT 1/-1 and BOOL, as kemi.c) and stateless forwarding
// (KSR.forward, KSR.forward_uri).
func (e *Env) flagAndForwardFuncs(f map[string]lua.LGFunction) {
	// flagFunc wraps a flag operation: bad arity pushes false (arity), an
	// invalid flag or no message gives bad.
	flagFunc := func(name string, bad lua.LValue, op func(L *lua.LState, n int) int) lua.LGFunction {
		return func(L *lua.LState) int {
			if !e.arity(L, name, 1) {
				return 1
			}
			n := argInt(L, 1)
			if n < 0 || n > maxFlag || e.Msg == nil {
				e.D.Log.Error("invalid flag", "function", "KSR."+name, "flag", n)
				L.Push(bad)
				return 1
			}
			return op(L, n)
		}
	}
	f["setflag"] = flagFunc("setflag", boxInt(-1), func(L *lua.LState, n int) int {
		e.Msg.Flags |= 1 << n
		return retInt(L, 1)
	})
	f["resetflag"] = flagFunc("resetflag", boxInt(-1), func(L *lua.LState, n int) int {
		e.Msg.Flags &^= 1 << n
		return retInt(L, 1)
	})
	f["isflagset"] = flagFunc("isflagset", lua.LFalse, func(L *lua.LState, n int) int {
		return retBool(L, b2i(e.Msg.Flags&(1<<n) != 0))
	})
	forward := func(L *lua.LState, dst string) int {
		if e.D.Relay == nil {
			e.D.Log.Error("forward: no SIP network to forward on")
			return retInt(L, -1)
		}
		return retInt(L, e.D.Relay.Forward(e, dst))
	}
	// forward sends the request statelessly to $du or the R-URI.
	f["forward"] = func(L *lua.LState) int { return forward(L, "") }
	// forward_uri(uri) sends the request statelessly to uri.
	f["forward_uri"] = func(L *lua.LState) int {
		if !e.arity(L, "forward_uri", 1) {
			return 1
		}
		return forward(L, argStr(L, 1))
	}
}
