package tm

import (
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
)

// exports is KSR.tm: the functions of Kamailio 5.6.3's tm (tm.c,
// tm_kemi_exports) that kemi has, with their parameter and return kinds.
// All return INT.
func exports() []ksr.Submodule {
	fn := []string{"fname"}
	return []ksr.Submodule{{Name: "tm", Funcs: []ksr.Export{
		{Name: "t_newtran", Func: tNewtran, Ret: ksr.Int,
			Doc: "Create the server transaction: 1 created, -10 one exists already, -1 error."},
		{Name: "t_reply", Func: tReply, Ret: ksr.Int, Args: []string{"code", "reason"},
			Doc: "Reply through the transaction: 1 sent, -1 error (no transaction)."},
		{Name: "t_check_trans", Func: tCheckTrans, Ret: ksr.Int,
			Doc: "0 if the request has a transaction (Kamailio: a retransmission), 1 in tm routes, else -1."},
		{Name: "t_is_canceled", Func: tIsCanceled, Ret: ksr.Int,
			Doc: "1 if the transaction was cancelled, else -1."},
		{Name: "t_relay", Func: ksr.Raw(tRelay), Ret: ksr.Int,
			Doc: "Relay statefully to $du or the R-URI (an ACK statelessly): 1 relayed, 0 handled, -1 error."},
		{Name: "t_relay_to_proto_addr", Func: ksr.Raw(tRelayToProtoAddr), Params: []ksr.Type{ksr.Str, ksr.Str, ksr.Int},
			Args: []string{"proto", "host", "port"}, Ret: ksr.Int,
			Doc: "Relay statefully to proto (udp, tcp, tls) host:port: 1 relayed, 0 handled, -1 error."},
		{Name: "t_on_failure", Func: tOnFailure, Ret: ksr.Int, Args: fn,
			Doc: "Run the Lua function fname when the next relay fails (once: arm it again for the next branch)."},
		{Name: "t_on_reply", Func: tOnReply, Ret: ksr.Int, Args: fn,
			Doc: "Run the Lua function fname for each reply to the next relay."},
		{Name: "t_on_branch", Func: tOnBranch, Ret: ksr.Int, Args: fn,
			Doc: "Run the Lua function fname for each branch the next relay creates."},
		{Name: "t_check_status", Func: tCheckStatus, Ret: ksr.Int, Args: []string{"sexp"},
			Doc: "1 if the reply status matches the regular expression sexp, else -1."},
		{Name: "t_get_status_code", Func: tGetStatusCode, Ret: ksr.Int,
			Doc: "The status t_check_status looks at; -1 without transaction or reply yet."},
		{Name: "t_branch_timeout", Func: tBranchTimeout, Ret: ksr.Int,
			Doc: "In a failure route: 1 if the failed branch timed out, else -1."},
		{Name: "t_branch_replied", Func: tBranchReplied, Ret: ksr.Int,
			Doc: "In a failure route: 1 if the failed branch received a reply before the final one, else -1."},
	}}}
}

// tNewtran is KSR.tm.t_newtran: 1 created, -10 one exists already
// (Kamailio's E_SCRIPT), -1 error.
func tNewtran(e *ksr.Env) int {
	m := e.Msg
	if m == nil || m.Req == nil || m.Faked || m.Req.Msg.IsAck() {
		return -1
	}
	if m.Req.Tx() != nil {
		e.D.Log.Error("transaction already in process")
		return -10
	}
	if _, err := m.Req.NewTx(); err != nil {
		e.D.Log.Error("t_newtran failed", "error", err)
		return -1
	}
	return 1
}

// tReply is KSR.tm.t_reply: without a transaction it fails, as in
// Kamailio ("no T-state has been established").
func tReply(e *ksr.Env, code int, reason string) int {
	if e.Msg == nil || e.Msg.Req == nil || e.Msg.Req.Tx() == nil {
		e.D.Log.Error("cannot send a t_reply to a message for which no transaction has been established")
		return -1
	}
	return e.Reply(code, reason, false)
}

// tCheckTrans is KSR.tm.t_check_trans (tm.c t_check_trans): 1 in the
// failure, branch and tm reply routes and for a reply of a transaction; for
// a request with a transaction 0: Kamailio takes it for a retransmission,
// resends the last reply and asks the script to exit (kemi absorbs real
// retransmissions before the script, so this is the request the
// transaction was created for); -1 without.
func tCheckTrans(e *ksr.Env) int {
	m := e.Msg
	switch {
	case m == nil:
		return -1
	case m.TM != nil || m.Route == ksr.RouteFailure || m.Route == ksr.RouteBranch || m.Route == ksr.RouteOnReply:
		return 1
	case m.Res != nil:
		if m.Res.Branch != nil {
			return 1
		}
		return -1
	case m.Req != nil && m.Req.Tx() != nil:
		if !m.Req.Msg.IsAck() {
			m.Req.Tx().Retransmit()
		}
		return 0
	}
	return -1
}

