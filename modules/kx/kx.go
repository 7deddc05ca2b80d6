// Package kx is Kamailio's kemix module in kemi: KSR.kx, the getters for
// the message's attributes (R-URI, From, To, source and receiving socket,
// body, Call-ID...) and for the configuration's #!define names and the
// process environment. The list of functions, their return kinds and their
// null values follow sr_kemi_kx_exports in kemix_mod.c at 5.6.3: a get_
// function gives nil where the attribute is missing, a getw_ one the
// string "<null>" and a gete_ one "" (SR_KEMI_XVAL_NULL_NONE, _PRINT and
// _EMPTY); a few (get_callid, get_proto, get_srcuri, get_msgbuf, get_def,
// get_env...) give "" rather than nil, as Kamailio's do. Ports are
// numbers.
//
// The #!define values come from the configuration through SetDefines,
// which the engine calls once the configuration is read (engine/modules.go).
//
// Concurrency: the module is configured once (SetDefines before any VM
// runs); its exports only read its settings and the calling VM's message.
package kx

import (
	"os"
	"strings"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
)

// Module is one configuration's kemix.
type Module struct {
	defines map[string]string // #!define names and values, read-only once set
}

// New returns kemix without defines.
func New() *Module { return &Module{} }

// SetDefines gives the module the configuration's preprocessor defines
// (name → value as written; "" for a define without a value). The engine
// calls it once, before any VM exists; the map is not modified afterwards.
func (m *Module) SetDefines(d map[string]string) { m.defines = d }

// null modes of sr_kemi_xval_null.
const (
	nullNone  = iota // nil
	nullPrint        // "<null>"
	nullEmpty        // ""
)

// nullStr is Kamailio's pv_get_null_str.
const nullStr = "<null>"

func null(mode int) lua.LValue {
	switch mode {
	case nullPrint:
		return lua.LString(nullStr)
	case nullEmpty:
		return lua.LString("")
	}
	return lua.LNil
}

func str(s string, mode int) lua.LValue {
	if s == "" {
		return null(mode)
	}
	return lua.LString(s)
}

// x declares an XVAL getter without parameters.
func x(name string, f func(*ksr.Env) lua.LValue, doc string) ksr.Export {
	return ksr.Export{Name: name, Func: f, Ret: ksr.Xval, Doc: doc}
}

// triple declares the get_, getw_ and gete_ variants of an attribute.
func triple(attr string, f func(e *ksr.Env, mode int) lua.LValue, what string) []ksr.Export {
	return []ksr.Export{
		x("get_"+attr, func(e *ksr.Env) lua.LValue { return f(e, nullNone) }, what+", nil if none."),
		x("getw_"+attr, func(e *ksr.Env) lua.LValue { return f(e, nullPrint) }, what+", \"<null>\" if none."),
		x("gete_"+attr, func(e *ksr.Env) lua.LValue { return f(e, nullEmpty) }, what+", \"\" if none."),
	}
}

