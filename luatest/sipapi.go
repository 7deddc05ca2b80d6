package luatest

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/engine"
)

const (
	handleType = "kemi.test.request"
	replyType  = "kemi.test.reply"
)

// requestFields lists the keys a request table may hold.
const requestFields = "method, uri, ruri, from, to, call_id, cseq, branch, via, max_forwards, contact, headers, body, content_type, src, proto, local"

func isRequestField(k string) bool {
	for _, f := range strings.Split(requestFields, ", ") {
		if f == k {
			return true
		}
	}
	return false
}

// t.request{method = "INVITE", ...} or t.request(raw_text [, {src = ..., proto = ...}]):
// route a request through the engine and return its handle once the engine
// is idle.
func (f *fileRun) lRequest(L *lua.LState) int {
	f.running(L, "request")
	var (
		msg  *sip.Request
		opts engine.InjectOptions
		err  error
	)
	switch v := L.Get(1).(type) {
	case *lua.LTable:
		msg, opts, err = f.buildRequest(v)
	case lua.LString:
		if o, ok := L.Get(2).(*lua.LTable); ok {
			opts, err = injectOptions(o)
		}
		if err == nil {
			msg, err = parseRaw(string(v))
		}
	default:
		L.ArgError(1, "a request table or raw SIP text expected")
	}
	if err != nil {
		L.RaiseError("t.request: %v", err)
	}
	raw := msg.String()
	out, err := f.eng.Inject(f.ctx, msg, opts)
	if err != nil {
		L.RaiseError("t.request: %v", err)
	}
	ud := f.newHandle(L, out, msg)
	h := ud.Value.(*handle)
	h.raw, h.opts = raw, opts
	L.Push(ud)
	return 1
}

// injectOptions reads src, proto and local of a request table.
func injectOptions(t *lua.LTable) (engine.InjectOptions, error) {
	var o engine.InjectOptions
	if v := t.RawGetString("proto"); v != lua.LNil {
		o.Proto = strings.ToLower(v.String())
		if o.Proto != "udp" && o.Proto != "tcp" {
			return o, fmt.Errorf("proto %q: udp or tcp", v.String())
		}
	}
	for _, k := range []string{"src", "local"} {
		v := t.RawGetString(k)
		if v == lua.LNil {
			continue
		}
		ap, err := netip.ParseAddrPort(v.String())
		if err != nil {
			return o, fmt.Errorf("%s %q: want ip:port", k, v.String())
		}
		if k == "src" {
			o.Src = ap
		} else {
			o.Local = ap
		}
	}
	return o, nil
}

// buildRequest makes a request from a table: every field has a default, and
// headers = {...} adds headers ("Name: value" strings, or name = value /
// name = {values}), replacing a default header of the same name.
func (f *fileRun) buildRequest(t *lua.LTable) (*sip.Request, engine.InjectOptions, error) {
	var bad []string
	t.ForEach(func(k, _ lua.LValue) {
		if s, ok := k.(lua.LString); !ok || !isRequestField(string(s)) {
			bad = append(bad, k.String())
		}
	})
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, engine.InjectOptions{}, fmt.Errorf("unknown field(s) %s (fields: %s)", strings.Join(bad, ", "), requestFields)
	}
	opts, err := injectOptions(t)
	if err != nil {
		return nil, opts, err
	}
	str := func(k, def string) string {
		if v := t.RawGetString(k); v != lua.LNil {
			return v.String()
		}
		return def
	}
	f.seq++
	n := strconv.Itoa(f.seq)
	proto := opts.Proto
	if proto == "" {
		proto = "udp"
	}
	src := opts.Src
	if !src.IsValid() {
		src = netip.MustParseAddrPort("127.0.0.1:5080")
	}
	local := opts.Local.String()
	if !opts.Local.IsValid() {
		local = f.localAddr(proto)
	}
	method := strings.ToUpper(str("method", "OPTIONS"))
	uri := str("uri", str("ruri", "sip:kemi@"+local))
	cseq := str("cseq", "1")
	if !strings.Contains(cseq, " ") {
		cseq += " " + method
	}
	hdrs := []string{
		"Via: " + str("via", "SIP/2.0/"+strings.ToUpper(proto)+" "+src.String()+";branch=z9hG4bK-kemitest-"+n+";rport"),
		"Max-Forwards: " + str("max_forwards", "70"),
		"From: " + str("from", "<sip:alice@"+src.Addr().String()+">;tag=kemitest-"+n),
		"To: " + str("to", "<"+uri+">"),
		"Call-ID: " + str("call_id", "kemitest-"+n+"@"+src.Addr().String()),
		"CSeq: " + cseq,
	}
	if b := str("branch", ""); b != "" && t.RawGetString("via") == lua.LNil {
		hdrs[0] = "Via: SIP/2.0/" + strings.ToUpper(proto) + " " + src.String() + ";branch=" + b + ";rport"
	}
	if c := str("contact", ""); c != "" {
		hdrs = append(hdrs, "Contact: "+c)
	} else if method == "INVITE" || method == "SUBSCRIBE" || method == "REGISTER" {
		hdrs = append(hdrs, "Contact: <sip:alice@"+src.String()+">")
	}
	extra, err := headerList(t.RawGetString("headers"))
	if err != nil {
		return nil, opts, err
	}
	for _, h := range extra {
		name, _, _ := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		hdrs = dropHeader(hdrs, name)
	}
	hdrs = append(hdrs, extra...)
	body := str("body", "")
	if body != "" {
		if ct := str("content_type", ""); ct != "" {
			hdrs = append(dropHeader(hdrs, "Content-Type"), "Content-Type: "+ct)
		} else if !hasHeader(hdrs, "Content-Type") {
			hdrs = append(hdrs, "Content-Type: text/plain")
		}
	}
	hdrs = append(dropHeader(hdrs, "Content-Length"), "Content-Length: "+strconv.Itoa(len(body)))
	raw := method + " " + uri + " SIP/2.0\r\n" + strings.Join(hdrs, "\r\n") + "\r\n\r\n" + body
	msg, err := parseRaw(raw)
	return msg, opts, err
}

