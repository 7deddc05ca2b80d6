package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"kemi/luavm"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	xprom "kemi/modules/xhttp_prom"
	"kemi/stats"
)

// MetricsPath is where the xhttp_prom module serves its metrics.
const MetricsPath = "/metrics"

// metricsHandler serves the xhttp_prom module's /metrics body: the
// script metrics, the statistics and kemi's own metrics, in the
// Prometheus text format.
func (e *Engine) metricsHandler(mod *xprom.Module) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		var b strings.Builder
		if err := mod.Write(&b); err != nil {
			e.log.Error("metrics: " + err.Error())
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, b.String())
	})
}

// writeKemiMetrics writes the metrics only kemi has, after the
// statistics (xhttp_prom.Module.SetExtra).
func (e *Engine) writeKemiMetrics(b *strings.Builder) {
	stats.WriteSamples(b, e.kemiSamples())
	e.fams.WritePrometheus(b)
}

// kemiSamples are the metrics only kemi has: Go runtime, script and VMs,
// queues, and the counters kemi.status shows.
func (e *Engine) kemiSamples() []stats.Sample {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	st := e.Status()
	out := []stats.Sample{
		{Name: "go_goroutines", Type: "gauge", Help: "Number of goroutines that currently exist.", Value: float64(runtime.NumGoroutine())},
		{Name: "go_memstats_heap_alloc_bytes", Type: "gauge", Help: "Number of heap bytes allocated and still in use.", Value: float64(m.HeapAlloc)},
		{Name: "go_memstats_heap_inuse_bytes", Type: "gauge", Help: "Number of heap bytes that are in use.", Value: float64(m.HeapInuse)},
		{Name: "go_memstats_sys_bytes", Type: "gauge", Help: "Number of bytes obtained from system.", Value: float64(m.Sys)},
		{Name: "go_gc_cycles_total", Type: "counter", Help: "Completed GC cycles.", Value: float64(m.NumGC)},
		{Name: "go_gc_pause_seconds_total", Type: "counter", Help: "Total GC stop-the-world pause.", Value: float64(m.PauseTotalNs) / 1e9},
		{Name: "kemi_script_version", Type: "gauge", Help: "Generation of the published Lua scripts (reloads add one).", Value: float64(st.Version)},
		{Name: "kemi_vms", Type: "gauge", Help: "Lua VMs (one per worker).", Value: float64(len(st.Workers))},
		{Name: "kemi_pending_tasks", Type: "gauge", Help: "Tasks queued or running in the workers.", Value: float64(st.Pending)},
		{Name: "kemi_async_suspended", Type: "gauge", Help: "Requests suspended by the async module.", Value: float64(st.Suspended)},
		{Name: "kemi_uptime_seconds", Type: "gauge", Help: "Seconds since start.", Value: time.Since(e.start).Seconds()},
	}
	for q, n := range st.Queues {
		out = append(out, stats.Sample{Name: "kemi_queue_length", Type: "gauge", Help: "Items in an mqueue queue.",
			Labels: map[string]string{"queue": q}, Value: float64(n)})
	}
	if _, ok := e.set.Modules["rtimer"]; ok {
		for _, rt := range e.RtimerStats() {
			l := map[string]string{"timer": rt.Name}
			out = append(out,
				stats.Sample{Name: "kemi_rtimer_ticks_total", Type: "counter", Help: "Runs of an rtimer timer's exec list.", Labels: l, Value: float64(rt.Ticks)},
				stats.Sample{Name: "kemi_rtimer_skipped_total", Type: "counter", Help: "rtimer ticks skipped (a run overran its interval).", Labels: l, Value: float64(rt.Skipped)},
				stats.Sample{Name: "kemi_rtimer_errors_total", Type: "counter", Help: "rtimer exec calls that ended in a Lua error.", Labels: l, Value: float64(rt.Errors)})
		}
	}
	for k, v := range st.Counters {
		out = append(out, stats.Sample{Name: "kemi_" + k, Type: "gauge", Value: float64(v)})
	}
	return out
}

// serveMetrics mounts /metrics on the JSON-RPC listener and, with
// http_listen, on a listener of its own, when xhttp_prom is loaded.
func (e *Engine) serveMetrics() error {
	if _, ok := e.set.Modules["xhttp_prom"]; !ok {
		return nil
	}
	mod := e.set.module("xhttp_prom").(*xprom.Module)
	mod.SetExtra(e.writeKemiMetrics)
	set := mod.Settings()
	h := e.metricsHandler(mod)
	e.rpc.HandleHTTP(MetricsPath, h)
	if set.HTTPListen == "" || e.opts.NoNetwork {
		return nil
	}
	if _, _, err := net.SplitHostPort(set.HTTPListen); err != nil {
		return fmt.Errorf("xhttp_prom http_listen %q: %w, at %s", set.HTTPListen, err, set.ListenAt)
	}
	ms := &metricsServer{addr: set.HTTPListen, h: h}
	e.metrics = ms
	e.subsystems = append(e.subsystems, funcSystem{"metrics", ms.start, ms.stop})
	return nil
}

// metricsServer is the xhttp_prom module's own listener.
type metricsServer struct {
	addr string
	h    http.Handler

	mu  sync.Mutex
	srv *http.Server
	ln  net.Listener
	wg  sync.WaitGroup
}

func (m *metricsServer) start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, m.h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	m.mu.Lock()
	m.srv, m.ln = srv, ln
	m.mu.Unlock()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener closed under it; Stop follows
		}
	}()
	return nil
}

func (m *metricsServer) stop(ctx context.Context) error {
	m.mu.Lock()
	srv := m.srv
	m.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Shutdown(ctx)
	m.wg.Wait()
	return err
}

// MetricsAddr is the xhttp_prom module's own listener address, nil when
// it has none.
func (e *Engine) MetricsAddr() net.Addr {
	if e.metrics == nil {
		return nil
	}
	e.metrics.mu.Lock()
	defer e.metrics.mu.Unlock()
	if e.metrics.ln == nil {
		return nil
	}
	return e.metrics.ln.Addr()
}

// countCallError counts a failed Lua call by function: every error
// (kemi_lua_errors_total) and the calls stopped by the time budget
// (kemi_lua_budget_kills_total). A missing optional function is no error.
func (e *Engine) countCallError(fn string, err error) {
	if errors.Is(err, luavm.ErrNoFunction) {
		return
	}
	e.fams.Counter("kemi_lua_errors_total", "Lua callback calls that failed, by function.", "function", fn).Add(1)
	var le *luavm.Error
	if errors.As(err, &le) && le.Kind == luavm.KindBudget {
		e.fams.Counter("kemi_lua_budget_kills_total", "Lua callback calls stopped by max_exec_ms, by function.", "function", fn).Add(1)
	}
}
