package ksr

import "github.com/emiago/sipgo/sip"

// TMEventType is a transaction event modules may be told of (Kamailio's
// tm callbacks, the two acc needs).
type TMEventType int

const (
	// TMOnFailure: every branch of a relayed request ended without a 2xx;
	// the callbacks run before the t_on_failure function (Kamailio's
	// TMCB_ON_FAILURE). Code and Reason are the best reply's.
	TMOnFailure TMEventType = iota
	// TMResponseOut: the transaction's final reply went upstream: a
	// branch's 2xx, the best negative reply once no branch is left, or
	// the reply the failure route sent itself (then with the flags of the
	// last relay, as Kamailio's callback reads them) (Kamailio's
	// TMCB_RESPONSE_OUT for a final reply).
	TMResponseOut
)

// TMEvent is what a TMCallback is told.
type TMEvent struct {
	Type TMEventType
	// Req is the request as relayed on the winning (2xx) or picked
	// (failure) branch: its R-URI is the branch's, its source and socket
	// the received request's, its Flags the transaction's (as at the last
	// relay, or as the failure route left them). Env.Msg is Req while the
	// callbacks run, so pseudo-variables ($rU, $fU, $si, ...) read it.
	// Its AVPs are the transaction's when the relay holds the request
	// (failure handling), else none.
	Req *Msg
	// Code and Reason are the reply's: received, or local (408 on
	// fr_timer, 487 after a CANCEL).
	Code   int
	Reason string
	// Res is the received reply, nil for a local one.
	Res *sip.Response
	// ToTag is the To tag of the transaction's local replies (tm's
	// t_get_reply_totag).
	ToTag string
	// ResetFlags, set by TMOnFailure callbacks, are message flags the
	// relay then clears on the transaction's request (acc clears its
	// missed-call flags so that a serial fork is reported once); the
	// failure route sees them cleared.
	ResetFlags uint32
}

// TMCallback is told of a transaction event, on the worker handling it
// (e is that worker's Env). It must not block.
type TMCallback func(e *Env, ev *TMEvent)

// AddTMCallback registers f for the events of relayed transactions whose
// message flags have one of flags set (acc's flags; 0: every
// transaction). Call it only while provisioning (before the first VM
// exists).
func (d *Deps) AddTMCallback(flags uint32, f TMCallback) {
	if flags == 0 {
		flags = ^uint32(0)
	}
	d.TMFlags |= flags
	d.TMCallbacks = append(d.TMCallbacks, f)
}

// RunTM runs the registered callbacks for ev with e.Msg bound to ev.Req,
// then restores e.Msg.
func (d *Deps) RunTM(e *Env, ev *TMEvent) {
	saved := e.Msg
	e.Msg = ev.Req
	for _, f := range d.TMCallbacks {
		f(e, ev)
	}
	e.Msg = saved
}
