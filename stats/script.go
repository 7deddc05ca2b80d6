package stats

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file is xhttp_prom's user-defined metrics (prom_metric.c at
// Kamailio 5.6.3): counters, gauges and histograms declared by the
// prom_counter, prom_gauge and prom_histogram parameters, with up to three
// labels, changed by the script and shown on /metrics as
// prefix + name{label="value", ...}.
//
// Each label set (Kamailio's lvalue) is made on first use and kept until
// it has not been touched for the timeout (xhttp_prom_timeout). Changing
// one costs a read lock of its metric, a map lookup without allocation and
// atomic operations: no lock is shared by all metrics and none is held
// while counting.

// Kind is a script metric's type.
type Kind uint8

// The metric kinds.
const (
	KindCounter Kind = iota + 1
	KindGauge
	KindHistogram
)

func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindGauge:
		return "gauge"
	case KindHistogram:
		return "histogram"
	}
	return "untyped"
}

// DefaultBuckets are xhttp_prom's histogram buckets when none are given.
var DefaultBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// lkey is a label set's values (up to three, as xhttp_prom's functions).
type lkey struct{ a, b, c string }

// Series is one label set of a metric: its value and when it was last
// changed (Unix milliseconds).
type Series struct {
	key lkey
	ts  atomic.Int64
	v   atomic.Uint64 // a counter's count, or a gauge's float64 bits
	// histogram: per-bucket (not cumulative) counts, the last one +Inf
	counts []atomic.Uint64
	sum    atomic.Uint64 // float64 bits
}

// ScriptMetric is one declared metric.
type ScriptMetric struct {
	Kind    Kind
	Name    string
	Labels  []string
	Buckets []float64 // histograms only

	mu     sync.RWMutex
	series map[lkey]*Series
	order  []*Series // creation order, as Kamailio lists them
}

