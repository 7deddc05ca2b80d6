package rtprelay

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
)

// Call is what both modules read from the message to name a call.
type Call struct {
	Msg     sip.Message
	Reply   bool
	Status  int
	Method  string // the CSeq method
	CallID  string
	FromTag string
	ToTag   string
}

// CallOf reads e.Msg: false without a message or Call-ID, CSeq or From tag
// (what failed is in why).
func CallOf(e *ksr.Env) (c Call, why string) {
	m := e.Msg.SIP()
	if m == nil {
		return c, "invalid sip message structure"
	}
	c.Msg = m
	if r, ok := m.(*sip.Response); ok {
		c.Reply, c.Status = true, int(r.StatusCode)
	}
	if cs := m.CSeq(); cs != nil {
		c.Method = string(cs.MethodName)
	} else {
		return c, "no CSEQ header"
	}
	if id := m.CallID(); id != nil {
		c.CallID = string(*id)
	}
	if c.CallID == "" {
		return c, "can't get Call-Id field"
	}
	if f := m.From(); f != nil {
		c.FromTag, _ = f.Params.Get("tag")
	}
	if to := m.To(); to != nil {
		c.ToTag, _ = to.Params.Get("tag")
	}
	if c.FromTag == "" {
		return c, "can't get From tag"
	}
	return c, ""
}

// ViaBranch is the branch parameter of the n-th Via (1 or 2), "" when
// there is none.
func ViaBranch(m sip.Message, n int) string {
	i := 0
	for _, h := range m.GetHeaders("Via") {
		v, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		if i++; i == n {
			b, _ := v.Params.Get("branch")
			return b
		}
	}
	return ""
}

// Body is the message's body, "" without one.
func Body(m sip.Message) string { return string(m.Body()) }

// SetBody replaces the message's body (its Content-Length follows): the
// request forwarded or the reply relayed carries it.
func SetBody(m sip.Message, b string) { m.SetBody([]byte(b)) }

// TxHadSDP reports, in a reply route of a relayed request, whether the
// request the transaction sent carried a body (Kamailio's FL_SDP_BODY on
// the transaction's request, set when the manage function saw SDP in the
// INVITE); known is false where there is no transaction.
func TxHadSDP(e *ksr.Env) (had, known bool) {
	m := e.Msg
	if m == nil || m.Res == nil || m.Res.Branch == nil || m.Route != ksr.RouteOnReply {
		return false, false
	}
	r := m.Res.Branch.Request()
	if r == nil {
		return false, false
	}
	return strings.TrimSpace(string(r.Body())) != "", true
}

// Selection is the relay set set_rtpproxy_set / set_rtpengine_set chose,
// valid for one message; a module keeps one per VM in a ksr.Local slot.
type Selection struct {
	msg *ksr.Msg
	set *Set
}

// Chosen is the set chosen for e's message in slot, def when none was.
func Chosen(e *ksr.Env, slot ksr.Local, def *Set) *Set {
	s := ksr.LocalOf[Selection](e, slot)
	if s.msg == e.Msg && s.set != nil {
		return s.set
	}
	return def
}

// Choose records set as the choice for e's message in slot.
func Choose(e *ksr.Env, slot ksr.Local, set *Set) {
	s := ksr.LocalOf[Selection](e, slot)
	s.msg, s.set = e.Msg, set
}

// Managed is the call a *_manage function acts on: ok is false (logged
// with prefix, or a method the manage functions leave alone) when there
// is nothing to do, and del is true for a CANCEL or BYE (a delete).
func Managed(e *ksr.Env, log interface{ Error(string, ...any) }, prefix string) (c Call, del, ok bool) {
	c, why := CallOf(e)
	if c.Msg == nil || c.Method == "" {
		log.Error(prefix + why)
		return c, false, false
	}
	switch c.Method {
	case "INVITE", "ACK", "UPDATE", "PRACK":
		return c, false, true
	case "CANCEL", "BYE":
		return c, true, true
	}
	return c, false, false
}
