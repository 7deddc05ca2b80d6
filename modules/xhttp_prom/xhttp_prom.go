// Package xhttp_prom is Kamailio's xhttp_prom module in kemi: the
// statistics and the script's own metrics as Prometheus metrics on
// /metrics, named as xhttp_prom names them (xhttp_prom_beginning + group +
// "_" + name: kamailio_core_rcv_requests; xhttp_prom_beginning + name for
// the script's), with kemi's own metrics after them (Go runtime, VMs,
// queues, module counters).
//
// /metrics is served in three places: on the JSON-RPC HTTP listener
// (loopback by default), on a listener of its own when http_listen (a
// kemi parameter) is set, and, as in Kamailio, on the SIP tcp listeners
// when the cfg loads xhttp and its event callback calls
// KSR.xhttp_prom.dispatch() (KSR.xhttp_prom.check_uri() tells whether
// the URL is /metrics).
//
// Script metrics are declared by prom_counter, prom_gauge and
// prom_histogram ("name=calls;label=method:code;buckets=0.1:1") and
// changed with KSR.xhttp_prom.counter_inc_l0..l3, gauge_set_l*,
// histogram_observe_l*, counter_reset_l*, gauge_reset_l* and the
// xhttp_prom.* RPC commands; their values are shared by every worker
// (stats.ScriptMetrics: atomic values, one lookup per call, no global
// lock). Label sets untouched for xhttp_prom_timeout minutes are dropped.
//
// xhttp_prom_stats selects the statistics as stats.get_statistics does
// ("all", "core:", a name); kemi's default is "all" where Kamailio's is
// none.
//
// Concurrency: a Module is configured by one goroutine; SetExtra is
// called before traffic; afterwards its exports and Write run on any
// goroutine.
package xhttp_prom //nolint:revive // Kamailio's module name

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/jsonrpc"
	"kemi/ksr"
	"kemi/modules/xhttp"
	"kemi/stats"
)

// Settings are the module's parameters.
type Settings struct {
	Stats      string // xhttp_prom_stats
	Prefix     string // xhttp_prom_beginning
	HTTPListen string // kemi: a listener of its own, "" for none
	ListenAt   config.Pos
	// Metrics are the script metrics prom_counter, prom_gauge and
	// prom_histogram declare; xhttp_prom_timeout sets their Timeout.
	Metrics *stats.ScriptMetrics
}

// Module is one configuration's xhttp_prom.
type Module struct {
	set   Settings
	reg   *stats.Registry
	extra func(b *strings.Builder)
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
)

// New returns the module with its defaults.
func New() *Module {
	return &Module{set: Settings{Stats: "all", Prefix: "kamailio_", Metrics: stats.NewScriptMetrics()}}
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// ContentType is xhttp_prom's reply content type.
const ContentType = "text/plain; version=0.0.4"

// Info describes the module (Kamailio 5.6.3's xhttp_prom.c params[] and
// KEMI exports).
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "xhttp_prom",
		Doc:  "statistics and script metrics as Prometheus metrics on /metrics (xhttp_prom's names, plus kemi's own)",
		Params: []ksr.Param{
			{Name: "xhttp_prom_stats", Set: func(_ *ksr.Setup, st config.Stmt) error { m.set.Stats = st.Value.String(); return nil }},
			{Name: "xhttp_prom_beginning", Set: func(_ *ksr.Setup, st config.Stmt) error { m.set.Prefix = st.Value.String(); return nil }},
			{Name: "http_listen", Set: func(_ *ksr.Setup, st config.Stmt) error {
				m.set.HTTPListen, m.set.ListenAt = st.Value.String(), st.Pos
				return nil
			}},
			{Name: "prom_counter", Set: m.declare(stats.KindCounter)},
			{Name: "prom_gauge", Set: m.declare(stats.KindGauge)},
			{Name: "prom_histogram", Set: m.declare(stats.KindHistogram)},
			{Name: "xhttp_prom_timeout", Set: func(_ *ksr.Setup, st config.Stmt) error {
				n, err := config.IntParam(st, "xhttp_prom", 0, 1<<31-1)
				if err != nil {
					return err
				}
				m.set.Metrics.Timeout = time.Duration(n) * time.Minute
				return nil
			}},
		},
		Ignored: []string{"xhttp_prom_buf_size"},
		Exports: []ksr.Submodule{{Name: "xhttp_prom", Funcs: m.exports()}},
	}
}

