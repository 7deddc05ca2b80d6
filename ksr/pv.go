package ksr

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"
)

// pvSpec is a parsed pseudo-variable name such as "$ru" or "$hdr(From)".
type pvSpec struct {
	name string // class: "ru", "hdr", "var", ...
	arg  string // inner name, for classes with parentheses
	dyn  string // inner name when it is itself a PV ("$var(q)")
	get  func(e *Env, s *pvSpec) lua.LValue
	set  func(e *Env, s *pvSpec, v lua.LValue) bool
}

// pvParse parses name, caching the result per VM.
func (e *Env) pvParse(name string) (*pvSpec, error) {
	if s, ok := e.pvCache[name]; ok {
		return s, nil
	}
	s, err := parsePV(name, e.D.PVs)
	if err != nil {
		return nil, err
	}
	if len(e.pvCache) < 4096 {
		e.pvCache[name] = s
	}
	return s, nil
}

func parsePV(name string, mods map[string]*PV) (*pvSpec, error) {
	if !strings.HasPrefix(name, "$") || len(name) < 2 {
		return nil, fmt.Errorf("invalid pseudo-variable %q", name)
	}
	body := name[1:]
	if strings.HasPrefix(body, "(") && strings.HasSuffix(body, ")") {
		body = body[1 : len(body)-1] // $(ru) form
	}
	class, arg := body, ""
	if i := strings.IndexByte(body, '('); i > 0 {
		if !strings.HasSuffix(body, ")") {
			return nil, fmt.Errorf("invalid pseudo-variable %q: missing ')'", name)
		}
		class, arg = body[:i], body[i+1:len(body)-1]
		if arg == "" {
			return nil, fmt.Errorf("invalid pseudo-variable %q: empty name", name)
		}
	}
	s := &pvSpec{name: class, arg: arg}
	if strings.HasPrefix(arg, "$") {
		s.dyn = arg
	}
	if arg == "" {
		s.get = simplePV(class)
	} else {
		s.get, s.set = namedPV(class)
	}
	switch class {
	case "ru", "rU", "rd", "rp", "du":
		s.set = setURI
	}
	if pv := mods[class]; s.get == nil && pv != nil && pv.Named == (arg != "") {
		s.get, s.set = modulePV(pv)
	}
	if s.get == nil {
		return nil, fmt.Errorf("unknown pseudo-variable %q", name)
	}
	return s, nil
}

// argName resolves the inner name, evaluating it when it is a PV.
func (e *Env) argName(s *pvSpec) (string, bool) {
	if s.dyn == "" {
		return s.arg, true
	}
	inner, err := e.pvParse(s.dyn)
	if err != nil {
		return "", false
	}
	v := inner.get(e, inner)
	if v == lua.LNil {
		return "", false
	}
	return v.String(), true
}

// modulePV adapts a module's pseudo-variable class to a pvSpec's getter
// and setter.
func modulePV(pv *PV) (func(e *Env, s *pvSpec) lua.LValue, func(e *Env, s *pvSpec, v lua.LValue) bool) {
	get := func(e *Env, s *pvSpec) lua.LValue {
		name, ok := e.argName(s)
		if !ok {
			return lua.LNil
		}
		return pv.Get(e, name)
	}
	if pv.Set == nil {
		return get, nil
	}
	return get, func(e *Env, s *pvSpec, v lua.LValue) bool {
		name, ok := e.argName(s)
		if !ok {
			return false
		}
		return pv.Set(e, name, v)
	}
}

func lstr(s string) lua.LValue { return lua.LString(s) }

func strOrNil(s string) lua.LValue {
	if s == "" {
		return lua.LNil
	}
	return lua.LString(s)
}

func uriPort(u *sip.Uri) int {
	if u.Port > 0 {
		return u.Port
	}
	if u.IsEncrypted() {
		return 5061
	}
	return 5060
}

func (e *Env) fromURI() *sip.Uri {
	if m := e.Msg.SIP(); m != nil {
		if h := m.From(); h != nil {
			return &h.Address
		}
	}
	return nil
}

func (e *Env) toURI() *sip.Uri {
	if m := e.Msg.SIP(); m != nil {
		if h := m.To(); h != nil {
			return &h.Address
		}
	}
	return nil
}

func (e *Env) now() time.Time {
	if e.Msg != nil && !e.Msg.Time.IsZero() {
		return e.Msg.Time
	}
	return e.D.Now()
}

