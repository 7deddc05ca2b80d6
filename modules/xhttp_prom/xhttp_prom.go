// Package xhttp_prom is Kamailio's xhttp_prom module in kemi: the
// statistics as Prometheus metrics on /metrics, named as xhttp_prom names
// them (xhttp_prom_beginning + group + "_" + name:
// kamailio_core_rcv_requests), with kemi's own metrics beside them (Go
// runtime, VMs, queues, module counters). The engine serves the handler on
// the JSON-RPC HTTP listener (loopback by default) and, when http_listen
// (a kemi parameter) is set, on a listener of its own.
//
// xhttp_prom_stats selects the statistics as stats.get_statistics does
// ("all", "core:", a name); kemi's default is "all" where Kamailio's is
// none. Script-defined metrics (prom_counter, prom_gauge,
// prom_histogram) are not supported yet: their parameters are accepted
// with a notice.
//
// Concurrency: a Module is configured by one goroutine and read-only
// afterwards.
package xhttp_prom //nolint:revive // Kamailio's module name

import (
	"kemi/config"
	"kemi/ksr"
)

// Settings are the module's parameters.
type Settings struct {
	Stats      string // xhttp_prom_stats
	Prefix     string // xhttp_prom_beginning
	HTTPListen string // kemi: a listener of its own, "" for none
	ListenAt   config.Pos
}

// Module is one configuration's xhttp_prom.
type Module struct{ set Settings }

// New returns the module with its defaults.
func New() *Module { return &Module{set: Settings{Stats: "all", Prefix: "kamailio_"}} }

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "xhttp_prom",
		Doc:  "statistics as Prometheus metrics on /metrics (xhttp_prom's names, plus kemi's own)",
		Params: []ksr.Param{
			{Name: "xhttp_prom_stats", Set: func(_ *ksr.Setup, st config.Stmt) error { m.set.Stats = st.Value.String(); return nil }},
			{Name: "xhttp_prom_beginning", Set: func(_ *ksr.Setup, st config.Stmt) error { m.set.Prefix = st.Value.String(); return nil }},
			{Name: "http_listen", Set: func(_ *ksr.Setup, st config.Stmt) error {
				m.set.HTTPListen, m.set.ListenAt = st.Value.String(), st.Pos
				return nil
			}},
		},
		Ignored:     []string{"xhttp_prom_buf_size", "xhttp_prom_timeout", "prom_counter", "prom_gauge", "prom_histogram"},
		RuntimeFree: true,
	}
}
