package ksr

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"
)

// pvSpec is a parsed pseudo-variable name such as "$ru" or "$hdr(From)".
type pvSpec struct {
	name string // class: "ru", "hdr", "var", ...
	arg  string // inner name, for classes with parentheses
	dyn  string // inner name when it is itself a PV ("$var(q)")
	idx  int    // the index of the $(pv[idx]) form, negative from the end
	all  bool   // the $(pv[*]) form
	// hasIdx is set for the $(pv[idx]) form.
	hasIdx bool
	get    pvGetter
	set    pvSetter // nil for a read-only variable

	// own is set on the specs of one VM (Env.pvParse), which may keep the
	// last string they boxed (str): specs parsed for formats shared by
	// several VMs do not.
	own     bool
	boxedOf string
	boxed   lua.LValue
}

// str returns v as a Lua string. Converting a string to an LValue
// allocates, and a script reads the same $ci or $rU many times per
// message: a VM's own spec keeps the last value it boxed and gives it again
// while the string is the same (the same bytes, as read from the same
// message, compare at once).
func (s *pvSpec) str(v string) lua.LValue {
	if !s.own {
		return lua.LString(v)
	}
	if s.boxed == nil || s.boxedOf != v {
		s.boxedOf, s.boxed = v, lua.LString(v)
	}
	return s.boxed
}

