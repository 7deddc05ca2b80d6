package main

import (
	"strings"
	"testing"
	"time"
)

func TestParseStamp(t *testing.T) {
	for in, want := range map[string]int64{
		"1795696827.758634":  1795696827_758634000,
		"1795696827.7":       1795696827_700000000,
		"1795696827":         1795696827_000000000,
		"1.123456789123":     1_123456789,
		"1795696827.000001":  1795696827_000001000,
		"1795696827.0000010": 1795696827_000001000,
	} {
		if got, err := parseStamp(in); err != nil || got != want {
			t.Errorf("parseStamp(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestScan: the marker is found in Kamailio's and kemi's log lines alike,
// and only the wanted tags are kept.
func TestScan(t *testing.T) {
	log := ` 6(9598) INFO: <core> [core/kemi.c:106]: sr_kemi_core_info(): jit t100 1795696827.100000
time=2026-11-26T12:40:27.758Z level=INFO msg="jit t100 1795696827.200500" worker=rtimer/t100/0
time=2026-11-26T12:40:27.758Z level=INFO msg="jit t10 1795696827.758634\n" worker=rtimer/t10/0
adjit t100 1.5
jit other 1795696827.1`
	samples := map[string][]int64{"t100": nil, "t10": nil}
	if err := scan(strings.NewReader(log), "jit", samples); err != nil {
		t.Fatal(err)
	}
	if got := samples["t100"]; len(got) != 2 || got[0] != 1795696827_100000000 || got[1] != 1795696827_200500000 {
		t.Fatalf("t100 samples %v", got)
	}
	if got := samples["t10"]; len(got) != 1 || got[0] != 1795696827_758634000 {
		t.Fatalf("t10 samples %v", got)
	}
}

// TestAnalyse: a drifting sleep-then-run timer (Kamailio) and a grid timer
// that skips a tick (kemi) give their drift and their drift counting
// skipped periods.
func TestAnalyse(t *testing.T) {
	spec := tagSpec{name: "t10", nominal: 10 * time.Millisecond}
	ms := int64(time.Millisecond)
	// Kamailio-like: every interval is 10.2 ms.
	var kam []int64
	for i := range 101 {
		kam = append(kam, int64(i)*10200*1000)
	}
	r, ok := analyse(spec, kam)
	if !ok || r.n != 101 || r.drift != 20*time.Millisecond || r.skipDrift != r.drift || r.gaps != 0 {
		t.Fatalf("kamailio-like: %+v", r)
	}
	if r.p50 != 200*time.Microsecond || r.mean != 10200*time.Microsecond {
		t.Fatalf("kamailio-like deviations: %+v", r)
	}
	// Grid-like: ticks on k*10ms with ticks 5, 6, 7 skipped, each 0.1 ms late.
	var grid []int64
	for k := int64(0); k <= 100; k++ {
		if k >= 5 && k <= 7 {
			continue
		}
		grid = append(grid, k*10*ms+100*1000)
	}
	r, ok = analyse(spec, grid)
	if !ok || r.gaps != 1 || r.gapMissed != 3 || r.skipDrift != 0 || r.drift != 30*time.Millisecond {
		t.Fatalf("grid-like: %+v", r)
	}
}