// localAddr is the receiving address requests claim by default: the
// configuration's first listen of proto, or 127.0.0.1:5060.
func (f *fileRun) localAddr(proto string) string {
	for _, l := range f.eng.Settings().Listen {
		if l.Proto != proto {
			continue
		}
		if ap, err := netip.ParseAddrPort(l.Addr); err == nil {
			if ap.Port() == 0 {
				ap = netip.AddrPortFrom(ap.Addr(), 5060)
			}
			return ap.String()
		}
	}
	return "127.0.0.1:5060"
}

func headerList(v lua.LValue) ([]string, error) {
	t, ok := v.(*lua.LTable)
	if v == lua.LNil {
		return nil, nil
	}
	if !ok {
		return nil, fmt.Errorf("headers: a table expected, got %s", v.Type())
	}
	var out []string
	for i := 1; i <= t.Len(); i++ {
		h := t.RawGetInt(i).String()
		if !strings.Contains(h, ":") {
			return nil, fmt.Errorf("headers[%d] %q: want \"Name: value\"", i, h)
		}
		out = append(out, strings.TrimRight(h, "\r\n"))
	}
	var named []string
	t.ForEach(func(k, val lua.LValue) {
		s, ok := k.(lua.LString)
		if !ok {
			return
		}
		if vt, ok := val.(*lua.LTable); ok {
			for i := 1; i <= vt.Len(); i++ {
				named = append(named, string(s)+": "+vt.RawGetInt(i).String())
			}
			return
		}
		named = append(named, string(s)+": "+val.String())
	})
	sort.SliceStable(named, func(i, j int) bool {
		a, _, _ := strings.Cut(named[i], ":")
		b, _, _ := strings.Cut(named[j], ":")
		return a < b
	})
	return append(out, named...), nil
}

func hasHeader(hdrs []string, name string) bool {
	for _, h := range hdrs {
		if n, _, _ := strings.Cut(h, ":"); strings.EqualFold(strings.TrimSpace(n), name) {
			return true
		}
	}
	return false
}

func dropHeader(hdrs []string, name string) []string {
	out := hdrs[:0:0]
	for _, h := range hdrs {
		if n, _, _ := strings.Cut(h, ":"); !strings.EqualFold(strings.TrimSpace(n), name) {
			out = append(out, h)
		}
	}
	return out
}