// strOrNil is str, or nil for "".
func (s *pvSpec) strOrNil(v string) lua.LValue {
	if v == "" {
		return lua.LNil
	}
	return s.str(v)
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
	s.own = true
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
	var idx string
	hasIdx := false
	if strings.HasPrefix(body, "(") && strings.HasSuffix(body, ")") {
		body = body[1 : len(body)-1] // $(ru) form
		// $(hdr(X)[1]), $(hdr(X)[-1]), $(hdr(X)[*]): an index
		if strings.HasSuffix(body, "]") {
			i := strings.LastIndexByte(body, '[')
			if i <= 0 {
				return nil, fmt.Errorf("invalid pseudo-variable %q: missing '['", name)
			}
			idx, hasIdx = body[i+1:len(body)-1], true
			body = body[:i]
		}
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
	s := &pvSpec{name: class, arg: arg, hasIdx: hasIdx}
	if hasIdx {
		if idx == "*" {
			s.all = true
		} else if n, err := strconv.Atoi(idx); err == nil {
			s.idx = n
		} else {
			return nil, fmt.Errorf("invalid pseudo-variable %q: bad index %q", name, idx)
		}
	}
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
	case "fu", "fU", "fd", "fn", "tu", "tU", "td", "tn":
		if arg == "" {
			s.set = setAddr
		}
	}
	if pv := mods[class]; s.get == nil && pv != nil && pv.Named == (arg != "") {
		s.get, s.set = modulePV(pv)
		if pv.Literal {
			s.dyn = ""
		}
	}
	if s.get == nil {
		return nil, fmt.Errorf("unknown pseudo-variable %q", name)
	}
	if class == "branch" && !branchNames[arg] {
		return nil, fmt.Errorf("invalid pseudo-variable %q: unknown branch attribute %q", name, arg)
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
func modulePV(pv *PV) (pvGetter, pvSetter) {
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

// now is the message's time: read from the clock the first time a route
// asks for it, then the same for the rest of the message's routing, as
// Kamailio caches $Ts per message.
func (e *Env) now() time.Time {
	if e.Msg == nil {
		return e.D.Now()
	}
	if e.Msg.Time.IsZero() {
		e.Msg.Time = e.D.Now()
	}
	return e.Msg.Time
}

// pvGetter reads a pseudo-variable for the current message.
type pvGetter = func(e *Env, s *pvSpec) lua.LValue

// simplePV returns the getter of a PV without inner name, nil for an
// unknown class. Each getter is a small named function; the lookup runs
// once per name and VM (pvParse caches the spec).
func simplePV(class string) pvGetter {
	switch class {
	case "ru":
		return pvRURI
	case "rU":
		return pvRUser
	case "rd":
		return pvRDomain
	case "rp":
		return pvRPort
	case "rz":
		return pvRScheme
	case "rm":
		return pvMethod
	case "rv":
		return pvVersion
	case "rs":
		return pvStatus
	case "rr":
		return pvReason
	case "ci":
		return pvCallID
	case "cs":
		return pvCSeq
	case "fu", "fU", "fd":
		return uriPV((*Env).fromURI, class[1])
	case "fn":
		return pvFromName
	case "ft":
		return pvFromTag
	case "tu", "tU", "td":
		return uriPV((*Env).toURI, class[1])
	case "tn":
		return pvToName
	case "tt":
		return pvToTag
	case "ua", "ct", "cT":
		return hdrPV(class)
	case "cl":
		return pvBodyLen
	case "rb":
		return pvBody
	case "mb":
		return pvMsgBuf
	case "ml":
		return pvMsgLen
	}
	return sessionPV(class)
}

// sessionPV returns the getter of a PV about the socket, the worker or
// the time, nil for an unknown class.
func sessionPV(class string) pvGetter {
	switch class {
	case "si":
		return pvSrcIP
	case "sp":
		return pvSrcPort
	case "Ri":
		return pvRcvIP
	case "Rp":
		return pvRcvPort
	case "pr", "proto":
		return pvProto
	case "du":
		return pvDstURI
	case "Ts":
		return pvTs
	case "TF", "Tf":
		return pvTf
	case "rtimer_worker":
		return pvRtimerWorker
	}
	return nil
}

func pvRURI(e *Env, _ *pvSpec) lua.LValue {
	if r := e.Msg.Request(); r != nil {
		return lstr(r.Recipient.String())
	}
	return lua.LNil
}

func pvRUser(e *Env, s *pvSpec) lua.LValue {
	if r := e.Msg.Request(); r != nil {
		return s.strOrNil(r.Recipient.User)
	}
	return lua.LNil
}

func pvRDomain(e *Env, s *pvSpec) lua.LValue {
	if r := e.Msg.Request(); r != nil {
		return s.strOrNil(r.Recipient.Host)
	}
	return lua.LNil
}

// pvRPort is $rp: a string in Kamailio (pv_get_strintval: no
// PV_TYPE_INT, so KSR.pv.get gives the string, KSR.pv.geti the number).
func pvRPort(e *Env, _ *pvSpec) lua.LValue {
	if r := e.Msg.Request(); r != nil {
		return lstr(strconv.Itoa(uriPort(&r.Recipient)))
	}
	return lua.LNil
}

func pvRScheme(e *Env, _ *pvSpec) lua.LValue {
	r := e.Msg.Request()
	switch {
	case r == nil:
		return lua.LNil
	case r.Recipient.IsEncrypted():
		return lua.LString("sips")
	}
	return lua.LString("sip")
}

func pvMethod(e *Env, s *pvSpec) lua.LValue { return s.strOrNil(e.method()) }

func pvVersion(e *Env, _ *pvSpec) lua.LValue {
	switch x := e.Msg.SIP().(type) {
	case *sip.Request:
		return lstr(x.SipVersion)
	case *sip.Response:
		return lstr(x.SipVersion)
	}
	return lua.LNil
}

func pvStatus(e *Env, _ *pvSpec) lua.LValue {
	if e.Msg != nil && e.Msg.Res != nil {
		return boxInt(int(e.Msg.Res.Msg.StatusCode))
	}
	return lua.LNil
}

func pvReason(e *Env, _ *pvSpec) lua.LValue {
	if e.Msg != nil && e.Msg.Res != nil {
		return lstr(e.Msg.Res.Msg.Reason)
	}
	return lua.LNil
}

// pvCallID is $ci: boxed once per message (pvSpec.str).
func pvCallID(e *Env, s *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		if h := m.CallID(); h != nil {
			return s.str(string(*h))
		}
	}
	return lua.LNil
}

// pvCSeq is $cs: a string in Kamailio (pv_get_strintval), as $rp.
func pvCSeq(e *Env, _ *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		if h := m.CSeq(); h != nil {
			return lstr(strconv.FormatUint(uint64(h.SeqNo), 10))
		}
	}
	return lua.LNil
}

// uriPV is $fu/$fU/$fd (or $tu/$tU/$td): the whole URI ('u'), its user
// ('U') or its host ('d').
func uriPV(get func(e *Env) *sip.Uri, part byte) pvGetter {
	return func(e *Env, s *pvSpec) lua.LValue {
		u := get(e)
		switch {
		case u == nil:
			return lua.LNil
		case part == 'U':
			return s.strOrNil(u.User)
		case part == 'd':
			return s.strOrNil(u.Host)
		}
		return lstr(u.String())
	}
}

// pvFromName is $fn: the display name as the header has it, quotes
// included (pv_core.c gives to_body_t's display). sipgo keeps the name
// without its quotes and always sends it quoted, so kemi gives it quoted.
func pvFromName(e *Env, _ *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		if h := m.From(); h != nil {
			return quotedName(h.DisplayName)
		}
	}
	return lua.LNil
}

