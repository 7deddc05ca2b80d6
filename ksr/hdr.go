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

// compactNames are the compact header forms Kamailio's parser knows
// (parser/parse_hname2.c), by letter.
var compactNames = [26]string{
	'a' - 'a': "Accept-Contact", 'b' - 'a': "Referred-By", 'c' - 'a': "Content-Type",
	'd' - 'a': "Request-Disposition", 'e' - 'a': "Content-Encoding", 'f' - 'a': "From",
	'i' - 'a': "Call-ID", 'j' - 'a': "Reject-Contact", 'k' - 'a': "Supported",
	'l' - 'a': "Content-Length", 'm' - 'a': "Contact", 'o' - 'a': "Event", 'r' - 'a': "Refer-To",
	's' - 'a': "Subject", 't' - 'a': "To", 'u' - 'a': "Allow-Events", 'v' - 'a': "Via",
	'x' - 'a': "Session-Expires", 'y' - 'a': "Identity",
}

// hdrAliases gives the full and the compact form of a header name, as
// Kamailio matches a header by its type: "f" and "From" are the same
// header. compact is "" for a name without a compact form.
func hdrAliases(name string) (full, compact string) {
	if len(name) == 1 {
		c := name[0] | 0x20
		if c >= 'a' && c <= 'z' && compactNames[c-'a'] != "" {
			return compactNames[c-'a'], name
		}
		return name, ""
	}
	for i, n := range compactNames {
		if n != "" && len(n) == len(name) && strings.EqualFold(n, name) {
			return name, string(rune('a' + i))
		}
	}
	return name, ""
}

// hdrIs reports whether h is the header name (full or compact form).
func hdrIs(h sip.Header, full, compact string) bool {
	n := h.Name()
	return strings.EqualFold(n, full) || (compact != "" && strings.EqualFold(n, compact))
}

// findHeaders returns the headers named name or its compact alias, in order.
func findHeaders(hs []sip.Header, name string) []sip.Header {
	full, compact := hdrAliases(name)
	var out []sip.Header
	for _, h := range hs {
		if hdrIs(h, full, compact) {
			out = append(out, h)
		}
	}
	return out
}