// Info describes the module. kemix has no modparams.
func (m *Module) Info() ksr.ModuleInfo {
	var f []ksr.Export
	add := func(xs ...ksr.Export) { f = append(f, xs...) }
	// The order is sr_kemi_kx_exports'.
	add(x("get_ruri", getRURI, "The R-URI (the rewritten one if set), nil for a reply."))
	add(triple("ruser", func(e *ksr.Env, mode int) lua.LValue { return ruriAttr(e, 1, mode) }, "The R-URI's user")...)
	add(triple("rhost", func(e *ksr.Env, mode int) lua.LValue { return ruriAttr(e, 2, mode) }, "The R-URI's host")...)
	add(x("get_ouri", getOURI, "The R-URI as received (kemi: the current R-URI), nil for a reply."))
	add(x("get_furi", func(e *ksr.Env) lua.LValue { return hdrURI(fromURI(e)) }, "The From URI, nil if none."))
	add(triple("fuser", func(e *ksr.Env, mode int) lua.LValue { return uriAttr(fromURI(e), 1, mode) }, "The From URI's user")...)
	add(triple("fhost", func(e *ksr.Env, mode int) lua.LValue { return uriAttr(fromURI(e), 2, mode) }, "The From URI's host")...)
	add(x("get_turi", func(e *ksr.Env) lua.LValue { return hdrURI(toURI(e)) }, "The To URI, nil if none."))
	// Kamailio lists gete_ before getw_ for tuser, thost, duri, cturi, ua.
	tr := func(attr string, fn func(e *ksr.Env, mode int) lua.LValue, what string) {
		t := triple(attr, fn, what)
		add(t[0], t[2], t[1])
	}
	tr("tuser", func(e *ksr.Env, mode int) lua.LValue { return uriAttr(toURI(e), 1, mode) }, "The To URI's user")
	tr("thost", func(e *ksr.Env, mode int) lua.LValue { return uriAttr(toURI(e), 2, mode) }, "The To URI's host")
	tr("duri", getDURI, "The destination URI ($du)")
	tr("cturi", getCTURI, "The first Contact URI (none for *)")
	add(x("get_nhuri", getNHURI, "The next hop: $du if set, else the R-URI."))
	add(x("get_srcuri", getSrcURI, "The source as a SIP URI: sip:IP:PORT[;transport=PROTO], \"\" if unknown."))
	add(x("get_srcaddr_sock", getSrcAddrSock, "The source as proto:IP:PORT, \"\" if unknown."))
	tr("ua", getUA, "The User-Agent header's value")
	add(x("get_srcip", getSrcIP, "The source IP address."))
	add(x("get_srcport", getSrcPort, "The source port (a number, 0 if unknown)."))
	add(x("get_send_sock", getSendSock, "The forced send socket: always nil in kemi (no force_send_socket)."))
	add(x("get_send_sock_name", getSendSock, "The forced send socket's name: always nil in kemi."))
	add(ksr.Export{Name: "get_send_sock_port", Func: getSendSockPort, Ret: ksr.Int, Doc: "The forced send socket's port: always 0 in kemi."})
	add(x("get_rcvip", getRcvIP, "The receiving socket's IP address, nil if none."))
	add(x("get_rcv_sock_name", getRcvSockName, "The receiving socket's name: always nil in kemi (no socket names)."))
	add(x("get_rcvport", getRcvPort, "The receiving socket's port (a number, 0 if none)."))
	add(x("get_rcvadvip", getRcvIP, "The receiving socket's advertised IP: its IP in kemi (no advertise)."))
	add(x("get_rcvadvport", getRcvPort, "The receiving socket's advertised port: its port in kemi (no advertise)."))
	add(x("get_rcvaddr_sock", getRcvAddrSock, "The receiving socket as proto:IP:PORT, \"\" if none."))
	add(x("get_proto", getProto, "The transport (\"udp\", \"tcp\"...), \"\" if none."))
	add(ksr.Export{Name: "get_protoid", Func: getProtoID, Ret: ksr.Int, Doc: "The transport's id: 0 none, 1 udp, 2 tcp, 3 tls, 4 sctp, 5 ws, 6 wss."})
	au := triple("au", getAU, "The [Proxy-]Authorization username's user part")
	add(au[0], au[1], au[2])
	add(x("get_method", getMethod, "The request method, or the CSeq method of a reply."))
	add(ksr.Export{Name: "get_status", Func: getStatus, Ret: ksr.Int, Doc: "The reply's status code, -1 for a request."})
	add(x("gets_status", getsStatus, "The reply's status code as a string, nil for a request."))
	b := triple("body", getBody, "The body")
	add(b[0], b[1], b[2])
	add(ksr.Export{Name: "get_bodylen", Func: getBodyLen, Ret: ksr.Int, Doc: "The body's length."})
	add(ksr.Export{Name: "get_timestamp", Func: getTimestamp, Ret: ksr.Int, Doc: "The current Unix time, in seconds."})
	add(x("get_callid", getCallID, "The Call-ID, \"\" if none."))
	add(ksr.Export{Name: "get_conid", Func: getConID, Ret: ksr.Int, Doc: "The TCP connection id: always -1 in kemi (connections have no ids)."})
	add(x("get_msgbuf", getMsgBuf, "The message as text."))
	add(ksr.Export{Name: "get_msglen", Func: getMsgLen, Ret: ksr.Int, Doc: "The message's length, -1 if none."})
	add(ksr.Export{Name: "get_msgtype", Func: getMsgType, Ret: ksr.Int, Doc: "1 for a request, 2 for a reply."})
	add(ksr.Export{Name: "get_def", Func: m.getDef, Ret: ksr.Xval, Args: []string{"name"}, Doc: "The value of the #!define name (as written), \"\" if not defined."})
	add(ksr.Export{Name: "get_defn", Func: m.getDefn, Ret: ksr.Int, Args: []string{"name"}, Doc: "The value of the #!define name as an integer (its leading digits), 0 if none."})
	add(ksr.Export{Name: "ifdef", Func: m.ifdef, Ret: ksr.Bool, Args: []string{"name"}, Doc: "Whether name is #!defined."})
	add(ksr.Export{Name: "ifndef", Func: m.ifndef, Ret: ksr.Bool, Args: []string{"name"}, Doc: "Whether name is not #!defined."})
	add(ksr.Export{Name: "get_env", Func: getEnv, Ret: ksr.Xval, Args: []string{"name"}, Doc: "The environment variable name, \"\" if unset."})
	add(ksr.Export{Name: "get_envn", Func: getEnvn, Ret: ksr.Int, Args: []string{"name"}, Doc: "The environment variable name as an integer (its leading digits), 0 if unset."})
	return ksr.ModuleInfo{
		Name:    "kemix",
		Doc:     "KSR.kx: getters for message attributes, defines and the environment",
		Exports: []ksr.Submodule{{Name: "kx", Funcs: f}},
	}
}

