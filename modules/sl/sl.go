// Package sl is Kamailio's sl module in kemi: stateless replies, KSR.sl.
// The reply itself is ksr.Env.Reply, shared with tm.
//
// Concurrency: the module has no settings and no runtime; its exports act
// only on the calling VM's Env, so they need no locking.
package sl

import "kemi/ksr"

// Module is the sl module.
type Module struct{}

// New returns the sl module.
func New() *Module { return &Module{} }

// Info describes the module. Every sl modparam of Kamailio 5.6.3
// (sl.c, params[]) is accepted and ignored: kemi's replies use the code
// and reason they are given (default_code, default_reason), sl_send_reply
// never binds to tm (bind_tm), redirects are not enriched
// (rich_redirect) and sl has no event routes (event_callback_*).
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "sl",
		Doc:  "stateless replies",
		Ignored: []string{"default_code", "default_reason", "bind_tm", "rich_redirect",
			"event_callback_fl_ack", "event_callback_lres_sent"},
		Exports: []ksr.Submodule{{Name: "sl", Funcs: []ksr.Export{
			{Name: "send_reply", NoRetain: true, Func: sendReply, Ret: ksr.Int, Args: []string{"code", "reason"},
				Doc: "Reply through the transaction if the request has one, else statelessly: 1 sent, -1 error."},
			{Name: "sl_send_reply", NoRetain: true, Func: slSendReply, Ret: ksr.Int, Args: []string{"code", "reason"},
				Doc: "Reply statelessly, even when the request has a transaction: 1 sent, -1 error."},
			{Name: "sl_reply_error", NoRetain: true, Func: slReplyError, Ret: ksr.Int,
				Doc: "Reply 500 with Kamailio's reason for an unspecified error statelessly: 1 sent, -1 error."},
		}}},
	}
}

func sendReply(e *ksr.Env, code int, reason string) int   { return e.Reply(code, reason, false) }
func slSendReply(e *ksr.Env, code int, reason string) int { return e.Reply(code, reason, true) }

// unspecReason is sl_reply_error's reason when no internal error was
// recorded: err2reason_phrase (core/error.c) for E_UNSPEC (-1), with sl's
// " (<-error>/SL)" suffix (sl.c w_sl_reply_error).
const unspecReason = "I'm terribly sorry, server error occurred (1/SL)"

// slReplyError is KSR.sl.sl_reply_error. Kamailio answers with the code
// and reason of the last internal error (prev_ser_error); kemi records
// none, so it is always Kamailio's 500 for an unspecified error.
func slReplyError(e *ksr.Env) int { return e.Reply(500, unspecReason, true) }