// firstHeader returns the first header named name or its compact alias.
func firstHeader(hs []sip.Header, name string) sip.Header {
	full, compact := hdrAliases(name)
	for _, h := range hs {
		if hdrIs(h, full, compact) {
			return h
		}
	}
	return nil
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
	for _, h := range findHeaders(hl.Headers(), name) {
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
// header named name. Without such a header it adds them after the last
// header or before the first one, as Kamailio's sr_kemi_hdr_append_after
// and sr_kemi_hdr_insert_before do.
func insertAt(hl headerList, add []sip.Header, name string, after bool) bool {
	cur := hl.Headers()
	full, compact := hdrAliases(name)
	for i, h := range cur {
		if !hdrIs(h, full, compact) {
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
	if after {
		return appendAll(hl, add)
	}
	return prependAll(hl, add)
}

// hdrExports is KSR.hdr: Kamailio's core header functions (kemi.c,
// _sr_kemi_hdr). The editing ones give INT 1 / -1.
func hdrExports() Submodule {
	txt, name := []string{"txt"}, []string{"hname"}
	return Submodule{Name: "hdr", Funcs: []Export{
		{Name: "append", Func: hdrAppend, Ret: Int, Args: txt, Doc: "Append the header lines txt to the message."},
		{Name: "insert", Func: hdrInsert, Ret: Int, Args: txt, Doc: "Insert the header lines txt on top of the message's headers."},
		{Name: "append_after", Func: hdrAppendAfter, Ret: Int, Args: []string{"txt", "hname"}, Doc: "Add txt after the first hname header (after the last header when there is none)."},
		{Name: "insert_before", Func: hdrInsertBefore, Ret: Int, Args: []string{"txt", "hname"}, Doc: "Add txt before the first hname header (before the first header when there is none)."},
		{Name: "remove", Func: hdrRemove, Ret: Int, Args: name, Doc: "Remove every hname header."},
		{Name: "rmappend", Func: hdrRmAppend, Ret: Int, Args: []string{"hname", "txt"}, Doc: "Remove every hname header, then append txt."},
		{Name: "rminsert", Func: hdrRmInsert, Ret: Int, Args: []string{"hname", "txt"}, Doc: "Remove every hname header, then insert txt."},
		{Name: "is_present", NoRetain: true, Func: hdrIsPresent, Ret: Int, Args: name, Doc: "1 if the message has an hname header, else -1."},
		{Name: "append_to_reply", Func: hdrAppendToReply, Ret: Int, Args: txt, Doc: "Add txt to the replies generated for this request."},
		{Name: "get", NoRetain: true, Func: hdrGet, Ret: Xval, Args: name, Doc: "The first hname header's value, or nil."},
		{Name: "gete", NoRetain: true, Func: hdrGetE, Ret: Xval, Args: name, Doc: "The first hname header's value, or \"\"."},
		{Name: "getw", NoRetain: true, Func: hdrGetW, Ret: Xval, Args: name, Doc: "The first hname header's value, or \"<null>\"."},
		{Name: "get_idx", Func: hdrGetIdx, Ret: Xval, Args: []string{"hname", "idx"}, Doc: "The value of hname header idx (negative: from the end), or nil."},
	}}
}

// hdrEdit runs f on the message's headers with the parsed text: 1 done,
// -1 no message, invalid text or f failed.
func (e *Env) hdrEdit(fn, txt string, f func(hl headerList, add []sip.Header) bool) int {
	hl := e.headers()
	add, ok := parseHeaders(txt)
	if hl == nil || !ok {
		e.D.Log.Error("invalid header text", "function", "KSR.hdr."+fn, "text", txt)
		return -1
	}
	if !f(hl, add) {
		return -1
	}
	return 1
}

func appendAll(hl headerList, add []sip.Header) bool {
	for _, h := range add {
		hl.AppendHeader(h)
	}
	return true
}

func prependAll(hl headerList, add []sip.Header) bool {
	hl.PrependHeader(add...)
	return true
}

func hdrAppend(e *Env, txt string) int { return e.hdrEdit("append", txt, appendAll) }
func hdrInsert(e *Env, txt string) int { return e.hdrEdit("insert", txt, prependAll) }

func hdrAppendAfter(e *Env, txt, hname string) int {
	return e.hdrEdit("append_after", txt, func(hl headerList, add []sip.Header) bool { return insertAt(hl, add, hname, true) })
}

func hdrInsertBefore(e *Env, txt, hname string) int {
	return e.hdrEdit("insert_before", txt, func(hl headerList, add []sip.Header) bool { return insertAt(hl, add, hname, false) })
}

func hdrRemove(e *Env, hname string) int {
	hl := e.headers()
	if hl == nil {
		return -1
	}
	removeAll(hl, hname)
	return 1
}

// hdrRmAppend and hdrRmInsert remove every hname header, then add txt;
// nothing is removed when txt is invalid.
func hdrRmAppend(e *Env, hname, txt string) int { return e.hdrReplace(hname, txt, appendAll) }
func hdrRmInsert(e *Env, hname, txt string) int { return e.hdrReplace(hname, txt, prependAll) }

func (e *Env) hdrReplace(hname, txt string, add func(hl headerList, add []sip.Header) bool) int {
	hl := e.headers()
	hs, ok := parseHeaders(txt)
	if hl == nil || !ok {
		return -1
	}
	removeAll(hl, hname)
	add(hl, hs)
	return 1
}

func hdrIsPresent(e *Env, hname string) int {
	if hl := e.headers(); hl != nil && firstHeader(hl.Headers(), hname) != nil {
		return 1
	}
	return -1
}

func hdrAppendToReply(e *Env, txt string) int {
	add, ok := parseHeaders(txt)
	if !ok || e.Msg == nil {
		return -1
	}
	e.Msg.ReplyHdrs = append(e.Msg.ReplyHdrs, add...)
	return 1
}

// firstHdr is the first hname header's value, or null.
func (e *Env) firstHdr(hname string, null lua.LValue) lua.LValue {
	if hl := e.headers(); hl != nil {
		if h := firstHeader(hl.Headers(), hname); h != nil {
			return lua.LString(h.Value())
		}
	}
	return null
}

func hdrGet(e *Env, hname string) lua.LValue  { return e.firstHdr(hname, lua.LNil) }
func hdrGetE(e *Env, hname string) lua.LValue { return e.firstHdr(hname, lua.LString("")) }
func hdrGetW(e *Env, hname string) lua.LValue { return e.firstHdr(hname, lua.LString("<null>")) }

func hdrGetIdx(e *Env, hname string, i int) lua.LValue {
	hl := e.headers()
	if hl == nil {
		return lua.LNil
	}
	hs := findHeaders(hl.Headers(), hname)
	if i < 0 {
		i += len(hs)
	}
	if i < 0 || i >= len(hs) {
		return lua.LNil
	}
	return lua.LString(hs[i].Value())
}

// HdrIsPresent is KSR.hdr.is_present for other modules: 1 if the message
// has an hname header (its compact form too), else -1.
func (e *Env) HdrIsPresent(hname string) int { return hdrIsPresent(e, hname) }

// HdrRemove is KSR.hdr.remove for other modules: every hname header (its
// compact form too) removed; 1, or -1 without a message.
func (e *Env) HdrRemove(hname string) int { return hdrRemove(e, hname) }

// HdrValue is the first hname header's value (its compact form too).
func (e *Env) HdrValue(hname string) (string, bool) {
	if hl := e.headers(); hl != nil {
		if h := firstHeader(hl.Headers(), hname); h != nil {
			return h.Value(), true
		}
	}
	return "", false
}

// HdrNamed reports whether h is the header hname (its compact form too).
func (e *Env) HdrNamed(h sip.Header, hname string) bool {
	full, compact := hdrAliases(hname)
	return hdrIs(h, full, compact)
}
