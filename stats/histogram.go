package stats

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Buckets are the upper bounds, in seconds, of the latency histograms:
// from 100 µs (a short route) to 2.5 s (a script near a time budget).
var Buckets = [...]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// Histogram counts durations in Buckets; Observe costs a few atomic adds.
type Histogram struct {
	counts [len(Buckets) + 1]atomic.Uint64 // the last is +Inf
	sumNs  atomic.Int64
}

// Observe adds one duration.
func (h *Histogram) Observe(d time.Duration) {
	s := d.Seconds()
	i := sort.SearchFloat64s(Buckets[:], s)
	h.counts[i].Add(1)
	h.sumNs.Add(int64(d))
}

// Count is how many durations were observed.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// family is one labelled metric: histograms or counters by label value.
type family struct {
	name, help, label string
	mu                sync.RWMutex
	hists             map[string]*Histogram
	counters          map[string]*atomic.Int64
}

// Families holds kemi's labelled metrics (per Lua function): histograms
// and counters made on first use. The zero value is not usable: see
// NewFamilies.
type Families struct {
	mu  sync.Mutex
	fam map[string]*family
	ord []string
}

// NewFamilies returns an empty set.
func NewFamilies() *Families { return &Families{fam: map[string]*family{}} }

func (f *Families) get(name, help, label string) *family {
	f.mu.Lock()
	defer f.mu.Unlock()
	fm := f.fam[name]
	if fm == nil {
		fm = &family{name: name, help: help, label: label, hists: map[string]*Histogram{}, counters: map[string]*atomic.Int64{}}
		f.fam[name] = fm
		f.ord = append(f.ord, name)
	}
	return fm
}

// Histogram returns the histogram name{label=value}, made on first use.
func (f *Families) Histogram(name, help, label, value string) *Histogram {
	fm := f.get(name, help, label)
	fm.mu.RLock()
	h := fm.hists[value]
	fm.mu.RUnlock()
	if h != nil {
		return h
	}
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if h = fm.hists[value]; h == nil {
		h = &Histogram{}
		fm.hists[value] = h
	}
	return h
}

// Counter returns the counter name{label=value}, made on first use.
func (f *Families) Counter(name, help, label, value string) *atomic.Int64 {
	fm := f.get(name, help, label)
	fm.mu.RLock()
	c := fm.counters[value]
	fm.mu.RUnlock()
	if c != nil {
		return c
	}
	fm.mu.Lock()
	defer fm.mu.Unlock()
	if c = fm.counters[value]; c == nil {
		c = new(atomic.Int64)
		fm.counters[value] = c
	}
	return c
}

// WritePrometheus writes every family in the text format.
func (f *Families) WritePrometheus(b *strings.Builder) {
	f.mu.Lock()
	ord := append([]string(nil), f.ord...)
	fams := make([]*family, len(ord))
	for i, n := range ord {
		fams[i] = f.fam[n]
	}
	f.mu.Unlock()
	for _, fm := range fams {
		fm.mu.RLock()
		if len(fm.hists) > 0 {
			fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s histogram\n", fm.name, fm.help, fm.name)
			for _, v := range sortedKeys(fm.hists) {
				h := fm.hists[v]
				var cum uint64
				for i := range h.counts {
					cum += h.counts[i].Load()
					le := "+Inf"
					if i < len(Buckets) {
						le = fmt.Sprint(Buckets[i])
					}
					fmt.Fprintf(b, "%s_bucket{%s=%q,le=%q} %d\n", fm.name, fm.label, v, le, cum)
				}
				fmt.Fprintf(b, "%s_sum{%s=%q} %v\n", fm.name, fm.label, v, float64(h.sumNs.Load())/1e9)
				fmt.Fprintf(b, "%s_count{%s=%q} %d\n", fm.name, fm.label, v, cum)
			}
		}
		if len(fm.counters) > 0 {
			fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s counter\n", fm.name, fm.help, fm.name)
			for _, v := range sortedKeys(fm.counters) {
				fmt.Fprintf(b, "%s{%s=%q} %d\n", fm.name, fm.label, v, fm.counters[v].Load())
			}
		}
		fm.mu.RUnlock()
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
