package ksr

import "github.com/emiago/sipgo/sip"

// ReplyWith adds extra header fields to the current request's reply
// headers (after those of KSR.hdr.append_to_reply; they stay for any later
// local reply, as Kamailio's reply lumps do) and sends a locally generated
// reply: what a Kamailio module does with add_lump_rpl and then the sl API
// (siputils' options_reply, sanity's 420 with Unsupported). It replies
// through the request's transaction when it has one and stateless is
// false, statelessly otherwise. It returns 1 sent, -1 error (logged: no request, a faked one,
// an ACK, an invalid code or reason, or the send failed).
func (e *Env) ReplyWith(code int, reason string, extra []sip.Header, stateless bool) int {
	m := e.Msg
	if m == nil || m.Req == nil || m.Faked {
		e.D.Log.Error("no request to reply to")
		return -1
	}
	if reason == "" || code < 100 || code > 699 {
		e.D.Log.Error("invalid reply", "code", code, "reason", reason)
		return -1
	}
	if m.Req.Msg.IsAck() {
		e.D.Log.Error("cannot reply to ACK")
		return -1
	}
	m.ReplyHdrs = append(m.ReplyHdrs, extra...)
	hdrs := m.ReplyHdrs
	var err error
	switch tx := m.Req.Tx(); {
	case tx != nil && !stateless:
		err = tx.Reply(code, reason, hdrs, nil)
	case tx != nil:
		err = m.Req.ReplyStateless(code, reason, hdrs, nil)
	default:
		err = m.Req.Reply(code, reason, hdrs, nil)
	}
	if err != nil {
		e.D.Log.Error("send reply failed", "code", code, "error", err)
		return -1
	}
	return 1
}