func quotedName(n string) lua.LValue {
	if n == "" {
		return lua.LNil
	}
	return lua.LString(`"` + n + `"`)
}

func pvFromTag(e *Env, s *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		if h := m.From(); h != nil {
			t, _ := h.Params.Get("tag")
			return s.strOrNil(t)
		}
	}
	return lua.LNil
}

func pvToName(e *Env, _ *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		if h := m.To(); h != nil {
			return quotedName(h.DisplayName)
		}
	}
	return lua.LNil
}

func pvToTag(e *Env, s *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		if h := m.To(); h != nil {
			t, _ := h.Params.Get("tag")
			return s.strOrNil(t)
		}
	}
	return lua.LNil
}

// hdrPV is $ua, $ct or $cT: the first User-Agent, Contact or Content-Type
// header's value.
func hdrPV(class string) pvGetter {
	name := map[string]string{"ua": "User-Agent", "ct": "Contact", "cT": "Content-Type"}[class]
	return func(e *Env, _ *pvSpec) lua.LValue {
		if m := e.Msg.SIP(); m != nil {
			return hdrValue(m, name)
		}
		return lua.LNil
	}
}

func pvBodyLen(e *Env, _ *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		return boxInt(len(m.Body()))
	}
	return lua.LNil
}

// pvBody is $rb: "" for a message without a body (pv_get_msg_body).
func pvBody(e *Env, _ *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		return lstr(string(m.Body()))
	}
	return lua.LNil
}

func pvMsgBuf(e *Env, _ *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		return lstr(m.String())
	}
	return lua.LNil
}

func pvMsgLen(e *Env, _ *pvSpec) lua.LValue {
	if m := e.Msg.SIP(); m != nil {
		return boxInt(len(m.String()))
	}
	return lua.LNil
}

func pvSrcIP(e *Env, _ *pvSpec) lua.LValue {
	if ap, ok := e.srcAddr(); ok {
		return lstr(ap.Addr().String())
	}
	return lua.LNil
}

func pvSrcPort(e *Env, _ *pvSpec) lua.LValue {
	if ap, ok := e.srcAddr(); ok {
		return boxInt(int(ap.Port()))
	}
	return lua.LNil
}

func pvRcvIP(e *Env, _ *pvSpec) lua.LValue {
	if ap, ok := e.rcvAddr(); ok {
		return lstr(ap.Addr().String())
	}
	return lua.LNil
}

func pvRcvPort(e *Env, _ *pvSpec) lua.LValue {
	if ap, ok := e.rcvAddr(); ok {
		return boxInt(int(ap.Port()))
	}
	return lua.LNil
}

