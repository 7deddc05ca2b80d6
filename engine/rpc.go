package engine

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"time"

	"kemi/jsonrpc"
	"kemi/ksr"
)

func (e *Engine) registerRPC() {
	ms := []jsonrpc.Method{
		{Name: "core.version", Doc: "Version of the engine.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			// Kamailio's shape: "kamailio 5.6.3 (x86_64/linux) 8d8c4b".
			return fmt.Sprintf("kemi %s (%s/%s) %s", FullVersion(), runtime.GOARCH, runtime.GOOS, runtime.Version()), nil
		}},
		{Name: "core.uptime", Doc: "Time since start.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			now := time.Now()
			return map[string]any{
				"now":      now.Format(time.ANSIC),
				"up_since": e.start.Format(time.ANSIC),
				"uptime":   int64(now.Sub(e.start).Seconds()),
			}, nil
		}},
		{Name: "app_lua.reload", Doc: "Reload the Lua scripts in every VM (validated first).", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			if !e.set.AppLua().Reload {
				return nil, &jsonrpc.Fault{Code: 500, Message: "Reload Failed: reload is disabled (modparam app_lua reload 0)"}
			}
			// Kamailio's app_lua_rpc_reload: an optional script index, any
			// negative one meaning all; its result is an empty object and its
			// fault 500 "Reload Failed". kemi adds the new script version to
			// the object and, after "Reload Failed: ", why (docs/conformance.md).
			if p.Len() > 0 {
				idx, ok := p.Int(0)
				if !ok || idx >= len(e.set.AppLua().Scripts) {
					return nil, &jsonrpc.Fault{Code: 500, Message: "Reload Failed: script index out of range"}
				}
			}
			v, err := e.Reload()
			if err != nil {
				return nil, &jsonrpc.Fault{Code: 500, Message: "Reload Failed: " + err.Error()}
			}
			return map[string]any{"version": v}, nil
		}},
		{Name: "app_lua.list", Doc: "Loaded scripts (Kamailio format: index 0 is the last loaded).", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			if len(e.set.AppLua().Scripts) == 0 {
				return "No scripts loaded", nil
			}
			// Kamailio prints one line per script; over jsonrpcs only the last
			// printed line survives, which is index 0.
			return fmt.Sprintf("%d: [%s]", 0, e.set.AppLua().Scripts[len(e.set.AppLua().Scripts)-1]), nil
		}},
		{Name: "app_lua.api_list", Doc: "The KSR functions, as Kamailio's app_lua lists them.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			api := e.deps.Table.API()
			methods := make([]map[string]any, 0, len(api))
			for _, a := range api {
				methods = append(methods, map[string]any{"func": a})
			}
			return map[string]any{"msize": len(methods), "methods": methods}, nil
		}},
		{Name: "kemi.status", Doc: "Script version, per-worker versions, queues and counters.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			return e.Status(), nil
		}},
		{Name: "cfg.set_now_int", Doc: "Set a core setting now: (\"core\", \"debug\", N) sets the log level.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			grp, _ := p.String(0)
			name, _ := p.String(1)
			n, ok := p.Int(2)
			if grp != "core" || name != "debug" || !ok {
				return nil, &jsonrpc.Fault{Code: 400, Message: "only core debug can be set"}
			}
			e.level.Set(ksr.LevelFromDebug(n))
			return nil, nil
		}},
	}
	ms = append(ms, e.statsRPC()...) // stats.go
	for _, m := range e.mods {
		if p, ok := m.(ksr.RPCProvider); ok {
			ms = append(ms, p.RPC()...)
		}
	}
	for _, m := range ms {
		if err := e.rpc.Register(m); err != nil {
			e.log.Error("register rpc", "method", m.Name, "error", err)
		}
	}
}

// WorkerStatus is one VM's state.
type WorkerStatus struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// Status is what kemi.status returns.
type Status struct {
	Version    int64            `json:"script_version"`
	Loaded     string           `json:"script_loaded"`
	Checksum   string           `json:"script_checksum"`
	Scripts    []string         `json:"scripts"`
	Workers    []WorkerStatus   `json:"workers"`
	Queues     map[string]int   `json:"queues"`
	Pending    int64            `json:"pending_tasks"`
	Suspended  int              `json:"suspended"`
	Counters   map[string]int64 `json:"counters"`
	Goroutines int              `json:"goroutines"`
}

// Status reports the engine's state.
func (e *Engine) Status() Status {
	g := e.cur.Load()
	st := Status{
		Version:    g.Version,
		Loaded:     g.Loaded.Format(time.RFC3339),
		Checksum:   g.Checksum,
		Scripts:    g.Paths(),
		Queues:     map[string]int{},
		Pending:    e.pending.Load(),
		Counters:   map[string]int64{},
		Goroutines: runtime.NumGoroutine(),
	}
	e.vmsMu.Lock()
	for _, w := range e.vms {
		st.Workers = append(st.Workers, WorkerStatus{Name: w.vm.Name(), Version: w.vm.Version()})
	}
	e.vmsMu.Unlock()
	sort.Slice(st.Workers, func(i, j int) bool { return st.Workers[i].Name < st.Workers[j].Name })
	for _, q := range e.Queues().Queues() {
		st.Queues[q.Name()] = q.Len()
	}
	if a := e.asyncModule(); a != nil {
		st.Suspended = a.Suspended()
	}
	if e.sip != nil {
		s := e.sip.Stats()
		st.Counters["sip_requests"] = int64(s.Requests)
		st.Counters["sip_responses"] = int64(s.Responses)
		st.Counters["sip_absorbed"] = int64(s.Absorbed)
		st.Counters["sip_replies"] = int64(s.Replies)
		st.Counters["sip_parse_errors"] = int64(s.ParseErrors)
		st.Counters["sip_bad_requests"] = int64(s.BadRequests)
		st.Counters["sip_recycled"] = int64(s.Recycled)
		st.Counters["tcp_connections"] = int64(s.TCPConnections)
		st.Counters["tcp_accept_errors"] = int64(s.TCPAcceptErrors)
		st.Counters["tcp_rejected"] = int64(s.TCPRejected)
		st.Counters["tcp_idle_closed"] = int64(s.TCPIdleClosed)
		st.Counters["tcp_read_timeouts"] = int64(s.TCPReadTimeouts)
	}
	for _, m := range e.mods {
		if r, ok := m.(ksr.Reporter); ok {
			r.Counters(st.Counters)
		}
	}
	if e.memdog != nil {
		st.Counters["lua_memory_stops"] = e.memdog.Stopped()
	}
	return st
}
