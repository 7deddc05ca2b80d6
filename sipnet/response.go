package sipnet

import (
	"math/rand/v2"
	"strconv"

	"github.com/emiago/sipgo/sip"
)

const hexdigits = "0123456789abcdef"

// newTag returns a 16 hex digit tag for To headers of local replies.
func newTag() string {
	b := tagPool.Get().(*[16]byte)
	v := rand.Uint64()
	for i := range b {
		b[i] = hexdigits[v&0xf]
		v >>= 4
	}
	s := string(b[:])
	tagPool.Put(b)
	return s
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
		v = v.Clone()
		if i == 0 && r.Src.IsValid() {
			ip := r.Src.Addr().String()
			if rp, ok := v.Params.Get("rport"); ok && rp == "" {
				v.Params.Add("rport", strconv.Itoa(int(r.Src.Port())))
				v.Params.Add("received", ip)
			} else if v.Host != ip {
				v.Params.Add("received", ip)
			}
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
