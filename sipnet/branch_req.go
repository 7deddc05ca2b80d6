package sipnet

import "github.com/emiago/sipgo/sip"

// Request returns the request as the branch sent it (its Via on top). It
// is not modified once the branch started: callers may read it from any
// goroutine, and must not change it (tmx's $T_req clones it).
func (b *Branch) Request() *sip.Request { return b.req }

// RelayCopy is the copy of in a proxy forwards (a branch of t_relay, a
// stateless forward): the R-URI, the headers in order, the body. Unlike
// sipgo's Request.Clone, which deep-copies every header, the copy has its
// own header list but shares the header values that nothing changes in
// place: only the top Via (which StampVia stamps and force_rport extends),
// From and To when fromTo is set (ksr.Msg.ApplyEdits rewrites them) and rr
// (rr's own Record-Route, which add_rr_param extends) are cloned.
// Whoever changes another header of a request replaces it
// (ReplaceHeader, or a new element in the header list) rather than writing
// into it, so that the copy, kept by its branch for retransmissions and
// CANCEL/ACK, stays as it was sent.
//
// The copy's Content-Length, transport, source and Laddr are set as Clone
// sets them; its destination is copied only when one was set explicitly
// (kemi sends to a resolved Target and never reads it).
func RelayCopy(in *sip.Request, fromTo bool, rr *sip.RecordRouteHeader) *sip.Request {
	out := sip.NewRequest(in.Method, in.Recipient) // clones the URI's parameters
	out.SipVersion = in.SipVersion
	via := false
	for _, h := range in.Headers() {
		switch x := h.(type) {
		case *sip.ViaHeader:
			if !via {
				via = true
				h = cloneVia(x)
			}
		case *sip.FromHeader, *sip.ToHeader:
			if fromTo {
				h = sip.HeaderClone(h)
			}
		case *sip.RecordRouteHeader:
			if rr != nil && x == rr {
				h = x.Clone()
			}
		}
		out.AppendHeader(h)
	}
	out.SetBody(in.Body()) // the bytes are shared: bodies are replaced, not edited
	out.SetTransport(in.Transport())
	out.SetSource(in.Source())
	if d := in.MessageData.Destination(); d != "" {
		out.SetDestination(d)
	}
	out.Laddr = in.Laddr
	return out
}

// stampableVia is a copy of a Via with room for the received and rport
// StampVia may add, in one allocation.
type stampableVia struct {
	sip.ViaHeader
	params [4]sip.HeaderKV
}

// cloneVia is v.Clone() in one allocation when its parameters and two more
// fit in the copy's own storage.
func cloneVia(v *sip.ViaHeader) *sip.ViaHeader {
	if len(v.Params)+2 > 4 {
		return v.Clone()
	}
	c := &stampableVia{ViaHeader: sip.ViaHeader{ProtocolName: v.ProtocolName, ProtocolVersion: v.ProtocolVersion,
		Transport: v.Transport, Host: v.Host}}
	if v.Port > 0 {
		c.Port = v.Port
	}
	if v.Params != nil {
		c.Params = append(c.params[:0], v.Params...)
	}
	return &c.ViaHeader
}