func isReply(e *ksr.Env) bool { return e.Msg != nil && e.Msg.Res != nil }

func getRURI(e *ksr.Env) lua.LValue {
	r := e.Msg.Request()
	if r == nil {
		return lua.LNil
	}
	return lua.LString(r.Recipient.String())
}

func getOURI(e *ksr.Env) lua.LValue { return getRURI(e) }

// ruriAttr is ki_kx_get_ruri_attr: 1 user, 2 host.
func ruriAttr(e *ksr.Env, attr, mode int) lua.LValue {
	r := e.Msg.Request()
	if r == nil {
		return null(mode)
	}
	return uriAttr(&r.Recipient, attr, mode)
}

func uriAttr(u *sip.Uri, attr, mode int) lua.LValue {
	if u == nil {
		return null(mode)
	}
	if attr == 1 {
		return str(u.User, mode)
	}
	return str(u.Host, mode)
}

func hdrURI(u *sip.Uri) lua.LValue {
	if u == nil {
		return lua.LNil
	}
	return lua.LString(u.String())
}

func fromURI(e *ksr.Env) *sip.Uri {
	if m := e.Msg.SIP(); m != nil {
		if h := m.From(); h != nil {
			return &h.Address
		}
	}
	return nil
}

func toURI(e *ksr.Env) *sip.Uri {
	if m := e.Msg.SIP(); m != nil {
		if h := m.To(); h != nil {
			return &h.Address
		}
	}
	return nil
}

func getDURI(e *ksr.Env, mode int) lua.LValue {
	if e.Msg == nil {
		return null(mode)
	}
	return str(e.Msg.DstURI, mode)
}

func getNHURI(e *ksr.Env) lua.LValue {
	if e.Msg != nil && e.Msg.DstURI != "" {
		return lua.LString(e.Msg.DstURI)
	}
	return getRURI(e)
}

func getCTURI(e *ksr.Env, mode int) lua.LValue {
	m := e.Msg.SIP()
	if m == nil {
		return null(mode)
	}
	c := contact(m)
	if c == nil || c.Address.Wildcard {
		return null(mode)
	}
	return str(c.Address.String(), mode)
}

// contact returns the message's first Contact, or nil.
func contact(m sip.Message) *sip.ContactHeader {
	for _, h := range m.GetHeaders("contact") {
		if c, ok := h.(*sip.ContactHeader); ok {
			return c
		}
	}
	return nil
}

func getUA(e *ksr.Env, mode int) lua.LValue {
	m := e.Msg.SIP()
	if m == nil {
		return null(mode)
	}
	hs := m.GetHeaders("user-agent")
	if len(hs) == 0 {
		return null(mode)
	}
	return lua.LString(hs[0].Value()) // an empty header is "", as Kamailio's body
}

// getAU is ki_kx_get_auth_attr with attribute 1: the digest username's
// user part (before '@'), from Proxy-Authorization first, then
// Authorization; none for ACK and CANCEL.
func getAU(e *ksr.Env, mode int) lua.LValue {
	r := e.Msg.Request()
	if r == nil {
		return null(mode)
	}
	if r.Method == sip.ACK || r.Method == sip.CANCEL {
		return null(mode)
	}
	h := r.GetHeader("proxy-authorization")
	if h == nil {
		h = r.GetHeader("authorization")
	}
	if h == nil {
		return null(mode)
	}
	user, ok := DigestUsername(h.Value())
	if !ok {
		e.D.Log.Error("failed to parse credentials")
		return null(mode)
	}
	if i := strings.IndexByte(user, '@'); i >= 0 {
		user = user[:i]
	}
	return lua.LString(user)
}