func (m *Module) declare(kind stats.Kind) func(*ksr.Setup, config.Stmt) error {
	return func(_ *ksr.Setup, st config.Stmt) error {
		sm, err := stats.ParseMetricSpec(kind, st.Value.String())
		if err != nil {
			return config.Errorf(st.Pos, "modparam xhttp_prom %s %q: %v", st.Param, st.Value.String(), err)
		}
		m.set.Metrics.Declare(sm)
		return nil
	}
}

// Provision reads the statistics registry and the engine's clock.
func (m *Module) Provision(h ksr.Host) error {
	m.reg = h.Deps().Stats
	clock := h.Clock()
	m.set.Metrics.Now = clock.Now
	return nil
}

// SetExtra sets what Write adds after the statistics (kemi's own
// metrics). Call it before traffic.
func (m *Module) SetExtra(f func(b *strings.Builder)) { m.extra = f }

// Write writes the /metrics body, as xhttp_prom's prom_stats_get: the
// script metrics, then the statistics xhttp_prom_stats selects, then
// kemi's own metrics. It fails, as Kamailio does, when xhttp_prom_stats
// names one statistic that does not exist.
func (m *Module) Write(b *strings.Builder) error {
	m.set.Metrics.Write(b, m.set.Prefix)
	if m.reg != nil {
		sel := m.set.Stats
		if sel != "" && sel != "all" && !strings.HasSuffix(sel, ":") && len(m.reg.Select(sel)) == 0 {
			return fmt.Errorf("xhttp_prom_stats: statistic not found: %s", sel)
		}
		b.WriteString("\n")
		if err := m.reg.WritePrometheus(b, m.set.Prefix, sel, nil); err != nil {
			return err
		}
	}
	if m.extra != nil {
		m.extra(b)
	}
	return nil
}

// exports are Kamailio 5.6.3's sr_kemi_xhttp_prom_exports.
func (m *Module) exports() []ksr.Export {
	s, i := ksr.Str, ksr.Int
	x := []ksr.Export{
		{Name: "dispatch", Func: m.dispatch, Ret: ksr.Int,
			Doc: "Answer the HTTP request of the xhttp event with the metrics: 0, or 1 when the message is not HTTP."},
		{Name: "check_uri", Func: checkURI, Ret: ksr.Int,
			Doc: "1 when the HTTP request's URL is /metrics, else 0."},
	}
	labels := []string{"l1", "l2", "l3"}
	for n := 0; n <= 3; n++ {
		suf := "_l" + strconv.Itoa(n)
		lt := make([]ksr.Type, n)
		for j := range lt {
			lt[j] = s
		}
		x = append(x,
			ksr.Export{Name: "counter_reset" + suf, Func: ksr.Raw(m.op(opCounterReset, n)), Params: append([]ksr.Type{s}, lt...),
				Args: append([]string{"name"}, labels[:n]...), Ret: ksr.Int,
				Doc: "Reset the counter's label set to 0: 1, or -1 (no such counter, labels not matching)."},
			ksr.Export{Name: "gauge_reset" + suf, Func: ksr.Raw(m.op(opGaugeReset, n)), Params: append([]ksr.Type{s}, lt...),
				Args: append([]string{"name"}, labels[:n]...), Ret: ksr.Int,
				Doc: "Reset the gauge's label set to 0: 1, or -1."},
			ksr.Export{Name: "counter_inc" + suf, Func: ksr.Raw(m.op(opCounterInc, n)), Params: append([]ksr.Type{s, i}, lt...),
				Args: append([]string{"name", "number"}, labels[:n]...), Ret: ksr.Int,
				Doc: "Add number (>= 0) to the counter's label set: 1, or -1."},
			ksr.Export{Name: "gauge_set" + suf, Func: ksr.Raw(m.op(opGaugeSet, n)), Params: append([]ksr.Type{s, s}, lt...),
				Args: append([]string{"name", "number"}, labels[:n]...), Ret: ksr.Int,
				Doc: "Set the gauge's label set to number (a string read as atof does): 1, or -1."},
			ksr.Export{Name: "histogram_observe" + suf, Func: ksr.Raw(m.op(opObserve, n)), Params: append([]ksr.Type{s, s}, lt...),
				Args: append([]string{"name", "number"}, labels[:n]...), Ret: ksr.Int,
				Doc: "Observe number (a string read as atof does) in the histogram's label set: 1, or -1."},
		)
	}
	return x
}

