package ksr

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/luavm"
)

// Relay is stateful and stateless forwarding as the bindings see it
// (implemented by engine, relay.go).
type Relay interface {
	// Relay forwards e.Msg's request statefully (t_relay): to dst when not
	// "", else to $du, else to the R-URI. In a failure route it adds a
	// branch to the transaction. branch runs the t_on_branch function on a
	// new branch and reports whether to keep it. It returns Kamailio's code:
	// 1 relayed, 0 nothing relayed but handled (483 sent), -1 error.
	Relay(e *Env, dst string, branch func(*Msg) bool) int
	// Forward forwards e.Msg's request statelessly (KSR.forward): 1 ok,
	// 0 handled (483 sent), -1 error.
	Forward(e *Env, dst string) int
}

// TMReply is the reply a failure route runs for: the best final reply of
// the transaction's branches, received or local (408 on fr_timer, 487 for a
// branch cancelled before any reply).
type TMReply struct {
	Code    int
	Reason  string
	Res     *sip.Response // nil for a local reply
	Timeout bool          // the branch ended by fr_timer / fr_inv_timer
	Replied bool          // the branch received a reply (provisional or final)
}

func (e *Env) tmFuncs() map[string]lua.LGFunction {
	arm := func(name string, set func(m *Msg, fn string)) lua.LGFunction {
		return func(L *lua.LState) int {
			if !e.arity(L, "tm."+name, 1) {
				return 1
			}
			if e.Msg == nil || e.Msg.Req == nil || e.Msg.Faked {
				e.D.Log.Error("tm." + name + ": no request to arm a route for")
				return retInt(L, -1)
			}
			set(e.Msg, argStr(L, 1))
			return retInt(L, 1)
		}
	}
	relay := func(L *lua.LState, dst string) int {
		if e.D.Relay == nil {
			e.D.Log.Error("t_relay: no SIP network to relay on")
			return retInt(L, -1)
		}
		return retInt(L, e.D.Relay.Relay(e, dst, e.branchRoute(L)))
	}
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
			return retInt(L, e.Reply(argInt(L, 1), argStr(L, 2), false))
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
		// t_relay forwards statefully to $du or the R-URI; an ACK is
		// forwarded statelessly (it has no transaction), as tm does.
		"t_relay": func(L *lua.LState) int { return relay(L, "") },
		// t_relay_to_proto_addr(proto, host, port) forwards statefully to
		// the given address instead of $du / R-URI.
		"t_relay_to_proto_addr": func(L *lua.LState) int {
			if !e.arity(L, "tm.t_relay_to_proto_addr", 3) {
				return 1
			}
			proto, host, port := strings.ToLower(argStr(L, 1)), argStr(L, 2), argInt(L, 3)
			if host == "" || port <= 0 || port > 65535 || (proto != "udp" && proto != "tcp") {
				e.D.Log.Error("t_relay_to_proto_addr: invalid destination", "proto", proto, "host", host, "port", port)
				return retInt(L, -1)
			}
			if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
				host = "[" + host + "]"
			}
			return relay(L, "sip:"+host+":"+strconv.Itoa(port)+";transport="+proto)
		},
		// t_on_failure, t_on_reply and t_on_branch arm a Lua function (called
		// with no arguments, as app_lua does) for the transaction the next
		// t_relay creates or extends. A failure route is one-shot: arm it
		// again inside the failure route to handle the next branch's failure.
		"t_on_failure": arm("t_on_failure", func(m *Msg, fn string) { m.OnFailure = fn }),
		"t_on_reply":   arm("t_on_reply", func(m *Msg, fn string) { m.OnReply = fn }),
		"t_on_branch":  arm("t_on_branch", func(m *Msg, fn string) { m.OnBranch = fn }),
		// t_check_status(re) matches re against the status of the reply the
		// route runs for: the winning reply in a failure route, the received
		// one in a reply route, else the final reply sent. 1 match, -1 not.
		"t_check_status": func(L *lua.LState) int {
			if !e.arity(L, "tm.t_check_status", 1) {
				return 1
			}
			code := e.tmStatus()
			if code <= 0 {
				return retInt(L, -1)
			}
			re, err := regexp.Compile("^(" + argStr(L, 1) + ")$")
			if err != nil {
				e.D.Log.Error("t_check_status: invalid regular expression", "re", argStr(L, 1), "error", err)
				return retInt(L, -1)
			}
			if re.MatchString(strconv.Itoa(code)) {
				return retInt(L, 1)
			}
			return retInt(L, -1)
		},
		// t_get_status_code returns the status t_check_status looks at (0
		// when there is none yet), -1 without a transaction or reply.
		"t_get_status_code": func(L *lua.LState) int {
			code := e.tmStatus()
			return retInt(L, code)
		},
		// t_branch_timeout / t_branch_replied tell, in a failure route,
		// whether the failed branch timed out / received any reply.
		"t_branch_timeout": func(L *lua.LState) int {
			if e.Msg != nil && e.Msg.TM != nil && e.Msg.TM.Timeout {
				return retInt(L, 1)
			}
			return retInt(L, -1)
		},
		"t_branch_replied": func(L *lua.LState) int {
			if e.Msg != nil && e.Msg.TM != nil && e.Msg.TM.Replied {
				return retInt(L, 1)
			}
			return retInt(L, -1)
		},
	}
}

// tmStatus is the status t_check_status and t_get_status_code look at.
func (e *Env) tmStatus() int {
	m := e.Msg
	switch {
	case m == nil:
		return -1
	case m.TM != nil:
		return m.TM.Code
	case m.Res != nil:
		return int(m.Res.Msg.StatusCode)
	case m.Req != nil && m.Req.Tx() != nil:
		tx := m.Req.Tx()
		if f := tx.FinalStatus(); f != 0 {
			return f
		}
		return tx.LastStatus()
	}
	return -1
}

// branchRoute returns the function the relay runs for each new branch: the
// armed t_on_branch function, called nested in the running callback (route
// type branch, with bm bound), whose KSR.x.drop discards the branch. It
// returns nil when no branch route is armed.
func (e *Env) branchRoute(L *lua.LState) func(bm *Msg) bool {
	if e.Msg == nil || e.Msg.OnBranch == "" {
		return nil
	}
	fn := e.Msg.OnBranch
	return func(bm *Msg) bool {
		lf, ok := L.GetGlobal(fn).(*lua.LFunction)
		if !ok {
			e.D.Log.Error("t_on_branch: lua function not found", "function", fn)
			return true
		}
		saved := e.Msg
		e.Msg = bm
		top := L.GetTop()
		L.Push(lf)
		err := L.PCall(0, 0, nil)
		L.SetTop(top)
		e.Msg = saved
		if err != nil && !isExit(err) {
			var ae *lua.ApiError
			tb := ""
			if errors.As(err, &ae) {
				tb = ae.StackTrace
			}
			e.D.Log.Error("lua error", "function", fn, "worker", e.Name, "error", err.Error(), "traceback", tb)
		}
		return !bm.Drop
	}
}

// isExit reports whether err is KSR.x.exit's sentinel (a normal end).
func isExit(err error) bool {
	return strings.Contains(err.Error(), luavm.ExitSentinel)
}
