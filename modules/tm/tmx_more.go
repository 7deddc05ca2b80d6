package tm

import (
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/sipnet"
)

// This file is the rest of tmx that scripts use: KSR.tmx.t_precheck_trans
// and the route-type checks (tmx_mod.c sr_kemi_tmx_exports at 5.6.3, all
// INT), KSR.tm.t_is_set (tm.c), and the $T_branch_idx, $T_req(pv) and
// $T_rpl(pv) variables (tmx t_var.c).

// tmxExports is KSR.tmx.
func tmxExports() []ksr.Submodule {
	return []ksr.Submodule{{Name: "tmx", Funcs: []ksr.Export{
		{Name: "t_precheck_trans", Func: tPrecheckTrans, Ret: ksr.Int,
			Doc: "1 if another worker is handling the same request; kemi absorbs such retransmissions before routing, so -1 (-2 for ACK, CANCEL, outside the request route or without From tag)."},
		{Name: "t_is_request_route", Func: routeIs(ksr.RouteRequest), Ret: ksr.Int, Doc: "1 in the request route, else -1."},
		{Name: "t_is_reply_route", Func: tIsReplyRoute, Ret: ksr.Int, Doc: "1 in a reply route (core or t_on_reply), else -1."},
		{Name: "t_is_failure_route", Func: routeIs(ksr.RouteFailure), Ret: ksr.Int, Doc: "1 in a failure route, else -1."},
		{Name: "t_is_branch_route", Func: routeIs(ksr.RouteBranch), Ret: ksr.Int, Doc: "1 in a branch route, else -1."},
	}}}
}

// tmExportsMore are KSR.tm functions kept apart from ksr.go.
func tmExportsMore() []ksr.Export {
	return []ksr.Export{
		{Name: "t_is_set", Func: tIsSet, Ret: ksr.Int, Args: []string{"target"},
			Doc: "1 if the branch_route, failure_route or onreply_route (by first letter b, f, o) is armed, else -1."},
	}
}

func routeIs(rt ksr.RouteType) func(*ksr.Env) int {
	return func(e *ksr.Env) int {
		if e.Msg != nil && e.Msg.Route == rt && !(rt == ksr.RouteFailure && e.Msg.TM == nil) {
			return 1
		}
		return -1
	}
}

func tIsReplyRoute(e *ksr.Env) int {
	if e.Msg != nil && (e.Msg.Route == ksr.RouteReply || e.Msg.Route == ksr.RouteOnReply) {
		return 1
	}
	return -1
}

// tPrecheckTrans is t_precheck_trans: tmx_check_pretran's -1 cases give
// -2, no parallel handling gives -1.
func tPrecheckTrans(e *ksr.Env) int {
	m := e.Msg
	if m == nil || m.Route != ksr.RouteRequest || m.Req == nil {
		return -2
	}
	r := m.Req.Msg
	cs, from := r.CSeq(), r.From()
	if cs == nil || cs.MethodName == "ACK" || cs.MethodName == "CANCEL" || r.Via() == nil || r.CallID() == nil || from == nil {
		return -2
	}
	if tag, _ := from.Params.Get("tag"); tag == "" {
		return -2
	}
	return -1
}

// tIsSet is t_is_set: by the target's first letter.
func tIsSet(e *ksr.Env, target string) int {
	if e.Msg == nil || target == "" {
		return -1
	}
	var fn string
	switch target[0] {
	case 'b':
		fn = e.Msg.OnBranch
	case 'f':
		fn = e.Msg.OnFailure
	case 'o':
		fn = e.Msg.OnReply
	}
	if fn != "" {
		return 1
	}
	return -1
}

// relayCell is what the engine's relay cell tells tmx (engine/relay_tmx.go).
type relayCell interface {
	BranchIndex(b *sipnet.Branch) int
}

func cellOf(m *ksr.Msg) (relayCell, *sipnet.Branch) {
	if m == nil || m.Res == nil || m.Res.Branch == nil {
		return nil, nil
	}
	c, _ := m.Res.Branch.Owner().(relayCell)
	return c, m.Res.Branch
}

// branchIdx is $T_branch_idx (pv_get_tm_branch_idx): a reply's branch
// (-1 when it matched none), the branch of a branch route, the branches
// created so far in a failure route, 0 in the request route (kemi has no
// appended branches), -1 elsewhere.
func branchIdx(e *ksr.Env, _ string) lua.LValue {
	m := e.Msg
	switch {
	case m == nil:
		return lua.LNil
	case m.Res != nil:
		if c, b := cellOf(m); c != nil {
			return ksr.BoxInt(c.BranchIndex(b))
		}
		return ksr.BoxInt(-1)
	case m.Route == ksr.RouteBranch:
		return ksr.BoxInt(m.BranchIndex)
	case m.Route == ksr.RouteRequest:
		return ksr.BoxInt(0)
	case m.Route == ksr.RouteFailure:
		if m.TM == nil {
			return lua.LNil
		}
		return ksr.BoxInt(m.TM.Branches)
	}
	return ksr.BoxInt(-1)
}

// tReq is $T_req(pv): pv evaluated on the transaction's request, in reply
// routes only (null elsewhere, as pv_get_t_var_req). The request is the
// one the reply's branch sent, without kemi's Via: a copy, so that the
// reply route never reads what another worker may be changing.
func tReq(e *ksr.Env, name string) lua.LValue {
	m := e.Msg
	if m == nil || m.Res == nil || m.Res.Branch == nil || (m.Route != ksr.RouteReply && m.Route != ksr.RouteOnReply) {
		return lua.LNil
	}
	sent := m.Res.Branch.Request()
	if sent == nil {
		return lua.LNil
	}
	req := sent.Clone()
	req.RemoveHeader("Via")
	return e.PVIn(&ksr.Msg{Req: sipnet.NewFakeRequest(req), Route: ksr.RouteRequest, Time: m.Time}, name)
}

// tRpl is $T_rpl(pv): pv evaluated on the winning reply, in failure
// routes only; null for a local reply (timeout, cancel), as
// pv_t_update_rpl.
func tRpl(e *ksr.Env, name string) lua.LValue {
	m := e.Msg
	if m == nil || m.Route != ksr.RouteFailure || m.TM == nil || m.TM.Res == nil {
		return lua.LNil
	}
	return e.PVIn(&ksr.Msg{Res: &sipnet.Response{Msg: m.TM.Res}, Route: ksr.RouteOnReply, Time: m.Time}, name)
}