// ScriptMetrics holds the declared metrics. Declare them before use
// (configuration time); afterwards every method is safe for concurrent
// use.
type ScriptMetrics struct {
	byName map[string]*ScriptMetric
	order  []*ScriptMetric
	// Timeout removes a label set not changed for that long (0: never).
	Timeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// NewScriptMetrics returns an empty set with xhttp_prom's default
// timeout (60 minutes).
func NewScriptMetrics() *ScriptMetrics {
	return &ScriptMetrics{byName: map[string]*ScriptMetric{}, Timeout: time.Hour}
}

// Len is how many metrics are declared.
func (s *ScriptMetrics) Len() int { return len(s.order) }

// ParseMetricSpec reads a prom_counter, prom_gauge or prom_histogram
// value: "name=NAME;label=a:b:c;buckets=0.1:1:10" (buckets for
// histograms only), as xhttp_prom's prom_*_create do.
func ParseMetricSpec(kind Kind, spec string) (*ScriptMetric, error) {
	spec = strings.TrimSuffix(spec, ";")
	m := &ScriptMetric{Kind: kind, series: map[lkey]*Series{}}
	labelSet, bucketsSet := false, false
	for _, part := range strings.Split(spec, ";") {
		k, v, _ := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"'`)
		switch {
		case k == "label":
			if labelSet {
				return nil, errors.New("label already created")
			}
			labelSet = true
			if v == "" {
				return nil, errors.New("no label string")
			}
			for _, l := range strings.Split(v, ":") {
				if l == "" {
					return nil, fmt.Errorf("label %q: empty label name", v)
				}
				m.Labels = append(m.Labels, l)
			}
		case k == "name":
			m.Name = v
		case k == "buckets" && kind == KindHistogram:
			if bucketsSet {
				return nil, errors.New("buckets given twice")
			}
			bucketsSet = true
			if v == "" {
				return nil, errors.New("void bucket string")
			}
			for _, b := range strings.Split(v, ":") {
				f, ok := Atof(b)
				if !ok {
					return nil, fmt.Errorf("bucket %q is not a number", b)
				}
				if n := len(m.Buckets); n > 0 && f < m.Buckets[n-1] {
					return nil, fmt.Errorf("buckets %q: buckets must increase", v)
				}
				m.Buckets = append(m.Buckets, f)
			}
		default:
			return nil, fmt.Errorf("unknown field: %s (%s)", k, v)
		}
	}
	if m.Name == "" {
		return nil, fmt.Errorf("no %s name", kind)
	}
	if kind == KindHistogram && m.Buckets == nil {
		m.Buckets = DefaultBuckets
	}
	return m, nil
}

// Declare adds m. As in Kamailio a second metric of the same name is kept
// but never found (the first one is).
func (s *ScriptMetrics) Declare(m *ScriptMetric) {
	if _, dup := s.byName[m.Name]; !dup {
		s.byName[m.Name] = m
	}
	s.order = append(s.order, m)
}

// Errors of the script metric operations (Kamailio logs them and the
// function returns -1).
var (
	ErrNoMetric     = errors.New("no metric found")
	ErrMetricType   = errors.New("metric type does not match")
	ErrLabelCount   = errors.New("number of labels does not match")
	ErrInvalidLabel = errors.New("invalid label string")
)

func (s *ScriptMetrics) nowMs() int64 {
	if s.Now != nil {
		return s.Now().UnixMilli()
	}
	return time.Now().UnixMilli()
}

// series finds (or makes) the label set of the metric name.
func (s *ScriptMetrics) series(name string, kind Kind, labels []string) (*Series, error) {
	m := s.byName[name]
	if m == nil {
		return nil, ErrNoMetric
	}
	if m.Kind != kind {
		return nil, ErrMetricType
	}
	if len(labels) != len(m.Labels) || len(labels) > 3 {
		return nil, ErrLabelCount
	}
	var k lkey
	for i, l := range labels {
		if l == "" {
			return nil, ErrInvalidLabel
		}
		switch i {
		case 0:
			k.a = l
		case 1:
			k.b = l
		case 2:
			k.c = l
		}
	}
	now := s.nowMs()
	timeout := s.Timeout.Milliseconds()
	m.mu.RLock()
	sr := m.series[k]
	m.mu.RUnlock()
	if sr != nil && (timeout <= 0 || now-sr.ts.Load() <= timeout) {
		sr.ts.Store(now)
		return sr, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if sr = m.series[k]; sr != nil && timeout > 0 && now-sr.ts.Load() > timeout {
		m.remove(sr) // expired: Kamailio deletes it, then makes it anew
		sr = nil
	}
	if sr == nil {
		sr = &Series{key: k}
		if m.Kind == KindHistogram {
			sr.counts = make([]atomic.Uint64, len(m.Buckets)+1)
		}
		m.series[k] = sr
		m.order = append(m.order, sr)
	}
	sr.ts.Store(now)
	return sr, nil
}

// remove drops sr; m.mu is held.
func (m *ScriptMetric) remove(sr *Series) {
	delete(m.series, sr.key)
	for i, x := range m.order {
		if x == sr {
			m.order = append(m.order[:i:i], m.order[i+1:]...)
			break
		}
	}
}

// CounterInc adds n to a counter's label set.
func (s *ScriptMetrics) CounterInc(name string, n uint64, labels ...string) error {
	sr, err := s.series(name, KindCounter, labels)
	if err != nil {
		return err
	}
	sr.v.Add(n)
	return nil
}

// CounterReset sets a counter's label set to zero (making it if needed).
func (s *ScriptMetrics) CounterReset(name string, labels ...string) error {
	sr, err := s.series(name, KindCounter, labels)
	if err != nil {
		return err
	}
	sr.v.Store(0)
	return nil
}

// GaugeSet sets a gauge's label set.
func (s *ScriptMetrics) GaugeSet(name string, v float64, labels ...string) error {
	sr, err := s.series(name, KindGauge, labels)
	if err != nil {
		return err
	}
	sr.v.Store(math.Float64bits(v))
	return nil
}

// GaugeReset sets a gauge's label set to zero (making it if needed).
func (s *ScriptMetrics) GaugeReset(name string, labels ...string) error {
	return s.GaugeSet(name, 0, labels...)
}

// HistogramObserve adds v to a histogram's label set.
func (s *ScriptMetrics) HistogramObserve(name string, v float64, labels ...string) error {
	sr, err := s.series(name, KindHistogram, labels)
	if err != nil {
		return err
	}
	m := s.byName[name]
	i := 0
	for i < len(m.Buckets) && !(v <= m.Buckets[i]) { // NaN goes to +Inf only, as in Kamailio
		i++
	}
	sr.counts[i].Add(1)
	for {
		old := sr.sum.Load()
		if sr.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return nil
		}
	}
}

// Write writes the metrics in xhttp_prom's text (prom_metric_list_print):
// "# User defined metrics" (or "# NO User defined metrics"), then each
// label set of each metric in declaration and creation order, named
// prefix + name, labels as `{a="x", b="y"}`, gauges and sums with six
// decimals, histograms as _bucket (cumulative, le with six decimals, then
// +Inf), _sum and _count. Unlike Kamailio it writes a "# TYPE" line before
// each metric and no timestamps; label values are escaped. Label sets
// past the timeout are dropped first.
func (s *ScriptMetrics) Write(b *strings.Builder, prefix string) {
	if len(s.order) == 0 {
		b.WriteString("# NO User defined metrics\n")
		return
	}
	b.WriteString("# User defined metrics\n")
	now, timeout := s.nowMs(), s.Timeout.Milliseconds()
	for _, m := range s.order {
		if s.byName[m.Name] != m {
			continue // a second declaration of a name: never used
		}
		m.mu.Lock()
		if timeout > 0 {
			for _, sr := range append([]*Series(nil), m.order...) {
				if now-sr.ts.Load() > timeout {
					m.remove(sr)
				}
			}
		}
		list := append([]*Series(nil), m.order...)
		m.mu.Unlock()
		if len(list) == 0 {
			continue
		}
		name := prefix + m.Name
		fmt.Fprintf(b, "# TYPE %s %s\n", name, m.Kind)
		for _, sr := range list {
			labels := m.labelText(sr.key)
			switch m.Kind {
			case KindCounter:
				fmt.Fprintf(b, "%s%s %d\n", name, braces(labels), sr.v.Load())
			case KindGauge:
				fmt.Fprintf(b, "%s%s %s\n", name, braces(labels), fmtF(math.Float64frombits(sr.v.Load())))
			case KindHistogram:
				pre := labels
				if pre != "" {
					pre += ", "
				}
				var cum uint64
				for i, up := range m.Buckets {
					cum += sr.counts[i].Load()
					fmt.Fprintf(b, "%s_bucket{%sle=\"%s\"} %d\n", name, pre, fmtF(up), cum)
				}
				cum += sr.counts[len(m.Buckets)].Load()
				fmt.Fprintf(b, "%s_bucket{%sle=\"+Inf\"} %d\n", name, pre, cum)
				fmt.Fprintf(b, "%s_sum%s %s\n", name, braces(labels), fmtF(math.Float64frombits(sr.sum.Load())))
				fmt.Fprintf(b, "%s_count%s %d\n", name, braces(labels), cum)
			}
		}
	}
}

// labelText is `a="x", b="y"` for a label set.
func (m *ScriptMetric) labelText(k lkey) string {
	if len(m.Labels) == 0 {
		return ""
	}
	vals := [3]string{k.a, k.b, k.c}
	var b strings.Builder
	for i, l := range m.Labels {
		if i >= 3 {
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l)
		b.WriteString(`="`)
		b.WriteString(escapeLabel(vals[i]))
		b.WriteByte('"')
	}
	return b.String()
}

func braces(s string) string {
	if s == "" {
		return ""
	}
	return "{" + s + "}"
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }

// fmtF is C's "%f" (six decimals), with Prometheus' +Inf, -Inf and NaN.
func fmtF(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'f', 6, 64)
}

