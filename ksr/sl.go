package ksr

import (
	lua "github.com/yuin/gopher-lua"
)

// reply sends a locally generated reply to the current request: statefully
// when it has a transaction (or always, when stateless is false and one
// exists), statelessly otherwise. It returns Kamailio's code: 1 ok, -1 error.
func (e *Env) reply(code int, reason string, stateless bool) int {
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
		err = tx.Reply(code, reason, m.ReplyHdrs, nil)
	} else {
		if m.Req.Tx() != nil {
			// sl_send_reply on a request with a transaction still answers
			// statelessly, as Kamailio's sl does.
			err = m.Req.ReplyStateless(code, reason, m.ReplyHdrs, nil)
		} else {
			err = m.Req.Reply(code, reason, m.ReplyHdrs, nil)
		}
	}
	if err != nil {
		e.D.Log.Error("send reply failed", "code", code, "error", err)
		return -1
	}
	return 1
}

func (e *Env) slFuncs() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		"send_reply": func(L *lua.LState) int {
			if !e.arity(L, "sl.send_reply", 2) {
				return 1
			}
			return retInt(L, e.reply(argInt(L, 1), argStr(L, 2), false))
		},
		"sl_send_reply": func(L *lua.LState) int {
			if !e.arity(L, "sl.sl_send_reply", 2) {
				return 1
			}
			return retInt(L, e.reply(argInt(L, 1), argStr(L, 2), true))
		},
		"sl_reply_error": func(L *lua.LState) int {
			return retInt(L, e.reply(500, "Server Internal Error", true))
		},
	}
}