type opKind uint8

const (
	opCounterReset opKind = iota
	opGaugeReset
	opCounterInc
	opGaugeSet
	opObserve
)

var opNames = [...]string{"counter_reset", "gauge_reset", "counter_inc", "gauge_set", "histogram_observe"}

// op is the binding of one function with n labels; its return codes are
// ki_xhttp_prom_*'s: 1, or -1 with an error logged.
func (m *Module) op(k opKind, n int) ksr.Raw {
	first := 2 // the first label's argument
	if k >= opCounterInc {
		first = 3
	}
	return func(e *ksr.Env, L *lua.LState) int {
		var lb [3]string
		for j := range n {
			lb[j] = ksr.ArgStr(L, first+j)
		}
		err := m.apply(k, ksr.ArgStr(L, 1), L, lb[:n])
		if err != nil {
			e.D.Log.Error("xhttp_prom."+opNames[k]+": "+err.Error(), "name", ksr.ArgStr(L, 1))
			L.Push(ksr.BoxInt(-1))
			return 1
		}
		L.Push(ksr.BoxInt(1))
		return 1
	}
}

func (m *Module) apply(k opKind, name string, L *lua.LState, labels []string) error {
	if name == "" {
		return fmt.Errorf("invalid name string")
	}
	for j, l := range labels {
		if l == "" {
			return fmt.Errorf("invalid l%d string", j+1)
		}
	}
	ms := m.set.Metrics
	switch k {
	case opCounterReset:
		return ms.CounterReset(name, labels...)
	case opGaugeReset:
		return ms.GaugeReset(name, labels...)
	case opCounterInc:
		v := ksr.ArgInt(L, 2)
		if v < 0 {
			return fmt.Errorf("invalid negative number parameter")
		}
		return ms.CounterInc(name, uint64(v), labels...)
	}
	f, ok := stats.Atof(ksr.ArgStr(L, 2))
	if !ok {
		return fmt.Errorf("invalid number string")
	}
	if k == opGaugeSet {
		return ms.GaugeSet(name, f, labels...)
	}
	return ms.HistogramObserve(name, f, labels...)
}

// metricsURI is what check_uri compares the request's URL with.
const metricsURI = "/metrics"

// checkURI is ki_xhttp_prom_check_uri: the request line's URL (query
// included) against /metrics.
func checkURI(e *ksr.Env) int {
	if x := xhttp.Exchange(e); x != nil && x.Req.RequestURI == metricsURI {
		return 1
	}
	return 0
}

// dispatch is ki_xhttp_prom_dispatch: a 200 with the metrics (500 when
// they cannot be written), 0; 1 (NONSIP_MSG_PASS) for a SIP message.
func (m *Module) dispatch(e *ksr.Env) int {
	x := xhttp.Exchange(e)
	if x == nil {
		return 1
	}
	var b strings.Builder
	code, reason, body := 200, "OK", ""
	if err := m.Write(&b); err != nil {
		e.D.Log.Error("xhttp_prom.dispatch: " + err.Error())
		code, reason, body = 500, "Internal Server Error", "Internal Server Error"
	} else {
		body = b.String()
	}
	if err := x.Reply(code, reason, ContentType, body); err != nil {
		e.D.Log.Error("xhttp_prom.dispatch: " + err.Error())
	}
	return 0
}

