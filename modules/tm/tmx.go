package tm

import (
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
)

// TMX is Kamailio's tmx module: KSR.tmx's t_precheck_trans and route-type
// checks (tmx_more.go), the $T_reply_code, $T_reply_reason, $T_branch_idx,
// $T_req(pv) and $T_rpl(pv) pseudo-variables, and $T(reply_type),
// $T(reply_code) and $T(reply_reason). tmx 5.6 has no $T_reply_type
// (tmx_mod.c mod_pvs): it is $T(reply_type).
type TMX struct{}

// NewTMX returns the tmx module.
func NewTMX() *TMX { return &TMX{} }

// Info describes the module. precheck_trans, tmx's only modparam in
// Kamailio 5.6.3 (tmx_mod.c params[]), is accepted and ignored.
func (*TMX) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name:    "tmx",
		Doc:     "tm extensions: route-type checks, the $T_* and $T(reply_*) pseudo-variables",
		Ignored: []string{"precheck_trans"},
		Exports: tmxExports(),
		PVs: []ksr.PV{
			{Name: "T_branch_idx", Get: branchIdx},
			{Name: "T_req", Named: true, Literal: true, Get: tReq},
			{Name: "T_rpl", Named: true, Literal: true, Get: tRpl},
			{Name: "T_reply_code", Get: replyCode},
			{Name: "T_reply_reason", Get: replyReason},
			{Name: "T", Named: true, Get: tVar},
		},
	}
}

// The $T_reply_* variables (tmx t_var.c): in reply routes, the reply's
// status and reason; in a failure route, the winning reply's (a local one
// for a timeout or a cancel: $T(reply_type) 1); in the request route, the
// status last sent for the transaction. Without a transaction the code is
// 0, the reason empty and the type nil; the reason outside reply and
// failure routes is nil (tmx logs "unsupported route_type" there).

// hasTx reports whether the message's request has a transaction, and the
// status last sent through it.
func hasTx(m *ksr.Msg) (bool, int) {
	if m.Req != nil {
		if tx := m.Req.Tx(); tx != nil {
			return true, tx.LastStatus()
		}
	}
	return false, 0
}

func replyCode(e *ksr.Env, _ string) lua.LValue {
	m := e.Msg
	switch {
	case m == nil:
		return lua.LNil
	case m.Res != nil: // core reply route and t_on_reply functions
		return ksr.BoxInt(int(m.Res.Msg.StatusCode))
	case m.TM != nil:
		return ksr.BoxInt(m.TM.Code)
	}
	tx, last := hasTx(m)
	if tx && (m.Route == ksr.RouteRequest || m.Route == ksr.RouteBranch) {
		return ksr.BoxInt(last)
	}
	return ksr.BoxInt(0)
}

func replyReason(e *ksr.Env, _ string) lua.LValue {
	m := e.Msg
	switch {
	case m == nil:
		return lua.LNil
	case m.Res != nil:
		if m.Route == ksr.RouteReply && m.Res.Branch == nil {
			return lua.LString("") // no transaction
		}
		return lua.LString(m.Res.Msg.Reason)
	case m.TM != nil:
		return lua.LString(m.TM.Reason)
	}
	if tx, _ := hasTx(m); !tx {
		return lua.LString("")
	}
	return lua.LNil
}

// tVar is $T(name) (t_var.c pv_get_t): reply_code and reply_reason are
// aliases of $T_reply_code and $T_reply_reason; reply_type is 1 in a
// failure route whose winning reply is local, else 0, nil without a
// transaction. Other names (id_index, branch_index, ...) are not kept by
// kemi: nil.
func tVar(e *ksr.Env, name string) lua.LValue {
	switch name {
	case "reply_code":
		return replyCode(e, name)
	case "reply_reason":
		return replyReason(e, name)
	case "reply_type":
		return replyType(e, name)
	}
	return lua.LNil
}

func replyType(e *ksr.Env, _ string) lua.LValue {
	m := e.Msg
	switch {
	case m == nil:
		return lua.LNil
	case m.Res != nil:
		if m.Res.Branch == nil {
			return lua.LNil
		}
		return ksr.BoxInt(0)
	case m.TM != nil:
		if m.TM.Res == nil {
			return ksr.BoxInt(1)
		}
		return ksr.BoxInt(0)
	}
	if tx, _ := hasTx(m); !tx {
		return lua.LNil
	}
	return ksr.BoxInt(0)
}
