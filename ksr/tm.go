package ksr

import (
	lua "github.com/yuin/gopher-lua"
)

func (e *Env) tmFuncs() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// t_newtran creates the server transaction: 1 created, -10 one
		// exists already (Kamailio's E_SCRIPT), -1 error.
		"t_newtran": func(L *lua.LState) int {
			m := e.Msg
			if m == nil || m.Req == nil || m.Faked || m.Req.Msg.IsAck() {
				return retInt(L, -1)
			}
			if m.Req.Tx() != nil {
				e.D.Log.Error("transaction already in process")
				return retInt(L, -10)
			}
			if _, err := m.Req.NewTx(); err != nil {
				e.D.Log.Error("t_newtran failed", "error", err)
				return retInt(L, -1)
			}
			return retInt(L, 1)
		},
		// t_reply replies through the transaction; without one it fails, as
		// in Kamailio ("no T-state has been established").
		"t_reply": func(L *lua.LState) int {
			if !e.arity(L, "tm.t_reply", 2) {
				return 1
			}
			if e.Msg == nil || e.Msg.Req == nil || e.Msg.Req.Tx() == nil {
				e.D.Log.Error("cannot send a t_reply to a message for which no transaction has been established")
				return retInt(L, -1)
			}
			return retInt(L, e.reply(argInt(L, 1), argStr(L, 2), false))
		},
		"t_check_trans": func(L *lua.LState) int {
			if e.Msg != nil && e.Msg.Req != nil && e.Msg.Req.Tx() != nil {
				return retInt(L, 1)
			}
			return retInt(L, -1)
		},
		"t_is_canceled": func(L *lua.LState) int {
			if e.Msg != nil && e.Msg.Req != nil {
				if tx := e.Msg.Req.Tx(); tx != nil && tx.Canceled() {
					return retInt(L, 1)
				}
			}
			return retInt(L, -1)
		},
	}
}