// parseRaw parses raw SIP text as written in a Lua long string: the
// indentation of the first line is removed from every line, line ends may
// be LF, and the blank line before the body may be missing.
func parseRaw(raw string) (*sip.Request, error) {
	text := strings.ReplaceAll(raw, "\r\n", "\n")
	text = strings.TrimLeft(text, "\n")
	lines := strings.Split(text, "\n")
	indent := lines[0][:len(lines[0])-len(strings.TrimLeft(lines[0], " \t"))]
	head, body, inBody := []string{}, []string{}, false
	for _, l := range lines {
		if !inBody {
			l = strings.TrimPrefix(l, indent)
			if strings.TrimSpace(l) == "" {
				inBody = true
				continue
			}
			head = append(head, strings.TrimRight(l, " \t"))
			continue
		}
		body = append(body, strings.TrimPrefix(l, indent))
	}
	b := strings.Join(body, "\r\n")
	b = strings.TrimRight(b, "\r\n \t")
	if b != "" {
		b += "\r\n"
	}
	if !hasHeader(head[1:], "Content-Length") {
		head = append(head, "Content-Length: "+strconv.Itoa(len(b)))
	}
	m, err := sip.ParseMessage([]byte(strings.Join(head, "\r\n") + "\r\n\r\n" + b))
	if err != nil {
		return nil, fmt.Errorf("parse request: %w", err)
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return nil, fmt.Errorf("parse request: %q is a reply, not a request", head[0])
	}
	return req, nil
}

// handle is what t.request returns: a live view of the Outcome.
type handle struct {
	out  *engine.Outcome
	msg  *sip.Request
	raw  string               // the request as sent, before routing (authorize, in_dialog)
	opts engine.InjectOptions // its src, proto and local
}

func (f *fileRun) newHandle(L *lua.LState, out *engine.Outcome, msg *sip.Request) *lua.LUserData {
	ud := L.NewUserData()
	ud.Value = &handle{out: out, msg: msg}
	L.SetMetatable(ud, f.handleMeta(L))
	return ud
}

func (f *fileRun) handleMeta(L *lua.LState) lua.LValue {
	if mt, ok := L.GetTypeMetatable(handleType).(*lua.LTable); ok {
		return mt
	}
	mt := L.NewTypeMetatable(handleType)
	methods := map[string]*lua.LFunction{
		"last_reply": L.NewFunction(func(L *lua.LState) int {
			h := checkHandle(L)
			L.Push(f.lastReply(L, h))
			return 1
		}),
		"header": L.NewFunction(func(L *lua.LState) int {
			h := checkHandle(L)
			name := L.CheckString(2)
			rs := h.out.Replies()
			if len(rs) == 0 {
				L.Push(lua.LNil)
				return 1
			}
			if hd := rs[len(rs)-1].GetHeader(name); hd != nil {
				L.Push(lua.LString(hd.Value()))
				return 1
			}
			L.Push(lua.LNil)
			return 1
		}),
		"authorize": L.NewFunction(f.lAuthorize),
		"in_dialog": L.NewFunction(f.lInDialog),
		"cancel": L.NewFunction(func(L *lua.LState) int {
			h := checkHandle(L)
			ok, err := h.out.Cancel(f.ctx)
			if err != nil {
				L.RaiseError("cancel: %v", err)
			}
			L.Push(lua.LBool(ok))
			return 1
		}),
	}
	setIndex(L, mt, methods, func(L *lua.LState, key string) lua.LValue { return f.handleField(L, checkHandle(L), key) })
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		h := checkHandle(L)
		var rs []string
		for _, r := range h.out.Replies() {
			rs = append(rs, fmt.Sprintf("%d %s", r.StatusCode, r.Reason))
		}
		L.Push(lua.LString(fmt.Sprintf("request %s %s (replies: %s)", h.msg.Method, h.msg.Recipient.String(), strings.Join(rs, ", "))))
		return 1
	}))
	return mt
}

// setIndex makes mt's __index return the method of that name, else
// field(L, key) (which checks the object in argument 1).
func setIndex(L *lua.LState, mt *lua.LTable, methods map[string]*lua.LFunction, field func(L *lua.LState, key string) lua.LValue) {
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		key := L.CheckString(2)
		if m, ok := methods[key]; ok {
			L.Push(m)
			return 1
		}
		L.Push(field(L, key))
		return 1
	}))
}

func checkHandle(L *lua.LState) *handle {
	ud := L.CheckUserData(1)
	h, ok := ud.Value.(*handle)
	if !ok {
		L.ArgError(1, "request handle expected (use res:method(), not res.method())")
	}
	return h
}

