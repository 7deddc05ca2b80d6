package sipnet

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

const hexdigits = "0123456789abcdef"

// newTag returns a 16 hex digit tag for To headers of local replies.
func newTag() string {
	b := tagPool.Get().(*[16]byte)
	fillTag(b)
	s := string(b[:])
	tagPool.Put(b)
	return s
}

// fillTag fills b with a random 16 hex digit tag (newTag's).
func fillTag(b *[16]byte) {
	v := rand.Uint64()
	for i := range b {
		b[i] = hexdigits[v&0xf]
		v >>= 4
	}
}

// headersNamed calls f for each header of m whose name is lower, compared as
// sipgo's GetHeaders does (ASCII case-insensitively) but without building
// a list or lower-casing names (GetHeaders allocates both for a header
// sipgo does not know, such as User-Agent).
func headersNamed(m *sip.Request, lower string, f func(i int, h sip.Header)) {
	i := 0
	for _, h := range m.Headers() {
		if asciiEqualLower(h.Name(), lower) {
			f(i, h)
			i++
		}
	}
}

// asciiEqualLower reports whether s lower-cased as sipgo's ASCIIToLower
// does (ASCII letters only) equals lower, which is lower case already.
func asciiEqualLower(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// buildResponse makes a reply to r as RFC 3261 8.2.6 says: Vias (the top
// one with received/rport filled in), From, To (with toTag added unless the
// request had one or the code is 100), Call-ID, CSeq, Record-Route for 18x
// and 2xx, then the Server header, extra headers and body.
func buildResponse(r *Request, code int, reason, toTag string, extra []sip.Header, body []byte) *sip.Response {
	req := r.Msg
	res := sip.NewResponse(code, reason)
	res.SipVersion = req.SipVersion
	if (code >= 180 && code < 190 || code >= 200 && code < 300) && req.Method != sip.REGISTER {
		for _, h := range req.GetHeaders("Record-Route") {
			res.AppendHeader(sip.HeaderClone(h))
		}
	}
	for i, h := range req.GetHeaders("Via") {
		v, ok := h.(*sip.ViaHeader)
		if !ok {
			res.AppendHeader(sip.HeaderClone(h))
			continue
		}
		if i == 0 && r.Src.IsValid() {
			v = stampedVia(v, r.Src)
		} else {
			v = v.Clone()
		}
		res.AppendHeader(v)
	}
	if h := req.From(); h != nil {
		res.AppendHeader(sip.HeaderClone(h))
	}
	if h := req.To(); h != nil {
		to := sip.HeaderClone(h).(*sip.ToHeader)
		if code != 100 && !to.Params.Has("tag") {
			if toTag == "" {
				toTag = newTag()
			}
			if to.Params == nil {
				to.Params = sip.NewParams()
			}
			to.Params.Add("tag", toTag)
		}
		res.AppendHeader(to)
	}
	if h := req.CallID(); h != nil {
		res.AppendHeader(sip.HeaderClone(h))
	}
	if h := req.CSeq(); h != nil {
		res.AppendHeader(sip.HeaderClone(h))
	}
	if code == 100 {
		for _, h := range req.GetHeaders("Timestamp") {
			res.AppendHeader(sip.HeaderClone(h))
		}
	}
	if r.srv != nil && r.srv.opts.ServerHeader != "" {
		res.AppendHeader(sip.NewHeader("Server", r.srv.opts.ServerHeader))
	}
	for _, h := range extra {
		res.AppendHeader(h)
	}
	res.SetBody(body)
	if r.Listener != nil {
		res.SetTransport(sip.NetworkToUpper(r.Proto()))
		res.SetDestination(destination(r))
	}
	return res
}

// replyBuf is what writeResponse appends a reply to: a byte slice with the
// io.StringWriter sipgo's headers write into, cheaper per call than a
// bytes.Buffer (no read offset, no grow path on the common one). Pooled in
// replyBufs with the capacity it grew to.
type replyBuf struct{ b []byte }

func (w *replyBuf) WriteString(s string) (int, error) {
	w.b = append(w.b, s...)
	return len(s), nil
}

func (w *replyBuf) WriteByte(c byte) error {
	w.b = append(w.b, c)
	return nil
}

func (w *replyBuf) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var replyBufs = sync.Pool{New: func() any { return &replyBuf{b: make([]byte, 0, 1024)} }}

// writeResponse writes to b exactly what buildResponse(r, code, reason,
// toTag, extra, body).StringWrite(b) would, without building the reply: the
// stateless UDP reply path (KSR.sl.send_reply to an OPTIONS, a 400 to a bad
// request) then allocates 5 times instead of 24 (header lists, the To tag,
// sipgo writing From and To parameters). It reports false, writing
// nothing, when extra holds a Content-Length (buildResponse replaces it in
// place): the caller builds the reply then.
func writeResponse(b *replyBuf, r *Request, code int, reason, toTag string, extra []sip.Header, body []byte) bool {
	for _, h := range extra {
		if n := h.Name(); strings.EqualFold(n, "Content-Length") || n == "l" {
			return false
		}
	}
	req := r.Msg
	b.WriteString(req.SipVersion)
	b.WriteByte(' ')
	b.b = strconv.AppendInt(b.b, int64(code), 10)
	b.WriteByte(' ')
	b.WriteString(reason)
	b.WriteString("\r\n")
	line := func(h sip.Header) {
		h.StringWrite(b)
		b.WriteString("\r\n")
	}
	if (code >= 180 && code < 190 || code >= 200 && code < 300) && req.Method != sip.REGISTER {
		headersNamed(req, "record-route", func(_ int, h sip.Header) { line(h) })
	}
	headersNamed(req, "via", func(i int, h sip.Header) {
		if v, ok := h.(*sip.ViaHeader); ok {
			var src netip.AddrPort
			if i == 0 {
				src = r.Src
			}
			writeVia(b, v, src)
			return
		}
		line(h)
	})
	if h := req.From(); h != nil {
		b.WriteString("From: ")
		writeNameAddr(b, h.DisplayName, &h.Address, h.Params)
		b.WriteString("\r\n")
	}
	if h := req.To(); h != nil {
		b.WriteString("To: ")
		writeNameAddr(b, h.DisplayName, &h.Address, h.Params)
		if code != 100 && !h.Params.Has("tag") {
			b.WriteString(";tag=") // HeaderParams.Add appends it last
			if toTag == "" {
				var t [16]byte
				fillTag(&t)
				b.Write(t[:])
			} else {
				b.WriteString(toTag)
			}
		}
		b.WriteString("\r\n")
	}
	if h := req.CallID(); h != nil {
		line(h)
	}
	if h := req.CSeq(); h != nil {
		line(h)
	}
	if code == 100 {
		headersNamed(req, "timestamp", func(_ int, h sip.Header) { line(h) })
	}
	if r.srv != nil && r.srv.opts.ServerHeader != "" {
		b.WriteString("Server: ")
		b.WriteString(r.srv.opts.ServerHeader)
		b.WriteString("\r\n")
	}
	for _, h := range extra {
		line(h)
	}
	b.WriteString("Content-Length: ")
	b.b = strconv.AppendInt(b.b, int64(len(body)), 10)
	b.WriteString("\r\n\r\n")
	b.Write(body)
	return true
}

// writeVia writes v as sipgo's ViaHeader.StringWrite does, stamped as
// stampedVia(v, src) would be when src is valid, without copying it.
func writeVia(b *replyBuf, v *sip.ViaHeader, src netip.AddrPort) {
	b.WriteString("Via: ")
	writeViaSentBy(b, v)
	// The stamping, with HeaderParams.Add's semantics: a key present is
	// set in place (its first occurrence), a new one goes last.
	var ipBuf [48]byte
	var ip, rport []byte
	if src.IsValid() {
		ip = src.Addr().AppendTo(ipBuf[:0])
		if rp, ok := v.Params.Get("rport"); ok && rp == "" {
			rport = strconv.AppendInt(ipBuf[len(ip):len(ip)], int64(src.Port()), 10)
		} else if v.Host == string(ip) {
			ip = nil // nothing to add
		}
	}
	key := func(k string) {
		b.WriteByte(';')
		b.WriteString(k)
	}
	stamp := func(k string, val []byte) { // values kemi sets: no quoting
		key(k)
		b.WriteByte('=')
		b.Write(val)
	}
	rportDone, receivedDone := rport == nil, ip == nil
	for _, kv := range v.Params {
		switch {
		case !rportDone && kv.K == "rport":
			stamp(kv.K, rport)
			rportDone = true
		case !receivedDone && kv.K == "received":
			stamp(kv.K, ip)
			receivedDone = true
		default:
			key(kv.K)
			switch {
			case kv.V == "":
			case strings.ContainsAny(kv.V, " \t"): // HeaderParams.ToStringWrite
				b.WriteString("=\"")
				b.WriteString(kv.V)
				b.WriteByte('"')
			default:
				b.WriteByte('=')
				b.WriteString(kv.V)
			}
		}
	}
	if !receivedDone {
		stamp("received", ip)
	}
	b.WriteString("\r\n")
}

// stampedVia is a copy of the request's top Via with received (and rport,
// when the client asked for it) set to src, as a reply carries it.
func stampedVia(v *sip.ViaHeader, src netip.AddrPort) *sip.ViaHeader {
	v = v.Clone()
	ip := src.Addr().String()
	if rp, ok := v.Params.Get("rport"); ok && rp == "" {
		v.Params.Add("rport", strconv.Itoa(int(src.Port())))
		v.Params.Add("received", ip)
	} else if v.Host != ip {
		v.Params.Add("received", ip)
	}
	return v
}