func tIsCanceled(e *ksr.Env) int {
	if e.Msg != nil && e.Msg.Req != nil {
		if tx := e.Msg.Req.Tx(); tx != nil && tx.Canceled() {
			return 1
		}
	}
	return -1
}

// tRelay is KSR.tm.t_relay. It is Raw because the armed branch route runs
// nested on the caller's Lua state.
func tRelay(e *ksr.Env, L *lua.LState) int {
	L.Push(ksr.BoxInt(relay(e, L, "")))
	return 1
}

// tRelayToProtoAddr is KSR.tm.t_relay_to_proto_addr(proto, host, port).
func tRelayToProtoAddr(e *ksr.Env, L *lua.LState) int {
	proto, host, port := strings.ToLower(ksr.ArgStr(L, 1)), ksr.ArgStr(L, 2), ksr.ArgInt(L, 3)
	if host == "" || port <= 0 || port > 65535 || (proto != "udp" && proto != "tcp" && proto != "tls") {
		e.D.Log.Error("t_relay_to_proto_addr: invalid destination", "proto", proto, "host", host, "port", port)
		L.Push(ksr.BoxInt(-1))
		return 1
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	L.Push(ksr.BoxInt(relay(e, L, "sip:"+host+":"+strconv.Itoa(port)+";transport="+proto)))
	return 1
}

// relay forwards statefully to dst ("": $du or the R-URI).
func relay(e *ksr.Env, L *lua.LState, dst string) int {
	if e.D.Relay == nil {
		e.D.Log.Error("t_relay: no SIP network to relay on")
		return -1
	}
	return e.D.Relay.Relay(e, dst, e.BranchRoute(L))
}

// arm records fname for the transaction the next t_relay creates or
// extends; the function is called with no arguments, as app_lua does.
func arm(e *ksr.Env, name, fname string, set func(m *ksr.Msg)) int {
	if e.Msg == nil || e.Msg.Req == nil || e.Msg.Faked {
		e.D.Log.Error("tm." + name + ": no request to arm a route for")
		return -1
	}
	set(e.Msg)
	return 1
}

func tOnFailure(e *ksr.Env, fname string) int {
	return arm(e, "t_on_failure", fname, func(m *ksr.Msg) { m.OnFailure = fname })
}

func tOnReply(e *ksr.Env, fname string) int {
	return arm(e, "t_on_reply", fname, func(m *ksr.Msg) { m.OnReply = fname })
}

func tOnBranch(e *ksr.Env, fname string) int {
	return arm(e, "t_on_branch", fname, func(m *ksr.Msg) { m.OnBranch = fname })
}

// tCheckStatus is KSR.tm.t_check_status(re): re matched against the status
// of the reply the route runs for: the winning reply in a failure route,
// the received one in a reply route, else the final reply sent.
//
// The match is a regexec of the status text, unanchored as in Kamailio
// (tm.c t_check_status): "20" matches 202; in the request route, before any
// reply, the status is "0".
func tCheckStatus(e *ksr.Env, sexp string) int {
	code := status(e)
	if code < 0 {
		return -1
	}
	re, err := e.Regexp(sexp)
	if err != nil {
		e.D.Log.Error("t_check_status: invalid regular expression", "re", sexp, "error", err)
		return -1
	}
	if re.MatchString(strconv.Itoa(code)) {
		return 1
	}
	return -1
}

// tGetStatusCode is KSR.tm.t_get_status_code: the status, -1 without a
// transaction or when it is 0 (tm.c ki_t_get_status_code).
func tGetStatusCode(e *ksr.Env) int {
	if c := status(e); c > 0 {
		return c
	}
	return -1
}

func tBranchTimeout(e *ksr.Env) int {
	if e.Msg != nil && e.Msg.TM != nil && e.Msg.TM.Timeout {
		return 1
	}
	return -1
}

func tBranchReplied(e *ksr.Env) int {
	if e.Msg != nil && e.Msg.TM != nil && e.Msg.TM.Replied {
		return 1
	}
	return -1
}

// status is the status t_check_status and t_get_status_code look at.
func status(e *ksr.Env) int {
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
