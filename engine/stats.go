package engine

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"kemi/jsonrpc"
	"kemi/sipnet"
	"kemi/stats"
)

// coreMethods are the methods Kamailio's core counts on their own
// (core:rcv_requests_invite ...).
var coreMethods = []string{"INVITE", "CANCEL", "ACK", "BYE", "INFO", "REGISTER", "SUBSCRIBE",
	"NOTIFY", "MESSAGE", "OPTIONS", "PRACK", "UPDATE", "REFER", "PUBLISH"}

// coreReplyStats are the received-reply statistics of Kamailio's core.
var coreReplyStats = []string{"1xx", "18x", "2xx", "3xx", "4xx", "401", "404", "407", "480", "486", "5xx", "6xx"}

// slStats are sl's reply statistics (sl_stats.c), in sl.stats order.
var slStats = []string{"200", "202", "2xx", "300", "301", "302", "3xx", "400", "401", "403", "404",
	"407", "408", "483", "4xx", "500", "5xx", "6xx", "xxx"}

// classNames are the reply classes by code/100.
var classNames = [...]string{1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx", 6: "6xx"}

// fwdStats are the core's counters of stateless forwarding (Kamailio's
// forward_request and forward_reply), resolved once.
type fwdStats struct{ fwdRequests, fwdReplies, dropRequests, dropReplies *stats.Stat }

// initStats makes the statistics registry with Kamailio's names: what
// sipnet counts is read from it, what kemi counts itself starts at zero.
func (e *Engine) initStats() {
	r := stats.New()
	e.stats = r
	e.fams = stats.NewFamilies()
	e.deps.Stats = r
	sip := func(f func(sipnet.Stats) uint64) func() int64 {
		return func() int64 {
			if e.sip == nil {
				return 0
			}
			return int64(f(e.sip.Stats()))
		}
	}
	r.Func("core", "rcv_requests", false, sip(func(s sipnet.Stats) uint64 { return s.Requests }))
	r.Func("core", "rcv_replies", false, sip(func(s sipnet.Stats) uint64 { return s.Responses }))
	r.Func("core", "bad_msg_hdr", false, sip(func(s sipnet.Stats) uint64 { return s.ParseErrors }))
	r.Func("core", "err_requests", false, sip(func(s sipnet.Stats) uint64 { return s.BadRequests }))
	r.Func("tcp", "current_opened_connections", true, sip(func(s sipnet.Stats) uint64 { return s.TCPConnections }))
	r.Func("tcp", "con_timeout", false, sip(func(s sipnet.Stats) uint64 { return s.TCPIdleClosed }))
	e.fwd = fwdStats{fwdRequests: r.Counter("core", "fwd_requests"), fwdReplies: r.Counter("core", "fwd_replies"),
		dropRequests: r.Counter("core", "drop_requests"), dropReplies: r.Counter("core", "drop_replies")}
	// The counters the per-message paths increment are resolved here, once:
	// counting a message takes no lock and builds no name.
	e.reqStats = map[string]*stats.Stat{}
	for _, m := range coreMethods {
		e.reqStats[m] = r.Counter("core", "rcv_requests_"+strings.ToLower(m))
	}
	e.resStats = map[string]*stats.Stat{}
	for _, c := range coreReplyStats {
		e.resStats[c] = r.Counter("core", "rcv_replies_"+c)
	}
	r.Counter("sl", "sent_replies")
	for _, c := range slStats {
		r.Counter("sl", c+"_replies")
	}
	e.deps.ResolveReplyStats()
	e.initTMXStats(r)
	r.Func("shmem", "used_size", true, func() int64 { return int64(memStats().HeapAlloc) })
	r.Func("shmem", "real_used_size", true, func() int64 { return int64(memStats().HeapInuse) })
	r.Func("shmem", "total_size", true, func() int64 { return int64(memStats().Sys) })
	r.Func("shmem", "free_size", true, func() int64 { m := memStats(); return int64(m.Sys - m.HeapInuse) })
	r.Counter("kemi", "reloads")
	r.Counter("kemi", "reloads_refused")
	r.Func("kemi", "goroutines", true, func() int64 { return int64(runtime.NumGoroutine()) })
	r.Func("kemi", "pending_tasks", true, func() int64 { return e.pending.Load() })
}

// initTMXStats registers tmx's statistics (tmx_mod.c mod_stats), read
// from sipnet's transaction counters as tmx reads tm's; like Kamailio's
// STAT_IS_FUNC statistics, resets leave them alone.
func (e *Engine) initTMXStats(r *stats.Registry) {
	tm := func(f func(sipnet.TMStats) uint64) func() int64 {
		return func() int64 {
			if e.sip == nil {
				return 0
			}
			return int64(f(e.sip.TMStats()))
		}
	}
	r.FuncFixed("tmx", "UAS_transactions", tm(func(s sipnet.TMStats) uint64 { return s.Transactions }))
	// tm's local transactions (t_uac: uac, dialog BYEs): kemi makes none
	r.FuncFixed("tmx", "UAC_transactions", func() int64 { return 0 })
	for c := 2; c <= 6; c++ {
		r.FuncFixed("tmx", classNames[c]+"_transactions", tm(func(s sipnet.TMStats) uint64 { return s.Completed[c] }))
	}
	r.Func("tmx", "inuse_transactions", true, tm(func(s sipnet.TMStats) uint64 { return s.Transactions - s.Deleted }))
	r.Func("tmx", "active_transactions", true, tm(func(s sipnet.TMStats) uint64 { return s.Transactions - s.Waiting }))
	r.FuncFixed("tmx", "rpl_received", tm(func(s sipnet.TMStats) uint64 { return s.RplReceived }))
	r.FuncFixed("tmx", "rpl_absorbed", tm(func(s sipnet.TMStats) uint64 { return s.RplReceived - (s.RplSent - s.RplGenerated) }))
	r.FuncFixed("tmx", "rpl_generated", tm(func(s sipnet.TMStats) uint64 { return s.RplGenerated }))
	r.FuncFixed("tmx", "rpl_relayed", tm(func(s sipnet.TMStats) uint64 { return s.RplSent - s.RplGenerated }))
	r.FuncFixed("tmx", "rpl_sent", tm(func(s sipnet.TMStats) uint64 { return s.RplSent }))
}

func memStats() *runtime.MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return &m
}

