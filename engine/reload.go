package engine

// Reload compiles the configured scripts again, proves them in a scratch VM
// and publishes the new generation; every VM switches before its next event.
// On any error nothing changes and the error names file:line. Lua globals do
// not survive a reload: each VM starts the new generation in a fresh Lua
// state (Kamailio re-runs the file in the old state instead); shared state
// (mqueue, $shv) is untouched.
func (e *Engine) Reload() (int64, error) {
	e.reloadMu.Lock()
	defer e.reloadMu.Unlock()
	v := e.version.Load() + 1
	g, err := e.build(v)
	if err != nil {
		e.log.Error("reload refused, the running script stays", "error", err)
		return 0, err
	}
	e.version.Store(v)
	e.cur.Store(g)
	e.log.Info("script reloaded", "version", v, "checksum", g.Checksum)
	return v, nil
}