// handleField reads a field of a request handle.
func (f *fileRun) handleField(L *lua.LState, h *handle, key string) lua.LValue {
	switch key {
	case "code", "reason":
		rs := h.out.Replies()
		if len(rs) == 0 {
			return lua.LNil
		}
		if key == "code" {
			return lua.LNumber(rs[len(rs)-1].StatusCode)
		}
		return lua.LString(rs[len(rs)-1].Reason)
	case "reply":
		return f.lastReply(L, h)
	case "replies":
		t := L.NewTable()
		for _, r := range h.out.Replies() {
			t.Append(f.replyTable(L, r))
		}
		return t
	case "relayed":
		return f.relayList(L, h.out)
	case "dropped":
		return lua.LBool(h.out.Dropped())
	case "suspended":
		return lua.LBool(h.out.Suspended())
	case "delegated":
		if g, ok := h.out.Delegated(); ok {
			return lua.LString(g)
		}
		return lua.LFalse
	case "routes":
		t := L.NewTable()
		for _, r := range h.out.Routes() {
			e := L.NewTable()
			e.RawSetString("worker", lua.LString(r.Worker))
			e.RawSetString("group", lua.LString(r.Group))
			e.RawSetString("delegated", lua.LBool(r.Delegated))
			t.Append(e)
		}
		return t
	case "method":
		return lua.LString(h.msg.Method)
	case "call_id":
		if c := h.msg.CallID(); c != nil {
			return lua.LString(c.Value())
		}
	case "raw":
		return lua.LString(h.msg.String())
	}
	return lua.LNil
}

func (f *fileRun) lastReply(L *lua.LState, h *handle) lua.LValue {
	rs := h.out.Replies()
	if len(rs) == 0 {
		return lua.LNil
	}
	return f.replyTable(L, rs[len(rs)-1])
}

// replyTable turns a reply into {code, reason, body, raw, headers}, where
// headers maps each header name (any case) to its first value, with a
// header(name) method returning every value.
func (f *fileRun) replyTable(L *lua.LState, r *sip.Response) *lua.LTable {
	t := L.NewTable()
	t.RawSetString("code", lua.LNumber(r.StatusCode))
	t.RawSetString("reason", lua.LString(r.Reason))
	t.RawSetString("body", lua.LString(r.Body()))
	t.RawSetString("raw", lua.LString(r.String()))
	hs := L.NewTable()
	for _, h := range r.Headers() {
		k := strings.ToLower(h.Name())
		if hs.RawGetString(k) == lua.LNil {
			hs.RawSetString(k, lua.LString(h.Value()))
		}
	}
	L.SetMetatable(hs, f.headersMeta(L))
	t.RawSetString("headers", hs)
	L.SetMetatable(t, f.replyMeta(L))
	ud := L.NewUserData()
	ud.Value = r
	t.RawSetString("_msg", ud)
	return t
}

// headersMeta makes header lookups case-insensitive.
func (f *fileRun) headersMeta(L *lua.LState) lua.LValue {
	const name = "kemi.test.headers"
	if mt, ok := L.GetTypeMetatable(name).(*lua.LTable); ok {
		return mt
	}
	mt := L.NewTypeMetatable(name)
	L.SetField(mt, "__index", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		k := L.CheckString(2)
		L.Push(t.RawGetString(strings.ToLower(k)))
		return 1
	}))
	return mt
}

func (f *fileRun) replyMeta(L *lua.LState) lua.LValue {
	if mt, ok := L.GetTypeMetatable(replyType).(*lua.LTable); ok {
		return mt
	}
	mt := L.NewTypeMetatable(replyType)
	idx := L.NewTable()
	// reply:header(name): every value of the header, in order ({} if none).
	idx.RawSetString("header", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		name := L.CheckString(2)
		out := L.NewTable()
		if ud, ok := t.RawGetString("_msg").(*lua.LUserData); ok {
			if r, ok := ud.Value.(*sip.Response); ok {
				for _, h := range r.GetHeaders(name) {
					out.Append(lua.LString(h.Value()))
				}
			}
		}
		L.Push(out)
		return 1
	}))
	L.SetField(mt, "__index", idx)
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		t := L.CheckTable(1)
		L.Push(lua.LString(fmt.Sprintf("%s %s", t.RawGetString("code"), t.RawGetString("reason"))))
		return 1
	}))
	return mt
}