func pvProto(e *Env, _ *pvSpec) lua.LValue { return strOrNil(e.proto()) }

func pvDstURI(e *Env, _ *pvSpec) lua.LValue {
	if e.Msg == nil {
		return lua.LNil
	}
	return strOrNil(e.Msg.DstURI)
}

func pvTs(e *Env, _ *pvSpec) lua.LValue { return lua.LNumber(e.now().Unix()) }

func pvTf(e *Env, _ *pvSpec) lua.LValue {
	return lstr(e.now().Format("Mon Jan _2 15:04:05 2006"))
}

// pvRtimerWorker is $rtimer_worker: the rtimer process's index in an
// rtimer group ("rtimer" for mode=0 timers, "rtimer:<name>"); nil elsewhere (Kamailio's conformance config does not load
// rtimer, so the pv does not exist there; with rtimer loaded Kamailio
// gives 0 in a SIP worker).
func pvRtimerWorker(e *Env, _ *pvSpec) lua.LValue {
	if e.Group != "rtimer" && !strings.HasPrefix(e.Group, "rtimer:") {
		return lua.LNil
	}
	return boxInt(e.Index)
}

// Headers is a request's or a reply's headers, in order (sipgo's own
// slice), nil for anything else.
func Headers(m sip.Message) []sip.Header {
	switch x := m.(type) {
	case *sip.Request:
		return x.Headers()
	case *sip.Response:
		return x.Headers()
	}
	return nil
}

// hdrValue is the first name header's value (its compact form too), nil
// when there is none.
func hdrValue(m sip.Message, name string) lua.LValue {
	if h := firstHeader(Headers(m), name); h != nil {
		return lstr(h.Value())
	}
	return lua.LNil
}

// pvSetter writes a pseudo-variable; nil v unsets it.
type pvSetter = func(e *Env, s *pvSpec, v lua.LValue) bool

// namedPV returns the getter and setter (nil when read-only) of a PV with
// an inner name, nil for an unknown class.
func namedPV(class string) (pvGetter, pvSetter) {
	switch class {
	case "hdr":
		return pvHdr, nil
	case "var":
		return pvVar, setVar
	case "shv":
		return pvShv, setShv
	case "avp":
		return pvAVP, setAVP
	case "xavp":
		return pvXavp, setXavp
	case "xavu":
		return pvXavu, setXavu
	case "TV":
		return pvTV, nil
	case "async":
		return pvAsync, nil
	case "branch":
		return pvBranch, nil
	}
	return nil, nil
}

// pvHdr is $hdr(name): the first such header's value; $(hdr(name)[i]) the
// i-th (negative: from the end), $(hdr(name)[*]) all of them joined with
// ", " (pv_get_hdr).
func pvHdr(e *Env, s *pvSpec) lua.LValue {
	m := e.Msg.SIP()
	name, ok := e.argName(s)
	if m == nil || !ok {
		return lua.LNil
	}
	if !s.hasIdx {
		return hdrValue(m, name)
	}
	hs := findHeaders(Headers(m), name)
	if s.all {
		if len(hs) == 0 {
			return lua.LNil
		}
		vs := make([]string, len(hs))
		for i, h := range hs {
			vs[i] = h.Value()
		}
		return lstr(strings.Join(vs, ","))
	}
	i := s.idx
	if i < 0 {
		i += len(hs)
	}
	if i < 0 || i >= len(hs) {
		return lua.LNil
	}
	return lstr(hs[i].Value())
}

// pvVar is $var(name): the VM's private variables.
func pvVar(e *Env, s *pvSpec) lua.LValue {
	name, ok := e.argName(s)
	if !ok {
		return lua.LNil
	}
	if v, ok := e.vars[name]; ok {
		return v
	}
	// A $var never set (or unset) is the integer 0: Kamailio creates it
	// when the name is first parsed, and unsetting sets it to 0
	// (pv_set_scriptvar with a null value).
	return smallInts[256]
}

