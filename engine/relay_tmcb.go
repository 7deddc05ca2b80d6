package engine

import (
	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/sipnet"
)

// The relay's side of ksr.TMCallback (acc's accounting): the events are
// built here so that relay.go only calls tmEvent and tmSucceeded.

// tmEvent tells the registered callbacks of typ for rep, the cell's best
// or winning reply, with flags as the transaction's message flags; own is
// true when the worker holds the cell (the callbacks then see the
// request's AVPs). It returns the flags the callbacks ask to clear.
func (w *worker) tmEvent(c *cell, typ ksr.TMEventType, rep finalReply, flags uint32, own bool) uint32 {
	d := w.e.deps
	if len(d.TMCallbacks) == 0 || flags&d.TMFlags == 0 {
		return 0
	}
	r := c.msg.Req
	m := &ksr.Msg{Req: r, Route: ksr.RouteFailure, Flags: flags, Time: w.e.clock.Now()}
	if rep.branch != nil && rep.branch.Request() != nil {
		m.Req = &sipnet.Request{Msg: rep.branch.Request(), Listener: r.Listener, Src: r.Src}
	}
	if own {
		m.AVPs, m.XAVPs = c.msg.AVPs, c.msg.XAVPs
	}
	ev := &ksr.TMEvent{Type: typ, Req: m, Code: rep.code, Reason: rep.reason, Res: rep.res, ToTag: c.tx.ToTag()}
	d.RunTM(w.env, ev)
	return ev.ResetFlags
}

// tmSucceeded is ksr.TMResponseOut for a branch's 2xx relayed upstream.
func (w *worker) tmSucceeded(c *cell, b *sipnet.Branch, res *sip.Response) {
	if len(w.e.deps.TMCallbacks) == 0 {
		return
	}
	c.mu.Lock()
	flags, own := c.flags, !c.busy
	c.mu.Unlock()
	w.tmEvent(c, ksr.TMResponseOut, finalReply{code: int(res.StatusCode), reason: res.Reason, res: res, branch: b}, flags, own)
}