// DigestUsername returns the username parameter of Digest credentials
// (unquoted), and false when the value is not Digest credentials with a
// username.
func DigestUsername(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if len(v) < 7 || !strings.EqualFold(v[:6], "digest") || (v[6] != ' ' && v[6] != '\t') {
		return "", false
	}
	rest := v[7:]
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t,")
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return "", false
		}
		name := strings.TrimSpace(rest[:eq])
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, "\"") {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return "", false
			}
			val, rest = rest[1:1+end], rest[2+end:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		if strings.EqualFold(name, "username") {
			return val, true
		}
	}
	return "", false
}

func getMethod(e *ksr.Env) lua.LValue {
	if r := e.Msg.Request(); r != nil {
		return lua.LString(string(r.Method))
	}
	if isReply(e) {
		if c := e.Msg.Res.Msg.CSeq(); c != nil {
			return lua.LString(string(c.MethodName))
		}
		e.D.Log.Error("no CSEQ header")
	}
	return lua.LNil
}

func getStatus(e *ksr.Env) int {
	if !isReply(e) {
		return -1
	}
	return int(e.Msg.Res.Msg.StatusCode)
}

func getsStatus(e *ksr.Env) lua.LValue {
	if !isReply(e) {
		return lua.LNil
	}
	return lua.LString(itoa(int(e.Msg.Res.Msg.StatusCode)))
}

func getBody(e *ksr.Env, mode int) lua.LValue {
	m := e.Msg.SIP()
	if m == nil {
		return null(mode)
	}
	return str(string(m.Body()), mode)
}

func getBodyLen(e *ksr.Env) int {
	if m := e.Msg.SIP(); m != nil {
		return len(m.Body())
	}
	return 0
}

func getTimestamp(e *ksr.Env) int { return int(e.D.Now().Unix()) }

func getCallID(e *ksr.Env) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		if c := m.CallID(); c != nil {
			return lua.LString(string(*c))
		}
	}
	return lua.LString("")
}

func getConID(e *ksr.Env) int { return -1 }

func getMsgBuf(e *ksr.Env) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		return lua.LString(m.String())
	}
	return lua.LString("")
}

func getMsgLen(e *ksr.Env) int {
	if m := e.Msg.SIP(); m != nil {
		return len(m.String())
	}
	return -1
}

func getMsgType(e *ksr.Env) int {
	switch {
	case e.Msg.Request() != nil:
		return 1
	case isReply(e):
		return 2
	}
	return -1
}

func getEnv(e *ksr.Env, name string) lua.LValue {
	if name == "" {
		return lua.LString("")
	}
	return lua.LString(os.Getenv(name))
}

func getEnvn(e *ksr.Env, name string) int {
	if name == "" {
		return 0
	}
	v, ok := os.LookupEnv(name)
	if !ok {
		return 0
	}
	return Str2sint(v)
}

func (m *Module) getDef(e *ksr.Env, name string) lua.LValue {
	return lua.LString(m.defines[name]) // "" when not defined, as Kamailio
}

func (m *Module) getDefn(e *ksr.Env, name string) int {
	v, ok := m.defines[name]
	if !ok {
		return 0
	}
	return Str2sint(v)
}

func (m *Module) ifdef(e *ksr.Env, name string) int {
	if _, ok := m.defines[name]; ok {
		return 1
	}
	return 0
}

func (m *Module) ifndef(e *ksr.Env, name string) int { return 1 - m.ifdef(e, name) }

// Str2sint is what kemix's get_defn and get_envn keep of Kamailio's
// str2sint: an optional sign and decimal digits; at the first other
// character it stops with the value so far ("12ab" is 12, "\"5\"" is 0);
// on overflow the value is the limit reached (INT_MAX or INT_MIN).
func Str2sint(s string) int {
	const maxInt32, minInt32 = 1<<31 - 1, -1 << 31
	n, neg, i := 0, false, 0
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		i++
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return n
		}
		d := int(c - '0')
		if neg {
			if n < (minInt32+d)/10 || n*10-d < minInt32 {
				return minInt32
			}
			n = n*10 - d
		} else {
			if n*10+d > maxInt32 {
				return maxInt32
			}
			n = n*10 + d
		}
	}
	return n
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
