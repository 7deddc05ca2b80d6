package engine

import (
	"context"
	"time"

	"kemi/ksr"
	"kemi/workers"
)

// Reload compiles the configured scripts again, proves them in a scratch VM
// and publishes the new generation; every VM switches before its next event,
// never in the middle of one. The proof's top level runs within the load
// timeout (app_lua load_timeout_ms): a script that never finishes it is
// refused, stopped, and leaves the lock free for the next reload. On any error nothing changes and the error
// names file:line. Lua globals do not survive a reload: each VM starts the
// new generation in a fresh Lua state (Kamailio re-runs the file in the old
// state instead); shared state (mqueue, $shv) is untouched.
//
// Idle group workers are nudged with an empty task so they switch at once
// rather than at their next message; rtimer VMs switch at their next tick.
func (e *Engine) Reload() (int64, error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	v := e.version.Load() + 1
	ctx := e.runCtx // a stop cancels a proof still running
	if ctx == nil {
		ctx = context.Background()
	}
	g, err := e.build(ctx, v)
	if err != nil {
		e.ctl.Error("reload refused, the running script stays", "error", err)
		e.stats.Counter("kemi", "reloads_refused").Inc()
		return 0, err
	}
	e.version.Store(v)
	e.cur.Store(g)
	e.ctl.Info("script reloaded", "version", v, "checksum", g.Checksum)
	e.stats.Counter("kemi", "reloads").Inc()
	e.nudge()
	return v, nil
}

// nudge queues an empty task on every worker of every group, in the
// background: running it makes the worker switch to the new generation.
func (e *Engine) nudge() {
	if e.runCtx == nil {
		return // not started
	}
	groups := []*workers.Group[ksr.Task]{e.receivers}
	for _, g := range e.groups {
		groups = append(groups, g.g)
	}
	for _, g := range e.modGroups {
		groups = append(groups, g.g)
	}
	ctx, cancel := context.WithTimeout(e.runCtx, 5*time.Second)
	go func() {
		defer cancel()
		for _, g := range groups {
			for i := 0; i < g.Size(); i++ {
				e.pending.Add(1)
				if err := g.SubmitTo(ctx, i, nudgeTask{}); err != nil {
					e.pending.Add(-1)
				}
			}
		}
	}()
}
