// Package stats is kemi's statistics registry, shaped as Kamailio's
// counters: each statistic has a group ("core", "sl", "tm") and a name
// ("rcv_requests"), is known as "group:name", and is either a counter
// kemi adds to or a function read when asked (a gauge, or a number another
// part of kemi already keeps). The RPC commands stats.get_statistics,
// stats.fetch, stats.reset_statistics and the xhttp_prom metrics read it.
// It is a leaf package: standard library only.
//
// Concurrency: every method is safe for concurrent use; counters are
// atomic, so counting costs one atomic add.
package stats

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Stat is one statistic.
type Stat struct {
	Group, Name string
	v           atomic.Int64
	fn          func() int64 // nil for a counter
	base        atomic.Int64 // a function's value at its last reset
	noReset     bool
	fixed       bool // a function counter resets leave alone (FuncFixed)
}

// Add adds n to a counter; it reports false for a statistic read from a
// function, which cannot be changed.
func (s *Stat) Add(n int64) bool {
	if s.fn != nil {
		return false
	}
	s.v.Add(n)
	return true
}

// Reset zeroes the statistic, as Kamailio's reset_stat (not a no_reset
// one).
func (s *Stat) Reset() { s.reset() }

// Inc adds one to a counter.
func (s *Stat) Inc() { s.v.Add(1) }

// Value is the statistic's value now.
func (s *Stat) Value() int64 {
	if s.fn != nil {
		return s.fn() - s.base.Load()
	}
	return s.v.Load()
}

// reset sets a counter to zero and makes a monotonic function read zero;
// gauges (NoReset) are left alone, as Kamailio's STAT_NO_RESET.
func (s *Stat) reset() {
	if s.noReset {
		return
	}
	if s.fn != nil {
		s.base.Store(s.fn())
		return
	}
	s.v.Store(0)
}

// String is Kamailio's line: "group:name = value".
func (s *Stat) String() string { return fmt.Sprintf("%s:%s = %d", s.Group, s.Name, s.Value()) }

// Registry holds the statistics.
type Registry struct {
	mu    sync.RWMutex
	stats map[string]*Stat // by "group:name"
}

// New returns an empty registry.
func New() *Registry { return &Registry{stats: map[string]*Stat{}} }

// Counter returns the counter group:name, made at zero the first time.
func (r *Registry) Counter(group, name string) *Stat {
	k := group + ":" + name
	r.mu.RLock()
	s := r.stats[k]
	r.mu.RUnlock()
	if s != nil {
		return s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s = r.stats[k]; s == nil {
		s = &Stat{Group: group, Name: name}
		r.stats[k] = s
	}
	return s
}

// NoReset returns the counter group:name that resets leave alone
// (Kamailio's STAT_NO_RESET), made at zero the first time.
func (r *Registry) NoReset(group, name string) *Stat {
	s := r.Counter(group, name)
	r.mu.Lock()
	s.noReset = true
	r.mu.Unlock()
	return s
}

// Lookup returns the statistic group:name, or nil.
func (r *Registry) Lookup(group, name string) *Stat {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.stats[group+":"+name]
}

// Func registers group:name as read from fn. A monotonic number (a count
// kept elsewhere) resets to zero by remembering its value; a gauge
// (gauge true) is not reset. It replaces a statistic of the same name.
func (r *Registry) Func(group, name string, gauge bool, fn func() int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats[group+":"+name] = &Stat{Group: group, Name: name, fn: fn, noReset: gauge}
}

// FuncFixed registers group:name as a counter read from fn that resets
// leave alone, as Kamailio's STAT_IS_FUNC statistics (tmx's: a reset
// zeroes nothing the function reads). It is a counter on /metrics.
func (r *Registry) FuncFixed(group, name string, fn func() int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats[group+":"+name] = &Stat{Group: group, Name: name, fn: fn, noReset: true, fixed: true}
}

// All returns every statistic sorted by group, then name.
func (r *Registry) All() []*Stat {
	r.mu.RLock()
	out := make([]*Stat, 0, len(r.stats))
	for _, s := range r.stats {
		out = append(out, s)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Select returns the statistics a Kamailio selector names: "all", a
// group ("core:"), a name ("rcv_requests", in any group) or
// "group:name".
func (r *Registry) Select(sel string) []*Stat {
	var out []*Stat
	for _, s := range r.All() {
		switch {
		case sel == "all",
			strings.HasSuffix(sel, ":") && s.Group == sel[:len(sel)-1],
			s.Name == sel,
			s.Group+":"+s.Name == sel:
			out = append(out, s)
		}
	}
	return out
}

// Reset zeroes the statistics sel selects (see Select); it returns how
// many were selected.
func (r *Registry) Reset(sel string) int {
	ss := r.Select(sel)
	for _, s := range ss {
		s.reset()
	}
	return len(ss)
}

// Value returns the value of group:name, or false.
func (r *Registry) Value(group, name string) (int64, bool) {
	r.mu.RLock()
	s := r.stats[group+":"+name]
	r.mu.RUnlock()
	if s == nil {
		return 0, false
	}
	return s.Value(), true
}