// simplePV returns the getter of a PV without inner name.
func simplePV(class string) func(e *Env, s *pvSpec) lua.LValue {
	req := func(f func(r *sip.Request) lua.LValue) func(e *Env, s *pvSpec) lua.LValue {
		return func(e *Env, s *pvSpec) lua.LValue {
			if r := e.Msg.Request(); r != nil {
				return f(r)
			}
			return lua.LNil
		}
	}
	hdrURI := func(get func(e *Env) *sip.Uri, f func(u *sip.Uri) lua.LValue) func(e *Env, s *pvSpec) lua.LValue {
		return func(e *Env, s *pvSpec) lua.LValue {
			if u := get(e); u != nil {
				return f(u)
			}
			return lua.LNil
		}
	}
	msg := func(f func(m sip.Message) lua.LValue) func(e *Env, s *pvSpec) lua.LValue {
		return func(e *Env, s *pvSpec) lua.LValue {
			if m := e.Msg.SIP(); m != nil {
				return f(m)
			}
			return lua.LNil
		}
	}
	uriStr := func(u *sip.Uri) lua.LValue { return lstr(u.String()) }
	uriUser := func(u *sip.Uri) lua.LValue { return strOrNil(u.User) }
	uriHost := func(u *sip.Uri) lua.LValue { return strOrNil(u.Host) }
	switch class {
	case "ru":
		return req(func(r *sip.Request) lua.LValue { return lstr(r.Recipient.String()) })
	case "rU":
		return req(func(r *sip.Request) lua.LValue { return strOrNil(r.Recipient.User) })
	case "rd":
		return req(func(r *sip.Request) lua.LValue { return strOrNil(r.Recipient.Host) })
	case "rp":
		return req(func(r *sip.Request) lua.LValue { return boxInt(uriPort(&r.Recipient)) })
	case "rz":
		return req(func(r *sip.Request) lua.LValue {
			if r.Recipient.IsEncrypted() {
				return lstr("sips")
			}
			return lstr("sip")
		})
	case "rm":
		return func(e *Env, s *pvSpec) lua.LValue { return strOrNil(e.method()) }
	case "rv":
		return msg(func(m sip.Message) lua.LValue {
			switch x := m.(type) {
			case *sip.Request:
				return lstr(x.SipVersion)
			case *sip.Response:
				return lstr(x.SipVersion)
			}
			return lua.LNil
		})
	case "rs":
		return func(e *Env, s *pvSpec) lua.LValue {
			if e.Msg != nil && e.Msg.Res != nil {
				return boxInt(int(e.Msg.Res.Msg.StatusCode))
			}
			return lua.LNil
		}
	case "rr":
		return func(e *Env, s *pvSpec) lua.LValue {
			if e.Msg != nil && e.Msg.Res != nil {
				return lstr(e.Msg.Res.Msg.Reason)
			}
			return lua.LNil
		}
	case "T_reply_code", "T_reply_reason", "T_reply_type":
		return tmReplyPV(class)
	case "ci":
		return msg(func(m sip.Message) lua.LValue {
			if h := m.CallID(); h != nil {
				return lstr(string(*h))
			}
			return lua.LNil
		})
	case "cs":
		return msg(func(m sip.Message) lua.LValue {
			if h := m.CSeq(); h != nil {
				return boxInt(int(h.SeqNo))
			}
			return lua.LNil
		})
	case "fu":
		return hdrURI((*Env).fromURI, uriStr)
	case "fU":
		return hdrURI((*Env).fromURI, uriUser)
	case "fd":
		return hdrURI((*Env).fromURI, uriHost)
	case "fn":
		return msg(func(m sip.Message) lua.LValue {
			if h := m.From(); h != nil {
				return strOrNil(h.DisplayName)
			}
			return lua.LNil
		})
	case "ft":
		return msg(func(m sip.Message) lua.LValue {
			if h := m.From(); h != nil {
				t, _ := h.Params.Get("tag")
				return strOrNil(t)
			}
			return lua.LNil
		})
	case "tu":
		return hdrURI((*Env).toURI, uriStr)
	case "tU":
		return hdrURI((*Env).toURI, uriUser)
	case "td":
		return hdrURI((*Env).toURI, uriHost)
	case "tn":
		return msg(func(m sip.Message) lua.LValue {
			if h := m.To(); h != nil {
				return strOrNil(h.DisplayName)
			}
			return lua.LNil
		})
	case "tt":
		return msg(func(m sip.Message) lua.LValue {
			if h := m.To(); h != nil {
				t, _ := h.Params.Get("tag")
				return strOrNil(t)
			}
			return lua.LNil
		})
	case "ua":
		return msg(func(m sip.Message) lua.LValue { return hdrValue(m, "User-Agent") })
	case "ct":
		return msg(func(m sip.Message) lua.LValue { return hdrValue(m, "Contact") })
	case "cT":
		return msg(func(m sip.Message) lua.LValue { return hdrValue(m, "Content-Type") })
	case "cl":
		return msg(func(m sip.Message) lua.LValue { return boxInt(len(m.Body())) })
	case "rb":
		return msg(func(m sip.Message) lua.LValue { return strOrNil(string(m.Body())) })
	case "mb":
		return msg(func(m sip.Message) lua.LValue { return lstr(m.String()) })
	case "ml":
		return msg(func(m sip.Message) lua.LValue { return boxInt(len(m.String())) })
	case "si":
		return func(e *Env, s *pvSpec) lua.LValue {
			if ap, ok := e.srcAddr(); ok {
				return lstr(ap.Addr().String())
			}
			return lua.LNil
		}
	case "sp":
		return func(e *Env, s *pvSpec) lua.LValue {
			if ap, ok := e.srcAddr(); ok {
				return boxInt(int(ap.Port()))
			}
			return lua.LNil
		}
	case "Ri":
		return func(e *Env, s *pvSpec) lua.LValue {
			if ap, ok := e.rcvAddr(); ok {
				return lstr(ap.Addr().String())
			}
			return lua.LNil
		}
	case "Rp":
		return func(e *Env, s *pvSpec) lua.LValue {
			if ap, ok := e.rcvAddr(); ok {
				return boxInt(int(ap.Port()))
			}
			return lua.LNil
		}
	case "pr", "proto":
		return func(e *Env, s *pvSpec) lua.LValue { return strOrNil(e.proto()) }
	case "du":
		return func(e *Env, s *pvSpec) lua.LValue {
			if e.Msg == nil {
				return lua.LNil
			}
			return strOrNil(e.Msg.DstURI)
		}
	case "Ts":
		return func(e *Env, s *pvSpec) lua.LValue { return lua.LNumber(e.now().Unix()) }
	case "TF", "Tf":
		return func(e *Env, s *pvSpec) lua.LValue { return lstr(e.now().Format("Mon Jan _2 15:04:05 2006")) }
	case "rtimer_worker":
		return func(e *Env, s *pvSpec) lua.LValue { return boxInt(e.Index) }
	}
	return nil
}

