package stats

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Sample is one Prometheus sample kemi adds beside the statistics.
type Sample struct {
	Name   string            // full metric name, e.g. "kemi_queue_length"
	Help   string            // "" for none
	Type   string            // "counter" or "gauge"
	Labels map[string]string // nil for none
	Value  float64
}

// WritePrometheus writes the statistics sel selects (Select; "" writes
// none) as xhttp_prom names them, prefix + group + "_" + name
// ("kamailio_core_rcv_requests"), then the extra samples, in the
// Prometheus text format (version 0.0.4). Unlike xhttp_prom it writes no
// timestamps, and it declares the types (counters, and gauges for
// statistics that are not reset).
func (r *Registry) WritePrometheus(w io.Writer, prefix, sel string, extra []Sample) error {
	var b strings.Builder
	if sel != "" {
		switch {
		case sel == "all":
			b.WriteString("# Kamailio whole internal statistics\n")
		case strings.HasSuffix(sel, ":"):
			b.WriteString("# Kamailio statistics for group: " + sel + "\n")
		default:
			b.WriteString("# Kamailio statistics for: " + sel + "\n")
		}
		for _, s := range r.Select(sel) {
			name := promName(prefix + s.Group + "_" + s.Name)
			typ := "counter"
			if s.noReset && s.fn != nil && !s.fixed {
				typ = "gauge"
			}
			fmt.Fprintf(&b, "# TYPE %s %s\n%s %d\n", name, typ, name, s.Value())
		}
	}
	writeSamples(&b, extra)
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteSamples writes samples in the Prometheus text format, grouped by
// name.
func WriteSamples(b *strings.Builder, samples []Sample) { writeSamples(b, samples) }

func writeSamples(b *strings.Builder, extra []Sample) {
	// A family's samples must be contiguous: grouped by name, in order.
	extra = slices.Clone(extra)
	sort.SliceStable(extra, func(i, j int) bool { return extra[i].Name < extra[j].Name })
	typed := map[string]bool{}
	for _, x := range extra {
		name := promName(x.Name)
		if !typed[name] {
			typed[name] = true
			if x.Help != "" {
				fmt.Fprintf(b, "# HELP %s %s\n", name, strings.ReplaceAll(x.Help, "\n", " "))
			}
			fmt.Fprintf(b, "# TYPE %s %s\n", name, x.Type)
		}
		b.WriteString(name)
		if len(x.Labels) > 0 {
			keys := make([]string, 0, len(x.Labels))
			for k := range x.Labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(b, "%s=%q", promName(k), x.Labels[k])
			}
			b.WriteByte('}')
		}
		fmt.Fprintf(b, " %v\n", x.Value)
	}
}

// promName maps a statistic name to Prometheus' [a-zA-Z_:][a-zA-Z0-9_:]*.
func promName(s string) string {
	var b strings.Builder
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_', c == ':':
		case c >= '0' && c <= '9' && i > 0:
		default:
			c = '_'
		}
		b.WriteRune(c)
	}
	return b.String()
}
