package luatest

import (
	"fmt"
	"strings"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/engine"
)

const relayType = "kemi.test.relay"

// relayList is a handle's `relayed` field: the request's copies sent to
// next hops (engine.Outcome.Relays), oldest first.
func (f *fileRun) relayList(L *lua.LState, out *engine.Outcome) *lua.LTable {
	t := L.NewTable()
	for _, r := range out.Relays() {
		ud := L.NewUserData()
		ud.Value = r
		L.SetMetatable(ud, f.relayMeta(L))
		t.Append(ud)
	}
	return t
}

func checkRelay(L *lua.LState) *engine.Relay {
	ud := L.CheckUserData(1)
	r, ok := ud.Value.(*engine.Relay)
	if !ok {
		L.ArgError(1, "relayed request expected (use b:reply(...), not b.reply(...))")
	}
	return r
}

// relayMeta: a relayed request is a live view with fields (uri, dst,
// stateless, method, ruri, raw, body, headers, sent, cancelled, acked) and
// methods header(name), reply(code [, reason [, {headers=..., body=...}]])
// and timeout().
func (f *fileRun) relayMeta(L *lua.LState) lua.LValue {
	if mt, ok := L.GetTypeMetatable(relayType).(*lua.LTable); ok {
		return mt
	}
	mt := L.NewTypeMetatable(relayType)
	methods := map[string]*lua.LFunction{
		"header": L.NewFunction(func(L *lua.LState) int {
			r := checkRelay(L)
			name := L.CheckString(2)
			out := L.NewTable()
			for _, h := range r.Sent()[0].GetHeaders(name) {
				out.Append(lua.LString(h.Value()))
			}
			L.Push(out)
			return 1
		}),
		"reply": L.NewFunction(func(L *lua.LState) int {
			r := checkRelay(L)
			code := L.CheckInt(2)
			reason := L.OptString(3, "")
			if reason == "" {
				reason = defaultReason(code)
			}
			var hdrs []string
			var body string
			if opts := L.Get(4); opts != lua.LNil {
				ot, ok := opts.(*lua.LTable)
				if !ok {
					L.ArgError(4, "a table {headers = ..., body = ...} expected")
				}
				var err error
				if hdrs, err = headerList(ot.RawGetString("headers")); err != nil {
					L.ArgError(4, err.Error())
				}
				if b := ot.RawGetString("body"); b != lua.LNil {
					body = b.String()
					if !hasHeader(hdrs, "Content-Type") {
						hdrs = append(hdrs, "Content-Type: text/plain")
					}
				}
			}
			if err := r.Reply(f.ctx, code, reason, hdrs, body); err != nil {
				L.RaiseError("reply: %v", err)
			}
			return 0
		}),
		"timeout": L.NewFunction(func(L *lua.LState) int {
			r := checkRelay(L)
			ok, err := r.Expire(f.ctx)
			if err != nil {
				L.RaiseError("timeout: %v", err)
			}
			L.Push(lua.LBool(ok))
			return 1
		}),
	}
	setIndex(L, mt, methods, func(L *lua.LState, key string) lua.LValue { return f.relayField(L, checkRelay(L), key) })
	L.SetField(mt, "__tostring", L.NewFunction(func(L *lua.LState) int {
		r := checkRelay(L)
		req := r.Sent()[0]
		L.Push(lua.LString(fmt.Sprintf("relayed %s %s to %s (%s)", req.Method, req.Recipient.String(), r.URI(), r.Target())))
		return 1
	}))
	return mt
}

func (f *fileRun) relayField(L *lua.LState, r *engine.Relay, key string) lua.LValue {
	sent := r.Sent()
	req := sent[0]
	switch key {
	case "uri":
		return lua.LString(r.URI())
	case "dst":
		return lua.LString(r.Target())
	case "stateless":
		return lua.LBool(r.Stateless())
	case "method":
		return lua.LString(req.Method)
	case "ruri":
		return lua.LString(req.Recipient.String())
	case "raw":
		return lua.LString(req.String())
	case "body":
		return lua.LString(req.Body())
	case "headers":
		hs := L.NewTable()
		for _, h := range req.Headers() {
			k := strings.ToLower(h.Name())
			if hs.RawGetString(k) == lua.LNil {
				hs.RawSetString(k, lua.LString(h.Value()))
			}
		}
		L.SetMetatable(hs, f.headersMeta(L))
		return hs
	case "sent":
		t := L.NewTable()
		for _, m := range sent {
			t.Append(lua.LString(m.Method))
		}
		return t
	case "cancelled", "acked":
		want := sip.CANCEL
		if key == "acked" {
			want = sip.ACK
		}
		for _, m := range sent[1:] {
			if m.Method == want {
				return lua.LTrue
			}
		}
		return lua.LFalse
	}
	return lua.LNil
}

// defaultReason is the reason phrase for a reply a test sends without one.
func defaultReason(code int) string {
	switch code {
	case 100:
		return "Trying"
	case 180:
		return "Ringing"
	case 183:
		return "Session Progress"
	case 200:
		return "OK"
	case 202:
		return "Accepted"
	case 302:
		return "Moved Temporarily"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 487:
		return "Request Terminated"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 603:
		return "Decline"
	}
	return "Reply"
}
