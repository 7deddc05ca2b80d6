package ksr

import (
	"strings"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"
)

// parseHeaders turns "Name: value\r\n..." into headers. The text must hold
// complete header lines, as Kamailio requires (the CRLF of the last line may
// be omitted).
func parseHeaders(txt string) ([]sip.Header, bool) {
	var hs []sip.Header
	for _, line := range strings.Split(strings.TrimRight(txt, "\r\n"), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		i := strings.IndexByte(line, ':')
		if i <= 0 {
			return nil, false
		}
		name := strings.TrimSpace(line[:i])
		if name == "" || strings.ContainsAny(name, " \t") {
			return nil, false
		}
		hs = append(hs, sip.NewHeader(name, strings.TrimSpace(line[i+1:])))
	}
	return hs, len(hs) > 0
}

// headerList is what the hdr functions edit: the request or reply's headers.
type headerList interface {
	Headers() []sip.Header
	AppendHeader(sip.Header)
	PrependHeader(...sip.Header)
	RemoveHeader(string) bool
	GetHeaders(string) []sip.Header
}

func (e *Env) headers() headerList {
	switch {
	case e.Msg == nil:
		return nil
	case e.Msg.Req != nil:
		return e.Msg.Req.Msg
	case e.Msg.Res != nil:
		return e.Msg.Res.Msg
	}
	return nil
}

// removeAll removes every header named name (case-insensitive); it returns
// how many went.
func removeAll(hl headerList, name string) int {
	n := 0
	for _, h := range hl.GetHeaders(name) {
		if hl.RemoveHeader(h.Name()) {
			n++
		}
	}
	return n
}

// rebuild replaces the header list with hs, in order.
func rebuild(hl headerList, hs []sip.Header) {
	old := append([]sip.Header(nil), hl.Headers()...)
	for _, h := range old {
		hl.RemoveHeader(h.Name())
	}
	for _, h := range hs {
		hl.AppendHeader(h)
	}
}

// insertAt inserts add before (after=false) or after (after=true) the first
// header named name; false when there is none.
func insertAt(hl headerList, add []sip.Header, name string, after bool) bool {
	cur := hl.Headers()
	for i, h := range cur {
		if !strings.EqualFold(h.Name(), name) {
			continue
		}
		if after {
			i++
		}
		out := make([]sip.Header, 0, len(cur)+len(add))
		out = append(out, cur[:i]...)
		out = append(out, add...)
		out = append(out, cur[i:]...)
		rebuild(hl, out)
		return true
	}
	return false
}

func (e *Env) hdrFuncs() map[string]lua.LGFunction {
	// edit runs f on the message headers with the parsed text; INT 1 / -1.
	edit := func(fname string, nargs int, f func(hl headerList, add []sip.Header, L *lua.LState) bool) lua.LGFunction {
		return func(L *lua.LState) int {
			if !e.arity(L, "hdr."+fname, nargs) {
				return 1
			}
			hl := e.headers()
			add, ok := parseHeaders(argStr(L, 1))
			if hl == nil || !ok {
				e.D.Log.Error("invalid header text", "function", "KSR.hdr."+fname, "text", argStr(L, 1))
				return retInt(L, -1)
			}
			if !f(hl, add, L) {
				return retInt(L, -1)
			}
			return retInt(L, 1)
		}
	}
	get := func(fname string, null lua.LValue) lua.LGFunction {
		return func(L *lua.LState) int {
			if !e.arity(L, "hdr."+fname, 1) {
				return 1
			}
			if hl := e.headers(); hl != nil {
				if hs := hl.GetHeaders(argStr(L, 1)); len(hs) > 0 {
					return retStr(L, hs[0].Value())
				}
			}
			L.Push(null)
			return 1
		}
	}
	return map[string]lua.LGFunction{
		"append": edit("append", 1, func(hl headerList, add []sip.Header, _ *lua.LState) bool {
			for _, h := range add {
				hl.AppendHeader(h)
			}
			return true
		}),
		"insert": edit("insert", 1, func(hl headerList, add []sip.Header, _ *lua.LState) bool {
			hl.PrependHeader(add...)
			return true
		}),
		"append_after": edit("append_after", 2, func(hl headerList, add []sip.Header, L *lua.LState) bool {
			return insertAt(hl, add, argStr(L, 2), true)
		}),
		"insert_before": edit("insert_before", 2, func(hl headerList, add []sip.Header, L *lua.LState) bool {
			return insertAt(hl, add, argStr(L, 2), false)
		}),
		"remove": func(L *lua.LState) int {
			if !e.arity(L, "hdr.remove", 1) {
				return 1
			}
			hl := e.headers()
			if hl == nil {
				return retInt(L, -1)
			}
			removeAll(hl, argStr(L, 1))
			return retInt(L, 1)
		},
		"is_present": func(L *lua.LState) int {
			if !e.arity(L, "hdr.is_present", 1) {
				return 1
			}
			if hl := e.headers(); hl != nil && len(hl.GetHeaders(argStr(L, 1))) > 0 {
				return retInt(L, 1)
			}
			return retInt(L, -1)
		},
		"get":  get("get", lua.LNil),
		"gete": get("gete", lua.LString("")),
		"getw": get("getw", lua.LString("<null>")),
		"get_idx": func(L *lua.LState) int {
			if !e.arity(L, "hdr.get_idx", 2) {
				return 1
			}
			hl := e.headers()
			if hl == nil {
				return retNil(L)
			}
			hs := hl.GetHeaders(argStr(L, 1))
			i := argInt(L, 2)
			if i < 0 {
				i += len(hs)
			}
			if i < 0 || i >= len(hs) {
				return retNil(L)
			}
			return retStr(L, hs[i].Value())
		},
		"rmappend": edit2(e, "rmappend", false),
		"rminsert": edit2(e, "rminsert", true),
		"append_to_reply": func(L *lua.LState) int {
			if !e.arity(L, "hdr.append_to_reply", 1) {
				return 1
			}
			add, ok := parseHeaders(argStr(L, 1))
			if !ok || e.Msg == nil {
				return retInt(L, -1)
			}
			e.Msg.ReplyHdrs = append(e.Msg.ReplyHdrs, add...)
			return retInt(L, 1)
		},
	}
}

// edit2 is rmappend/rminsert(hname, text): remove every hname header, then
// append (or insert) text.
func edit2(e *Env, fname string, insert bool) lua.LGFunction {
	return func(L *lua.LState) int {
		if !e.arity(L, "hdr."+fname, 2) {
			return 1
		}
		hl := e.headers()
		add, ok := parseHeaders(argStr(L, 2))
		if hl == nil || !ok {
			return retInt(L, -1)
		}
		removeAll(hl, argStr(L, 1))
		if insert {
			hl.PrependHeader(add...)
		} else {
			for _, h := range add {
				hl.AppendHeader(h)
			}
		}
		return retInt(L, 1)
	}
}