func hdrValue(m sip.Message, name string) lua.LValue {
	if h := m.GetHeaders(name); len(h) > 0 {
		return lstr(h[0].Value())
	}
	return lua.LNil
}

// namedPV returns the getter and setter of a PV with an inner name.
func namedPV(class string) (func(e *Env, s *pvSpec) lua.LValue, func(e *Env, s *pvSpec, v lua.LValue) bool) {
	switch class {
	case "hdr":
		return func(e *Env, s *pvSpec) lua.LValue {
			m := e.Msg.SIP()
			name, ok := e.argName(s)
			if m == nil || !ok {
				return lua.LNil
			}
			return hdrValue(m, name)
		}, nil
	case "var":
		return func(e *Env, s *pvSpec) lua.LValue {
				name, ok := e.argName(s)
				if !ok {
					return lua.LNil
				}
				if v, ok := e.vars[name]; ok {
					return v
				}
				return lua.LNil
			}, func(e *Env, s *pvSpec, v lua.LValue) bool {
				name, ok := e.argName(s)
				if !ok {
					return false
				}
				if v == lua.LNil {
					delete(e.vars, name)
				} else {
					e.vars[name] = v
				}
				return true
			}
	case "shv":
		return func(e *Env, s *pvSpec) lua.LValue {
				name, ok := e.argName(s)
				if !ok || e.D.Shv == nil {
					return lua.LNil
				}
				return fromGo(e.D.Shv.Get(name))
			}, func(e *Env, s *pvSpec, v lua.LValue) bool {
				name, ok := e.argName(s)
				if !ok || e.D.Shv == nil {
					return false
				}
				e.D.Shv.Set(name, toGo(v))
				return true
			}
	case "avp":
		return func(e *Env, s *pvSpec) lua.LValue {
				name, ok := e.argName(s)
				if !ok || e.Msg == nil {
					return lua.LNil
				}
				return fromGo(e.Msg.AVPs[name])
			}, func(e *Env, s *pvSpec, v lua.LValue) bool {
				name, ok := e.argName(s)
				if !ok || e.Msg == nil {
					return false
				}
				if e.Msg.AVPs == nil {
					e.Msg.AVPs = map[string]any{}
				}
				if g := toGo(v); g == nil {
					delete(e.Msg.AVPs, name)
				} else {
					e.Msg.AVPs[name] = g
				}
				return true
			}
	case "TV":
		return func(e *Env, s *pvSpec) lua.LValue {
			switch s.arg {
			case "s":
				return lua.LNumber(e.now().Unix())
			case "u":
				return boxInt(e.now().Nanosecond() / 1000)
			case "sn":
				return lua.LNumber(e.D.Now().Unix())
			case "un":
				return boxInt(e.D.Now().Nanosecond() / 1000)
			case "Sn":
				t := e.D.Now()
				return lstr(strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%06d", t.Nanosecond()/1000))
			case "Sm":
				t := e.D.Now()
				return lstr(strconv.FormatInt(t.Unix(), 10) + "." + fmt.Sprintf("%03d", t.Nanosecond()/1000000))
			}
			return lua.LNil
		}, nil
	case "async":
		return func(e *Env, s *pvSpec) lua.LValue {
			if s.arg == "data" {
				return lstr(e.AsyncData)
			}
			if s.arg == "gname" {
				return lstr(e.asyncGroup())
			}
			return lua.LNil
		}, nil
	}
	return nil, nil
}

func fromGo(v any) lua.LValue {
	switch x := v.(type) {
	case string:
		return lua.LString(x)
	case int64:
		return lua.LNumber(x)
	case int:
		return boxInt(x)
	}
	return lua.LNil
}

func toGo(v lua.LValue) any {
	switch x := v.(type) {
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return int64(x)
	}
	return nil
}

// setURI sets $ru, $rU, $rd, $rp or $du.
func setURI(e *Env, s *pvSpec, v lua.LValue) bool {
	if e.Msg == nil {
		return false
	}
	val := ""
	if v != lua.LNil {
		val = v.String()
	}
	if s.name == "du" {
		if val != "" {
			if _, err := parseSIPURI(val); err != nil {
				e.D.Log.Error("invalid destination uri", "value", val, "error", err)
				return false
			}
		}
		e.Msg.DstURI = val
		return true
	}
	r := e.Msg.Request()
	if r == nil {
		return false
	}
	switch s.name {
	case "ru":
		u, err := parseSIPURI(val)
		if err != nil {
			e.D.Log.Error("invalid request uri", "value", val, "error", err)
			return false
		}
		r.Recipient = u
	case "rU":
		r.Recipient.User = val
	case "rd":
		if val == "" {
			return false
		}
		r.Recipient.Host = val
	case "rp":
		p, err := strconv.Atoi(val)
		if err != nil || p < 0 || p > 65535 {
			return false
		}
		r.Recipient.Port = p
	}
	return true
}

func (e *Env) pvFuncs() map[string]lua.LGFunction {
	get := func(L *lua.LState, name string) (lua.LValue, bool) {
		s, err := e.pvParse(name)
		if err != nil {
			e.D.Log.Error("pv get", "error", err)
			return lua.LNil, false
		}
		return s.get(e, s), true
	}
	setter := func(fname string, conv func(L *lua.LState) lua.LValue) lua.LGFunction {
		return func(L *lua.LState) int {
			if !e.arity(L, "pv."+fname, 2) {
				return 1
			}
			name := argStr(L, 1)
			s, err := e.pvParse(name)
			if err != nil || s.set == nil {
				e.D.Log.Error("pv is not writable", "pv", name)
				return retBool(L, 0)
			}
			return retBool(L, b2i(s.set(e, s, conv(L))))
		}
	}
	withDefault := func(fname string, dflt lua.LValue) lua.LGFunction {
		return func(L *lua.LState) int {
			if !e.arity(L, "pv."+fname, 1) {
				return 1
			}
			v, _ := get(L, argStr(L, 1))
			if v == lua.LNil {
				v = dflt
			}
			L.Push(v)
			return 1
		}
	}
	return map[string]lua.LGFunction{
		"get": func(L *lua.LState) int {
			if !e.arity(L, "pv.get", 1) {
				return 1
			}
			v, _ := get(L, argStr(L, 1))
			L.Push(v)
			return 1
		},
		"gete": withDefault("gete", lua.LString("")),
		"getw": withDefault("getw", lua.LString("<null>")),
		"getvs": func(L *lua.LState) int {
			if !e.arity(L, "pv.getvs", 2) {
				return 1
			}
			v, _ := get(L, argStr(L, 1))
			if v == lua.LNil {
				v = lua.LString(argStr(L, 2))
			}
			L.Push(v)
			return 1
		},
		"getvn": func(L *lua.LState) int {
			if !e.arity(L, "pv.getvn", 2) {
				return 1
			}
			v, _ := get(L, argStr(L, 1))
			if v == lua.LNil {
				v = boxInt(argInt(L, 2))
			}
			L.Push(v)
			return 1
		},
		"geti": func(L *lua.LState) int {
			if !e.arity(L, "pv.geti", 1) {
				return 1
			}
			v, _ := get(L, argStr(L, 1))
			switch x := v.(type) {
			case lua.LNumber:
				L.Push(x)
			case lua.LString:
				n, _ := strconv.Atoi(string(x))
				L.Push(boxInt(n))
			default:
				L.Push(boxInt(0))
			}
			return 1
		},
		"sets": setter("sets", func(L *lua.LState) lua.LValue { return lua.LString(argStr(L, 2)) }),
		"seti": setter("seti", func(L *lua.LState) lua.LValue { return boxInt(argInt(L, 2)) }),
		"unset": func(L *lua.LState) int {
			if !e.arity(L, "pv.unset", 1) {
				return 1
			}
			s, err := e.pvParse(argStr(L, 1))
			if err != nil || s.set == nil {
				return retBool(L, 0)
			}
			return retBool(L, b2i(s.set(e, s, lua.LNil)))
		},
		"is_null": func(L *lua.LState) int {
			if !e.arity(L, "pv.is_null", 1) {
				return 1
			}
			v, _ := get(L, argStr(L, 1))
			return retBool(L, b2i(v == lua.LNil))
		},
	}
}

// parseSIPURI parses a sip: or sips: URI with a host.
func parseSIPURI(s string) (sip.Uri, error) {
	var u sip.Uri
	if !strings.HasPrefix(s, "sip:") && !strings.HasPrefix(s, "sips:") {
		return u, fmt.Errorf("not a sip uri: %q", s)
	}
	if err := sip.ParseUri(s, &u); err != nil {
		return u, err
	}
	if u.Host == "" {
		return u, fmt.Errorf("no host in %q", s)
	}
	return u, nil
}

// tmReplyPV is tmx's $T_reply_code, $T_reply_reason and $T_reply_type
// (tmx t_var.c): in reply routes, the reply's status and reason; in a
// failure route, the winning reply's (a local one for a timeout or a
// cancel: $T_reply_type 1); in the request route, the status last sent
// for the transaction. Without a transaction the code is 0, the reason
// empty and the type nil; the reason outside reply and failure routes is
// nil (tmx logs "unsupported route_type" there).
func tmReplyPV(class string) func(e *Env, s *pvSpec) lua.LValue {
	return func(e *Env, s *pvSpec) lua.LValue {
		m := e.Msg
		if m == nil {
			return lua.LNil
		}
		if m.Res != nil { // core reply route and t_on_reply functions
			switch class {
			case "T_reply_code":
				return boxInt(int(m.Res.Msg.StatusCode))
			case "T_reply_reason":
				if m.Route == RouteReply && m.Res.Branch == nil {
					return lstr("") // no transaction
				}
				return lstr(m.Res.Msg.Reason)
			}
			if m.Res.Branch == nil {
				return lua.LNil
			}
			return boxInt(0)
		}
		var hasTx bool
		var last int
		if m.Req != nil {
			if tx := m.Req.Tx(); tx != nil {
				hasTx, last = true, tx.LastStatus()
			}
		}
		if !hasTx && m.TM == nil {
			switch class {
			case "T_reply_code":
				return boxInt(0)
			case "T_reply_reason":
				return lstr("")
			}
			return lua.LNil
		}
		switch class {
		case "T_reply_code":
			switch {
			case m.TM != nil:
				return boxInt(m.TM.Code)
			case m.Route == RouteRequest || m.Route == RouteBranch:
				return boxInt(last)
			}
			return boxInt(0)
		case "T_reply_reason":
			if m.TM != nil {
				return lstr(m.TM.Reason)
			}
			return lua.LNil
		}
		if m.TM != nil && m.TM.Res == nil {
			return boxInt(1)
		}
		return boxInt(0)
	}
}
