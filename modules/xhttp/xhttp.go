// Package xhttp is Kamailio's xhttp module in kemi: HTTP requests on the
// tcp and tls SIP listeners run the KEMI event callback (event_callback,
// called with "xhttp:request"), which answers with KSR.xhttp.xhttp_reply
// or, with the websocket module, upgrades the connection with
// KSR.websocket.handle_handshake (docs/transports.md).
//
// The network side is sipnet's (http.go): with this module loaded, each
// connection accepted by a tcp or tls listener is looked at before sipgo
// reads it, and HTTP requests come here. The callback runs on the
// module's own worker group ("xhttp", two workers, each with its VM); the
// connection's goroutine waits for it.
//
// Concurrency: configured by one goroutine; afterwards read-only, and the
// group's workers each own their VM.
package xhttp

import (
	"context"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/ksr"
	"kemi/sipnet"
)

// Module is one configuration's xhttp.
type Module struct {
	match, skip *regexp.Regexp
	callback    string
	host        ksr.Host
	grp         ksr.Group
}

var (
	_ ksr.Provisioner  = (*Module)(nil)
	_ ksr.Starter      = (*Module)(nil)
	_ ksr.CallbackUser = (*Module)(nil)
)

// New returns an unconfigured xhttp module.
func New() *Module { return &Module{} }

// Info describes the module (Kamailio 5.6.3's xhttp_mod.c params[] and
// KEMI exports).
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "xhttp",
		Doc:  "HTTP requests on the SIP tcp/tls listeners, answered by the KEMI event callback",
		Params: []ksr.Param{
			{Name: "url_match", Set: m.setRegexp(&m.match)},
			{Name: "url_skip", Set: m.setRegexp(&m.skip)},
			{Name: "event_callback", Set: func(_ *ksr.Setup, st config.Stmt) error { m.callback = st.Value.String(); return nil }},
		},
		Exports: []ksr.Submodule{{Name: "xhttp", Funcs: []ksr.Export{
			{Name: "xhttp_reply", Func: ksr.Raw(xhttpReply), Params: []ksr.Type{ksr.Int, ksr.Str, ksr.Str, ksr.Str},
				Args: []string{"code", "reason", "ctype", "body"}, Ret: ksr.Int,
				Doc: "Answer the HTTP request: 1 sent, -1 error (not an HTTP request, or already answered)."},
			{Name: "get_hu", Func: getHU, Ret: ksr.Xval, Doc: "The HTTP request's URL ($hu)."},
		}}},
	}
}

func (m *Module) setRegexp(dst **regexp.Regexp) func(*ksr.Setup, config.Stmt) error {
	return func(_ *ksr.Setup, st config.Stmt) error {
		re, err := regexp.Compile(st.Value.String())
		if err != nil {
			return config.Errorf(st.Pos, "modparam xhttp %s: %v", st.Param, err)
		}
		*dst = re
		return nil
	}
}

// Callbacks names the event callback for `kemi check`.
func (m *Module) Callbacks() []ksr.Callback {
	if m.callback == "" {
		return nil
	}
	return []ksr.Callback{{Fn: m.callback, Why: `modparam("xhttp", "event_callback")`}}
}

// Provision makes the module's worker group.
func (m *Module) Provision(h ksr.Host) error {
	m.host = h
	if m.callback == "" {
		h.Logger().Warn(`xhttp loaded without modparam("xhttp", "event_callback"): every HTTP request is answered 404`)
	}
	g, err := h.NewGroup("xhttp", 2)
	if err != nil {
		return err
	}
	m.grp = g
	return nil
}

// Start starts the workers.
func (m *Module) Start(ctx context.Context) error { return m.grp.Start(ctx) }

// Stop stops them.
func (m *Module) Stop(ctx context.Context) error { return m.grp.Stop(ctx) }

// waitLimit guards the connection's wait for the callback (the scripts'
// own time budget normally ends it first).
const waitLimit = 30 * time.Second