// RPC are xhttp_prom's commands.
func (m *Module) RPC() []jsonrpc.Method {
	type cmd struct {
		name, doc, what string
		k               opKind
	}
	cmds := []cmd{
		{"xhttp_prom.counter_reset", "Reset a counter based on its identifier", "counter", opCounterReset},
		{"xhttp_prom.counter_inc", "Add a number (greater or equal to zero) to a counter based on its identifier", "counter", opCounterInc},
		{"xhttp_prom.gauge_reset", "Reset a gauge based on its identifier", "gauge", opGaugeReset},
		{"xhttp_prom.gauge_set", "Set a gauge to a number based on its identifier", "gauge", opGaugeSet},
		{"xhttp_prom.histogram_observe", "Observe a number in a histogram", "histogram", opObserve},
	}
	out := make([]jsonrpc.Method, 0, len(cmds)+1)
	for _, c := range cmds {
		out = append(out, jsonrpc.Method{Name: c.name, Doc: c.doc, Handler: func(_ context.Context, p jsonrpc.Params) (any, error) {
			return m.rpcOp(c.k, c.what, p)
		}})
	}
	out = append(out, jsonrpc.Method{Name: "xhttp_prom.metric_list_print", Doc: "Print a list showing all user defined metrics",
		Handler: func(context.Context, jsonrpc.Params) (any, error) {
			var b strings.Builder
			m.set.Metrics.Write(&b, m.set.Prefix)
			return b.String(), nil
		}})
	return out
}

// rpcOp is rpc_prom_*: name, the number (inc, set, observe), then up to
// three labels; faults as Kamailio's.
func (m *Module) rpcOp(k opKind, what string, p jsonrpc.Params) (any, error) {
	name, ok := p.String(0)
	if !ok {
		return nil, &jsonrpc.Fault{Code: 400, Message: "required " + what + " identifier"}
	}
	if name == "" {
		return nil, &jsonrpc.Fault{Code: 400, Message: "invalid " + what + " identifier"}
	}
	next := 1
	var num float64
	var inc int
	switch k {
	case opCounterInc:
		if inc, ok = p.Int(1); !ok {
			return nil, &jsonrpc.Fault{Code: 400, Message: "required number argument"}
		}
		if inc < 0 {
			return nil, nil // Kamailio logs it and answers nothing
		}
		next = 2
	case opGaugeSet, opObserve:
		if num, ok = rpcFloat(p, 1); !ok {
			return nil, &jsonrpc.Fault{Code: 400, Message: "required number argument"}
		}
		next = 2
	}
	var labels []string
	for j := next; j < p.Len() && len(labels) < 3; j++ {
		l, ok := p.String(j)
		if !ok {
			break
		}
		labels = append(labels, l)
	}
	ms := m.set.Metrics
	var err error
	switch k {
	case opCounterReset:
		err = ms.CounterReset(name, labels...)
	case opGaugeReset:
		err = ms.GaugeReset(name, labels...)
	case opCounterInc:
		err = ms.CounterInc(name, uint64(inc), labels...)
	case opGaugeSet:
		err = ms.GaugeSet(name, num, labels...)
	case opObserve:
		err = ms.HistogramObserve(name, num, labels...)
	}
	if err != nil {
		verb := map[opKind]string{opCounterReset: "reset", opGaugeReset: "reset", opCounterInc: "add to", opGaugeSet: "assign", opObserve: "observe in"}[k]
		msg := fmt.Sprintf("Failed to %s %s: %s", verb, what, name)
		if len(labels) > 0 {
			msg += " (" + strings.Join(labels, ", ") + ")"
		}
		return nil, &jsonrpc.Fault{Code: 500, Message: msg}
	}
	return nil, nil
}

// rpcFloat is parameter i as a double (a JSON number, or a string holding
// one).
func rpcFloat(p jsonrpc.Params, i int) (float64, bool) {
	r := p.Raw(i)
	if len(r) == 0 {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(r, &f); err == nil {
		return f, true
	}
	var s string
	if err := json.Unmarshal(r, &s); err == nil {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f, true
		}
	}
	return 0, false
}