// Atof reads a number as C's atof does (xhttp_prom's double_parse_str):
// the longest prefix that is a number, after leading white space; no
// number is 0. ok is false only for an empty string.
func Atof(s string) (float64, bool) {
	if s == "" {
		return 0, false
	}
	t := strings.TrimLeft(s, " \t\n\v\f\r")
	i := 0
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		i++
	}
	low := strings.ToLower(t[i:])
	for _, w := range []string{"infinity", "inf", "nan"} {
		if strings.HasPrefix(low, w) {
			f, _ := strconv.ParseFloat(t[:i+len(w)], 64)
			return f, true
		}
	}
	if f, ok := atofHex(t, i); ok {
		return f, true
	}
	digits := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
		digits++
	}
	if i < len(t) && t[i] == '.' {
		i++
		for i < len(t) && t[i] >= '0' && t[i] <= '9' {
			i++
			digits++
		}
	}
	if digits == 0 {
		return 0, true
	}
	end := i
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		j := i + 1
		if j < len(t) && (t[j] == '+' || t[j] == '-') {
			j++
		}
		k := j
		for k < len(t) && t[k] >= '0' && t[k] <= '9' {
			k++
		}
		if k > j {
			end = k
		}
	}
	f, err := strconv.ParseFloat(t[:end], 64)
	if err != nil {
		// out of range: ParseFloat gives ±Inf or 0 with the error, as strtod
		return f, true
	}
	return f, true
}

// atofHex reads strtod's hexadecimal form ("0x1A", "0x1.8p3") at t[i:]
// (t[:i] is the sign).
func atofHex(t string, i int) (float64, bool) {
	if len(t) < i+3 || t[i] != '0' || (t[i+1] != 'x' && t[i+1] != 'X') {
		return 0, false
	}
	isHex := func(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }
	j, digits := i+2, 0
	for j < len(t) && isHex(t[j]) {
		j++
		digits++
	}
	if j < len(t) && t[j] == '.' {
		j++
		for j < len(t) && isHex(t[j]) {
			j++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	mant, exp := t[:j], "p0"
	if j < len(t) && (t[j] == 'p' || t[j] == 'P') {
		k := j + 1
		if k < len(t) && (t[k] == '+' || t[k] == '-') {
			k++
		}
		e := k
		for e < len(t) && t[e] >= '0' && t[e] <= '9' {
			e++
		}
		if e > k {
			exp = t[j:e]
		}
	}
	f, _ := strconv.ParseFloat(mant+exp, 64)
	return f, true
}