// Handle runs the event callback for x (sipnet.Options.HTTP); it returns
// when the callback has.
func (m *Module) Handle(x *sipnet.HTTPExchange) {
	path := x.Req.URL.RequestURI()
	if m.callback == "" || (m.match != nil && !m.match.MatchString(path)) || (m.skip != nil && m.skip.MatchString(path)) {
		return // 404
	}
	t := &task{fn: m.callback, x: x, done: make(chan struct{})}
	if err := m.grp.Submit(t); err != nil {
		m.host.Logger().Error("xhttp: request not handled", "error", err)
		return
	}
	select {
	case <-t.done:
	case <-time.After(waitLimit):
		m.host.Logger().Error("xhttp: event callback did not finish", "callback", m.callback, "after", waitLimit)
	}
}

type task struct {
	fn   string
	x    *sipnet.HTTPExchange
	done chan struct{}
}

var argEvent lua.LValue = lua.LString("xhttp:request")

func (t *task) Run(r ksr.Runner) {
	defer close(t.done)
	msg := &ksr.Msg{Req: &sipnet.Request{Msg: asSIP(t.x), Listener: t.x.Listener, Src: t.x.Src, HTTP: t.x},
		Route: ksr.RouteEvent, Time: r.Env().D.Now()}
	if err := r.Call(msg, t.fn, argEvent); err != nil {
		r.Env().D.Log.Error("xhttp: event callback failed", "callback", t.fn, "error", err)
	}
}

// asSIP is the HTTP request as the message the script reads: $rm is the
// HTTP method, KSR.hdr.get reads its headers, $rb its body.
func asSIP(x *sipnet.HTTPExchange) *sip.Request {
	u := sip.Uri{Scheme: "http", Host: x.Listener.Addr.Addr().String(), Port: int(x.Listener.Addr.Port())}
	if h, p, err := net.SplitHostPort(x.Req.Host); err == nil {
		u.Host = h
		u.Port, _ = strconv.Atoi(p)
	} else if x.Req.Host != "" {
		u.Host, u.Port = x.Req.Host, 0
	}
	r := sip.NewRequest(sip.RequestMethod(x.Req.Method), u)
	for k, vs := range x.Req.Header {
		for _, v := range vs {
			r.AppendHeader(sip.NewHeader(k, v))
		}
	}
	if x.Req.Body != nil {
		b := make([]byte, 0, max(x.Req.ContentLength, 0))
		buf := make([]byte, 4096)
		for {
			n, err := x.Req.Body.Read(buf)
			b = append(b, buf[:n]...)
			if err != nil {
				break
			}
		}
		r.SetBody(b)
	}
	src := x.Src
	r.SetSource(netip.AddrPortFrom(src.Addr(), src.Port()).String())
	return r
}

// Exchange is the HTTP request of the running event, or nil.
func Exchange(e *ksr.Env) *sipnet.HTTPExchange {
	if e.Msg == nil || e.Msg.Req == nil {
		return nil
	}
	return e.Msg.Req.HTTP
}

func xhttpReply(e *ksr.Env, L *lua.LState) int {
	code, reason, ctype, body := ksr.ArgInt(L, 1), ksr.ArgStr(L, 2), ksr.ArgStr(L, 3), ksr.ArgStr(L, 4)
	ret := -1
	if x := Exchange(e); x == nil {
		e.D.Log.Error("xhttp_reply: not an HTTP request")
	} else if code < 100 || code > 699 {
		e.D.Log.Error("xhttp_reply: invalid code", "code", code)
	} else if err := x.Reply(code, reason, ctype, body); err != nil {
		e.D.Log.Error("xhttp_reply: " + err.Error())
	} else {
		ret = 1
	}
	L.Push(ksr.BoxInt(ret))
	return 1
}

func getHU(e *ksr.Env) lua.LValue {
	if x := Exchange(e); x != nil {
		return lua.LString(x.Req.URL.RequestURI())
	}
	return lua.LNil
}