func setVar(e *Env, s *pvSpec, v lua.LValue) bool {
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

// pvShv is $shv(name): the variables shared by every VM.
func pvShv(e *Env, s *pvSpec) lua.LValue {
	name, ok := e.argName(s)
	if !ok || e.D.Shv == nil {
		return lua.LNil
	}
	if v := e.D.Shv.Get(name); v != nil {
		return fromGo(v)
	}
	// A $shv never set is the integer 0, as Kamailio's shvar created at
	// parse time (add_shvar).
	return smallInts[256]
}

func setShv(e *Env, s *pvSpec, v lua.LValue) bool {
	name, ok := e.argName(s)
	if !ok || e.D.Shv == nil {
		return false
	}
	g := toGo(v)
	if g == nil {
		// Unsetting a $shv leaves an empty string (set_shvar_value with a
		// null value keeps a VAR_VAL_STR flag and no text).
		g = ""
	}
	e.D.Shv.Set(name, g)
	return true
}

// pvAVP is $avp(name): the message's attribute-value pairs. Each name is
// a stack (pv_core.c pv_get_avp): $avp(x) is the newest value,
// $(avp(x)[i]) the i-th from the newest (a negative index as Kamailio's),
// $(avp(x)[*]) every value, newest first, joined with ", ".
func pvAVP(e *Env, s *pvSpec) lua.LValue {
	name, ok := e.argName(s)
	if !ok || e.Msg == nil {
		return lua.LNil
	}
	st := e.Msg.AVPs[name] // oldest first
	if len(st) == 0 {
		return lua.LNil
	}
	if s.all {
		vs := make([]string, len(st))
		for i := range st {
			vs[i] = fromGo(st[len(st)-1-i]).String()
		}
		return lstr(strings.Join(vs, ", "))
	}
	i := s.idx // from the newest
	if i < 0 {
		// pv_get_avp counts the values with the search state it then
		// reuses, so a negative index finds only the newest value, when
		// -i is the count; any other gives null.
		if -i != len(st) {
			return lua.LNil
		}
		i = 0
	}
	if i >= len(st) {
		return lua.LNil
	}
	return fromGo(st[len(st)-1-i])
}

// setAVP is pv_set_avp: a value is added on top of the name's stack (the
// older ones stay), $(avp(x)[*]) = v replaces them all; a null value
// removes the newest one, or all of them with [*].
func setAVP(e *Env, s *pvSpec, v lua.LValue) bool {
	name, ok := e.argName(s)
	if !ok || e.Msg == nil {
		return false
	}
	if e.Msg.AVPs == nil {
		e.Msg.AVPs = map[string][]any{}
	}
	st := e.Msg.AVPs[name]
	g := toGo(v)
	switch {
	case g == nil && (s.all || len(st) <= 1):
		delete(e.Msg.AVPs, name)
	case g == nil:
		e.Msg.AVPs[name] = st[:len(st)-1]
	case s.all:
		e.Msg.AVPs[name] = []any{g}
	default:
		e.Msg.AVPs[name] = append(st, g)
	}
	return true
}

// pvTV is $TV(s), $TV(u) (the message's time), $TV(sn), $TV(un), $TV(Sn)
// and $TV(Sm) (now).
func pvTV(e *Env, s *pvSpec) lua.LValue {
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
	case "Fn":
		// pv_time.c: strftime("%Y-%m-%d %H:%M:%S") of local time, then
		// ".%06u" microseconds.
		t := e.D.Now().Local()
		return lstr(t.Format("2006-01-02 15:04:05") + fmt.Sprintf(".%06d", t.Nanosecond()/1000))
	}
	return lua.LNil
}

