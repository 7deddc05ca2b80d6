package engine

import (
	"errors"

	"kemi/ksr"
	"kemi/sipnet"
	"kemi/workers"
)

// sworker delegates messages from the pre-routing callback to async_workers
// groups (KSR.sworker.task).
type sworker struct{ e *Engine }

// delegated is a message handed to a group: processed there as freshly
// received, with xdata set first.
type delegated struct {
	req   *sipnet.Request
	res   *sipnet.Response
	xdata string
}

// Task delegates the current message to group. Unlike Kamailio, an unknown
// group or a full nonblock group returns -1 and the message stays with the
// caller (Kamailio returns 1 and loses it).
func (s *sworker) Task(env *ksr.Env, group string) int {
	e := s.e
	g := e.groups[group]
	if g == nil {
		e.log.Error("sworker: group not found", "group", group)
		return -1
	}
	d := &delegated{}
	if x := e.set.Sworker.XData; x != "" {
		d.xdata, _ = env.PVString(x)
	}
	m := env.Msg
	if m.Req != nil {
		d.req = m.Req.Handoff()
	} else {
		d.res = m.Res
	}
	spec := s.spec(group)
	e.pending.Add(1)
	var err error
	if spec != nil && spec.NonBlock {
		err = g.TrySubmit(d)
	} else {
		err = g.Submit(e.runCtx, d)
	}
	if err != nil {
		e.pending.Add(-1)
		if d.req != nil {
			m.Req.TakeBack(d.req)
		}
		if errors.Is(err, workers.ErrFull) {
			e.log.Error("sworker: group queue full (nonblock)", "group", group)
		} else {
			e.log.Error("sworker: delegation failed", "group", group, "error", err)
		}
		return -1
	}
	m.Delegated = true
	return 1
}

func (s *sworker) spec(name string) *GroupSpec {
	for i := range s.e.set.AsyncGroups {
		if s.e.set.AsyncGroups[i].Name == name {
			return &s.e.set.AsyncGroups[i]
		}
	}
	return nil
}

// delegated processes a delegated message in a group worker.
func (w *worker) delegated(d *delegated) {
	w.env.SWActive = true
	defer func() { w.env.SWActive = false }()
	if x := w.e.set.Sworker.XData; x != "" {
		w.env.SetPVString(x, d.xdata)
	}
	if d.req != nil {
		w.request(d.req, true)
		return
	}
	w.replyDelegated(d.res)
}

func (w *worker) replyDelegated(r *sipnet.Response) {
	msg := &ksr.Msg{Res: r, Route: ksr.RouteReply, Time: w.e.clock.Now()}
	if w.e.set.ReplyCB != "" {
		w.call(msg, w.e.set.ReplyCB, false)
	}
}
