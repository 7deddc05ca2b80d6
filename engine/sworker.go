package engine

import (
	"errors"

	"kemi/ksr"
	"kemi/sipnet"
	"kemi/workers"
)

// sworker delegates messages from the pre-routing callback to async_workers
// groups (KSR.sworker.task), as Kamailio's sworker module does.
type sworker struct{ e *Engine }

// delegated is a message handed to a group: processed there as freshly
// received (pre-routing skipped), with xdata set first.
type delegated struct {
	req   *sipnet.Request
	res   *sipnet.Response
	xdata string
	xset  bool // the xdata parameter is set
}

// Task delegates the current message to group. The group gets the message as
// it was received (edits, flags and AVPs of the pre-routing callback do not
// travel) and the xdata value. The caller goes on unless the script drops
// the message (KSR.x.drop): Kamailio stops the receiving process only on the
// drop flag, so a task without drop routes the message in both places.
//
// Unlike Kamailio, an unknown group or a full nonblock group returns -1 and
// the message stays with the caller (Kamailio returns 1 for an unknown group
// and the message is lost).
func (s *sworker) Task(env *ksr.Env, group string) int {
	e := s.e
	tg := e.groups[group]
	if tg == nil {
		e.log.Error("sworker task: async workers group not found", "group", group)
		return -1
	}
	g := tg.g
	m := env.Msg
	d := &delegated{}
	if x := e.set.Sworker.XData; x != "" {
		d.xset = true
		d.xdata, _ = env.PVString(x)
	}
	if m.Req != nil {
		d.req = m.Req.Handoff()
	} else {
		d.res = m.Res.Handoff()
	}
	e.pending.Add(1)
	var err error
	if s.nonBlock(group) {
		err = g.TrySubmit(d)
	} else {
		ctx := e.runCtx
		if ctx == nil {
			err = workers.ErrStopped
		} else {
			err = g.Submit(ctx, d)
		}
	}
	if err != nil {
		e.pending.Add(-1)
		if d.req != nil {
			m.Req.TakeBack(d.req)
		} else {
			m.Res.TakeBack(d.res)
		}
		if errors.Is(err, workers.ErrFull) {
			e.log.Error("sworker task: group queue full (nonblock), message kept by the caller", "group", group, "inbox", g.Pending())
		} else {
			e.log.Error("sworker task: delegation failed, message kept by the caller", "group", group, "error", err)
		}
		return -1
	}
	m.Delegated = true
	return 1
}

// nonBlock reports whether group was defined with nonblock=1.
func (s *sworker) nonBlock(group string) bool {
	for i := range s.e.set.AsyncGroups {
		if g := &s.e.set.AsyncGroups[i]; g.Name == group {
			return g.NonBlock
		}
	}
	return false
}

// Run processes the delegated message on a group worker.
func (d *delegated) Run(r ksr.Runner) { r.(*worker).delegated(d) }

// delegated processes a delegated message in a group worker: xdata first
// (null when empty, as Kamailio), then the request or reply route without
// pre-routing.
func (w *worker) delegated(d *delegated) {
	w.env.SWActive = true
	defer func() { w.env.SWActive = false }()
	if d.xset {
		if !w.env.SetPVString(w.e.set.Sworker.XData, d.xdata) {
			w.logErr("sworker:xdata", "sworker: cannot set the xdata variable", "pv", w.e.set.Sworker.XData)
		}
	}
	if d.req != nil {
		w.request(d.req, true)
		return
	}
	w.reply(d.res, true)
}