// Stats returns the statistics registry.
func (e *Engine) Stats() *stats.Registry { return e.stats }

// countRequest counts a received request by method (core:rcv_requests_invite ...).
func (e *Engine) countRequest(r *sipnet.Request) {
	if r == nil || r.Msg == nil {
		return
	}
	if c := e.reqStats[string(r.Msg.Method)]; c != nil {
		c.Inc()
	}
}

// countResponse counts a received reply by class and code.
func (e *Engine) countResponse(r *sipnet.Response) {
	if r == nil || r.Msg == nil {
		return
	}
	code := int(r.Msg.StatusCode)
	if code < 100 || code > 699 {
		return
	}
	if c := e.resStats[classNames[code/100]]; c != nil {
		c.Inc()
	}
	switch {
	case code >= 180 && code < 190:
		e.resStats["18x"].Inc()
	case code == 401 || code == 404 || code == 407 || code == 480 || code == 486:
		e.resStats[strconv.Itoa(code)].Inc() // rare codes: the name is built
	}
}

// statsRPC are Kamailio's statistics and process commands (kex, sl, tm).
func (e *Engine) statsRPC() []jsonrpc.Method {
	selected := func(p jsonrpc.Params) ([]*stats.Stat, error) {
		if p.Len() == 0 {
			return nil, &jsonrpc.Fault{Code: 400, Message: "Please provide which stats to retrieve"}
		}
		var out []*stats.Stat
		for i := range p.Len() {
			sel, ok := p.String(i)
			if !ok {
				return nil, &jsonrpc.Fault{Code: 400, Message: "Please provide which stats to retrieve"}
			}
			out = append(out, e.stats.Select(sel)...)
		}
		return out, nil
	}
	fetch := func(ss []*stats.Stat, numeric bool) map[string]any {
		m := make(map[string]any, len(ss))
		for _, s := range ss {
			if numeric {
				m[s.Group+"."+s.Name] = s.Value()
			} else {
				m[s.Group+"."+s.Name] = fmt.Sprint(s.Value())
			}
		}
		return m
	}
	return []jsonrpc.Method{
		{Name: "stats.get_statistics", Doc: "Statistics as \"group:name = value\" lines: all, group: or name.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			ss, err := selected(p)
			if err != nil {
				return nil, err
			}
			lines := make([]string, 0, len(ss))
			for _, s := range ss {
				lines = append(lines, s.String())
			}
			if len(lines) == 1 {
				return lines[0], nil
			}
			return lines, nil
		}},
		{Name: "stats.fetch", Doc: "Statistics as a struct of \"group.name\": \"value\".", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			ss, err := selected(p)
			if err != nil {
				return nil, err
			}
			return fetch(ss, false), nil
		}},
		{Name: "stats.fetchn", Doc: "Statistics as a struct of \"group.name\": number.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			ss, err := selected(p)
			if err != nil {
				return nil, err
			}
			return fetch(ss, true), nil
		}},
		{Name: "stats.reset_statistics", Doc: "Reset statistics to zero: all, group: or name.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			if _, err := selected(p); err != nil {
				return nil, err
			}
			for i := range p.Len() {
				sel, _ := p.String(i)
				e.stats.Reset(sel)
			}
			return nil, nil
		}},
		{Name: "stats.clear_statistics", Doc: "Return statistics, then reset them.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			ss, err := selected(p)
			if err != nil {
				return nil, err
			}
			out := fetch(ss, false)
			for i := range p.Len() {
				sel, _ := p.String(i)
				e.stats.Reset(sel)
			}
			return out, nil
		}},
		{Name: "sl.stats", Doc: "Stateless replies sent, by code (Kamailio's sl.stats).", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			m := make(map[string]int64, len(slStats))
			for _, c := range slStats {
				m[c], _ = e.stats.Value("sl", c+"_replies")
			}
			return m, nil
		}},
		{Name: "tm.stats", Doc: "tm's transaction statistics (Kamailio's tm.stats).", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			var st sipnet.TMStats
			if e.sip != nil {
				st = e.sip.TMStats()
			}
			return map[string]uint64{
				"current": st.Transactions - st.Deleted, "waiting": st.Waiting - st.Deleted,
				"total": st.Transactions, "total_local": 0,
				"rpl_received": st.RplReceived, "rpl_generated": st.RplGenerated, "rpl_sent": st.RplSent,
				"6xx": st.Completed[6], "5xx": st.Completed[5], "4xx": st.Completed[4], "3xx": st.Completed[3], "2xx": st.Completed[2],
			}, nil
		}},
		{Name: "core.psx", Doc: "The workers, as Kamailio's processes: IDX, PID (kemi's) and DSC.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			e.vmsMu.Lock()
			var names []string
			for _, w := range e.vms {
				names = append(names, w.vm.Name())
			}
			e.vmsMu.Unlock()
			slices.Sort(names)
			out := make([]map[string]any, 0, len(names)+1)
			out = append(out, map[string]any{"IDX": 0, "PID": os.Getpid(), "DSC": "main process - attendant"})
			for i, n := range names {
				out = append(out, map[string]any{"IDX": i + 1, "PID": os.Getpid(), "DSC": "worker " + n})
			}
			return out, nil
		}},
		{Name: "core.info", Doc: "Version, compiler and build flags (Kamailio's core.info shape).", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			return map[string]any{
				"version":  "kemi " + FullVersion(),
				"id":       buildID(),
				"compiler": runtime.Version() + " " + runtime.GOARCH,
				"compiled": "",
				"flags":    "KEMI, LUA",
			}, nil
		}},
		{Name: "core.shmmem", Doc: "Go heap in Kamailio's shared-memory shape (bytes).", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			m := memStats()
			return map[string]any{
				"total": m.Sys, "free": m.Sys - m.HeapInuse, "used": m.HeapAlloc,
				"real_used": m.HeapInuse, "max_used": m.HeapSys, "fragments": 0,
			}, nil
		}},
	}
}
