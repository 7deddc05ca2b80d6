package ksr

// Reply sends a locally generated reply to the current request, with the
// headers KSR.hdr.append_to_reply added: through its transaction when it
// has one and stateless is false, statelessly otherwise. It returns
// Kamailio's code: 1 sent, -1 error (logged: no request, a faked one, an
// ACK, an invalid code or reason, or the send failed). The sl and tm
// modules' reply functions use it.
func (e *Env) Reply(code int, reason string, stateless bool) int {
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
	var err error
	if tx := m.Req.Tx(); tx != nil && !stateless {
		err = tx.Reply(code, reason, m.ReplyHdrs, m.ReplyBody)
	} else {
		if m.Req.Tx() != nil {
			// sl_send_reply on a request with a transaction still answers
			// statelessly, as Kamailio's sl does.
			err = m.Req.ReplyStateless(code, reason, m.ReplyHdrs, m.ReplyBody)
		} else {
			err = m.Req.Reply(code, reason, m.ReplyHdrs, m.ReplyBody)
		}
	}
	if err != nil {
		e.D.Log.Error("send reply failed", "code", code, "error", err)
		return -1
	}
	e.D.countReply(code, m.Req.Tx() != nil && !stateless)
	return 1
}