// pvAsync is $async(data) and $async(gname) (async_sleep.c pv_get_async):
// the data of the running data task and the worker's async group, null
// (nil) elsewhere: $async(data) outside a data task, $async(gname) outside
// an async worker group.
func pvAsync(e *Env, s *pvSpec) lua.LValue {
	switch s.arg {
	case "data":
		if e.InAsyncData {
			return lstr(e.AsyncData)
		}
	case "gname":
		if e.AsyncWorker {
			return lstr(e.Group)
		}
	}
	return lua.LNil
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

// setDU sets $du ("" unsets it), refusing a value that is not a SIP URI.
func (e *Env) setDU(val string) bool {
	if val != "" {
		if _, err := parseSIPURI(val); err != nil {
			e.D.Log.Error("invalid destination uri", "value", val, "error", err)
			return false
		}
	}
	e.Msg.DstURI = val
	return true
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
		if !e.setDU(val) {
			return false
		}
		if val != "" {
			e.Msg.RuriConsumed = false // pv_set_dsturi: re-use the R-URI for serial forking
		}
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
	e.Msg.RuriConsumed = false // rewrite_uri: ruri_mark_new
	return true
}

// AddrEdit is one change of the From or To header made through a pv: the
// whole URI ('u'), its user ('U'), its host ('d') or the display name ('n');
// Unset removes the user or the display name.
type AddrEdit struct {
	To    bool
	Part  byte
	Val   string
	Unset bool
}

// setAddr records a write of $fu, $fU, $fd, $fn, $tu, $tU, $td or $tn
// (pv_set_xto_attr): a lump in Kamailio, so the message read in the route
// keeps the received value and the forwarded copy has the new one. Deleting
// the URI or the host is refused with a warning and succeeds; an integer
// value is an error.
func setAddr(e *Env, s *pvSpec, v lua.LValue) bool {
	if e.Msg == nil || e.Msg.Request() == nil {
		return false
	}
	ed := AddrEdit{To: s.name[0] == 't', Part: s.name[1]}
	if v == lua.LNil {
		if ed.Part == 'u' || ed.Part == 'd' {
			e.D.Log.Warn("From/To header URI or domain cannot be deleted", "pv", "$"+s.name)
			return true
		}
		ed.Unset = true
	} else {
		str, ok := v.(lua.LString)
		if !ok {
			e.D.Log.Error("attempt to assign a non-string value to a From/To pv", "pv", "$"+s.name)
			return false
		}
		ed.Val = string(str)
	}
	e.Msg.AddrEdits = append(e.Msg.AddrEdits, ed)
	return true
}

// ApplyEdits writes m's pending From/To changes into out, a copy of m's
// request about to be sent. A changed header is sent as text (the display
// name as the script gave it, unquoted, as Kamailio's lump), and out's
// parsed From/To follow the change.
func (m *Msg) ApplyEdits(out *sip.Request) {
	if m == nil || len(m.AddrEdits) == 0 {
		return
	}
	var from, to *addrText
	for _, ed := range m.AddrEdits {
		p := &from
		if ed.To {
			p = &to
		}
		if *p == nil {
			*p = newAddrText(out, ed.To)
			if *p == nil {
				continue
			}
		}
		(*p).apply(ed)
	}
	if from != nil {
		from.write(out, "From")
	}
	if to != nil {
		to.write(out, "To")
	}
}

// addrText is a From or To header being rewritten: the display name as
// sent, the URI as text and the header's parameters.
type addrText struct {
	display string
	uri     sip.Uri
	raw     string // a URI that does not parse, as given
	params  sip.HeaderParams
	dn      *string // the parsed header's display name, updated
	addr    *sip.Uri
}

func newAddrText(out *sip.Request, to bool) *addrText {
	if to {
		h := out.To()
		if h == nil {
			return nil
		}
		return &addrText{display: quotedString(h.DisplayName), uri: h.Address, params: h.Params, dn: &h.DisplayName, addr: &h.Address}
	}
	h := out.From()
	if h == nil {
		return nil
	}
	return &addrText{display: quotedString(h.DisplayName), uri: h.Address, params: h.Params, dn: &h.DisplayName, addr: &h.Address}
}

func quotedString(n string) string {
	if n == "" {
		return ""
	}
	return `"` + n + `"`
}

func (a *addrText) apply(ed AddrEdit) {
	switch ed.Part {
	case 'u':
		u, err := parseSIPURI(ed.Val)
		if err != nil {
			a.raw = ed.Val
			return
		}
		a.raw, a.uri = "", u
	case 'U':
		a.uri.User = ed.Val // "" when unset
		if ed.Unset {
			a.uri.Password = ""
		}
	case 'd':
		a.uri.Host = ed.Val
	case 'n':
		a.display = ed.Val
	}
}

func (a *addrText) write(out *sip.Request, name string) {
	var b strings.Builder
	if a.display != "" {
		b.WriteString(a.display)
		b.WriteByte(' ')
	}
	b.WriteByte('<')
	if a.raw != "" {
		b.WriteString(a.raw)
	} else {
		b.WriteString(a.uri.String())
		*a.addr = a.uri
	}
	b.WriteByte('>')
	if a.params != nil && a.params.Length() > 0 {
		b.WriteByte(';')
		b.WriteString(a.params.ToString(';'))
	}
	*a.dn = strings.Trim(a.display, `"`)
	out.ReplaceHeader(sip.NewHeader(name, b.String()))
}

// pvExports is KSR.pv: Kamailio's core pseudo-variable functions (kemi.c,
// _sr_kemi_pv).
func pvExports() Submodule {
	pv := []string{"pvname"}
	return Submodule{Name: "pv", Funcs: []Export{
		{Name: "get", NoRetain: true, Func: pvGet, Ret: Xval, Args: pv, Doc: "The variable's value (string or number), or nil."},
		{Name: "gete", NoRetain: true, Func: pvGetE, Ret: Xval, Args: pv, Doc: "The variable's value, or \"\" when it is null."},
		{Name: "getw", NoRetain: true, Func: pvGetW, Ret: Xval, Args: pv, Doc: "The variable's value, or \"<null>\" when it is null."},
		{Name: "getvs", NoRetain: true, Func: pvGetVS, Ret: Xval, Args: []string{"pvname", "vdef"}, Doc: "The variable's value, or the string vdef when it is null."},
		{Name: "getvn", NoRetain: true, Func: pvGetVN, Ret: Xval, Args: []string{"pvname", "vdef"}, Doc: "The variable's value, or the number vdef when it is null."},
		{Name: "geti", NoRetain: true, Func: pvGetI, Ret: Int, Args: pv, Doc: "The variable's value as an integer (0 when null or not numeric)."},
		{Name: "sets", Func: pvSetS, Ret: Bool, Args: []string{"pvname", "val"}, Doc: "Set a writable variable to a string."},
		{Name: "seti", Func: pvSetI, Ret: Bool, Args: []string{"pvname", "val"}, Doc: "Set a writable variable to an integer."},
		{Name: "unset", Func: pvUnset, Ret: Bool, Args: pv, Doc: "Unset a writable variable."},
		{Name: "is_null", NoRetain: true, Func: pvIsNull, Ret: Bool, Args: pv, Doc: "The variable is null (unset, or not in this message)."},
	}}
}

// pvValue is the variable's value, nil (logged) for a name that does not
// parse.
func (e *Env) pvValue(name string) lua.LValue {
	s, err := e.pvParse(name)
	if err != nil {
		e.D.Log.Error("pv get", "error", err)
		return lua.LNil
	}
	return s.get(e, s)
}

// pvGet is KSR.pv.get, the hot path: a cached parse and a getter.
func pvGet(e *Env, name string) lua.LValue { return e.pvValue(name) }

func pvGetE(e *Env, name string) lua.LValue { return orDefault(e.pvValue(name), lua.LString("")) }
func pvGetW(e *Env, name string) lua.LValue {
	return orDefault(e.pvValue(name), lua.LString("<null>"))
}

func pvGetVS(e *Env, name, vdef string) lua.LValue {
	if v := e.pvValue(name); v != lua.LNil {
		return v
	}
	return lua.LString(vdef)
}

func pvGetVN(e *Env, name string, vdef int) lua.LValue {
	return orDefault(e.pvValue(name), boxInt(vdef))
}

func orDefault(v, dflt lua.LValue) lua.LValue {
	if v == lua.LNil {
		return dflt
	}
	return v
}

// pvGetI is KSR.pv.geti: the pv's integer value (kemi.c sr_kemi_pv_geti),
// which for $rm is the method id (pv_get_method: pv_get_strintval).
func pvGetI(e *Env, name string) int {
	if s, err := e.pvParse(name); err == nil && s.name == "rm" && s.arg == "" {
		if e.Msg.SIP() == nil {
			return 0
		}
		return methodID(e.method())
	}
	switch x := e.pvValue(name).(type) {
	case lua.LNumber:
		return int(x)
	case lua.LString:
		n, _ := strconv.Atoi(string(x))
		return n
	}
	return 0
}

// pvSet sets a variable: 1 done, 0 (logged) invalid name or the setter
// failed. Setting a read-only variable is a no-op that succeeds, as in
// Kamailio (pv_set_spec_value returns 0 when the spec is not writable).
func (e *Env) pvSet(name string, v lua.LValue) int {
	s, err := e.pvParse(name)
	if err != nil {
		e.D.Log.Error("pv set", "error", err)
		return 0
	}
	if s.set == nil {
		return 1
	}
	return b2i(s.set(e, s, v))
}

func pvSetS(e *Env, name, val string) int     { return e.pvSet(name, lua.LString(val)) }
func pvSetI(e *Env, name string, val int) int { return e.pvSet(name, boxInt(val)) }

// pvUnset is KSR.pv.unset: as pvSet with a null value (a read-only
// variable: a no-op that succeeds).
func pvUnset(e *Env, name string) int {
	s, err := e.pvParse(name)
	if err != nil {
		return 0
	}
	if s.set == nil {
		return 1
	}
	return b2i(s.set(e, s, lua.LNil))
}

func pvIsNull(e *Env, name string) int { return b2i(e.pvValue(name) == lua.LNil) }

// methodID is Kamailio's method_value for a method name (parser/msg_parser.h
// METHOD_*): 0 for none, METHOD_OTHER for an unknown one.
func methodID(m string) int {
	for i, n := range [...]string{"INVITE", "CANCEL", "ACK", "BYE", "INFO", "REGISTER", "SUBSCRIBE",
		"NOTIFY", "MESSAGE", "OPTIONS", "PRACK", "UPDATE", "REFER", "PUBLISH", "KDMQ", "GET", "POST",
		"PUT", "DELETE"} {
		if strings.EqualFold(m, n) {
			return 1 << i
		}
	}
	if m == "" {
		return 0
	}
	return 1 << 19
}

var uriPool = sync.Pool{New: func() any { return new(sip.Uri) }}

// parseSIPURI parses a sip: or sips: URI with a host.
func parseSIPURI(s string) (sip.Uri, error) {
	if !strings.HasPrefix(s, "sip:") && !strings.HasPrefix(s, "sips:") {
		return sip.Uri{}, fmt.Errorf("not a sip uri: %q", s)
	}
	// sip.ParseUri's target lives on the heap (its states are func
	// values): parsing into a pooled one spares $ru's set an allocation.
	p := uriPool.Get().(*sip.Uri)
	*p = sip.Uri{}
	err := sip.ParseUri(s, p)
	u := *p
	*p = sip.Uri{}
	uriPool.Put(p)
	if err != nil {
		return u, err
	}
	if u.Host == "" {
		return u, fmt.Errorf("no host in %q", s)
	}
	return u, nil
}
