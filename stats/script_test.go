package stats

import (
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

func declare(t *testing.T, s *ScriptMetrics, kind Kind, spec string) {
	t.Helper()
	m, err := ParseMetricSpec(kind, spec)
	if err != nil {
		t.Fatalf("%s: %v", spec, err)
	}
	s.Declare(m)
}

func TestParseMetricSpec(t *testing.T) {
	m, err := ParseMetricSpec(KindHistogram, `name=lat;label=a:b;buckets=0.1:1:1:10;`)
	if err != nil || m.Name != "lat" || strings.Join(m.Labels, ",") != "a,b" || len(m.Buckets) != 4 {
		t.Fatalf("%+v %v", m, err)
	}
	if m, _ := ParseMetricSpec(KindHistogram, "name=d"); len(m.Buckets) != len(DefaultBuckets) {
		t.Errorf("default buckets %v", m.Buckets)
	}
	for _, bad := range []struct {
		kind Kind
		spec string
	}{
		{KindCounter, "label=a"},                      // no name
		{KindCounter, "name=x;label=a;label=b"},       // label twice
		{KindCounter, "name=x;label=a::b"},            // empty label
		{KindCounter, "name=x;foo=1"},                 // unknown field
		{KindCounter, "name=x;buckets=1:2"},           // buckets are histograms'
		{KindHistogram, "name=x;buckets=2:1"},         // must increase
		{KindHistogram, "name=x;buckets="},            // void
		{KindHistogram, "name=x;buckets=1;buckets=2"}, // twice
		{KindGauge, ""},                               // nothing
	} {
		if _, err := ParseMetricSpec(bad.kind, bad.spec); err == nil {
			t.Errorf("%s %q accepted", bad.kind, bad.spec)
		}
	}
}

func TestScriptMetricsWrite(t *testing.T) {
	s := NewScriptMetrics()
	var b strings.Builder
	s.Write(&b, "kamailio_")
	if b.String() != "# NO User defined metrics\n" {
		t.Errorf("empty: %q", b.String())
	}
	declare(t, s, KindCounter, "name=calls;label=method")
	declare(t, s, KindGauge, "name=temp")
	declare(t, s, KindHistogram, "name=lat;label=r;buckets=0.5:1")
	declare(t, s, KindCounter, "name=calls") // second of a name: never found
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CounterInc("calls", 2, `say "hi"`))
	must(s.GaugeSet("temp", -1.5))
	must(s.HistogramObserve("lat", 0.5, "r1"))
	must(s.HistogramObserve("lat", 3, "r1"))
	must(s.HistogramObserve("lat", math.NaN(), "r2"))
	for _, c := range []struct {
		err  error
		want error
	}{
		{s.CounterInc("calls", 1), ErrLabelCount},
		{s.CounterInc("nope", 1), ErrNoMetric},
		{s.GaugeSet("calls", 1, "x"), ErrMetricType},
		{s.CounterInc("calls", 1, ""), ErrInvalidLabel},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("got %v, want %v", c.err, c.want)
		}
	}
	b.Reset()
	s.Write(&b, "kamailio_")
	want := `# User defined metrics
# TYPE kamailio_calls counter
kamailio_calls{method="say \"hi\""} 2
# TYPE kamailio_temp gauge
kamailio_temp -1.500000
# TYPE kamailio_lat histogram
kamailio_lat_bucket{r="r1", le="0.500000"} 1
kamailio_lat_bucket{r="r1", le="1.000000"} 1
kamailio_lat_bucket{r="r1", le="+Inf"} 2
kamailio_lat_sum{r="r1"} 3.500000
kamailio_lat_count{r="r1"} 2
kamailio_lat_bucket{r="r2", le="0.500000"} 0
kamailio_lat_bucket{r="r2", le="1.000000"} 0
kamailio_lat_bucket{r="r2", le="+Inf"} 1
kamailio_lat_sum{r="r2"} NaN
kamailio_lat_count{r="r2"} 1
`
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestScriptMetricsTimeout: a label set untouched for the timeout is
// dropped from the output, and made anew at zero when used again (at the
// end of its metric's list, as Kamailio re-creates it).
func TestScriptMetricsTimeout(t *testing.T) {
	now := time.Unix(1000, 0)
	s := NewScriptMetrics()
	s.Now = func() time.Time { return now }
	s.Timeout = time.Minute
	declare(t, s, KindCounter, "name=c;label=k")
	s.CounterInc("c", 5, "old")
	now = now.Add(30 * time.Second)
	s.CounterInc("c", 1, "new")
	now = now.Add(31 * time.Second) // "old" is 61 s old, "new" 31 s
	var b strings.Builder
	s.Write(&b, "")
	if strings.Contains(b.String(), "old") || !strings.Contains(b.String(), `c{k="new"} 1`) {
		t.Errorf("after the timeout:\n%s", b.String())
	}
	s.CounterInc("c", 1, "new")
	now = now.Add(61 * time.Second)
	s.CounterInc("c", 2, "new") // expired since its last use: starts again
	s.CounterInc("c", 3, "old")
	b.Reset()
	s.Write(&b, "")
	if !strings.HasSuffix(b.String(), "c{k=\"new\"} 2\nc{k=\"old\"} 3\n") {
		t.Errorf("made anew:\n%s", b.String())
	}
	s.Timeout = 0 // never
	now = now.Add(1000 * time.Hour)
	b.Reset()
	s.Write(&b, "")
	if !strings.Contains(b.String(), `c{k="old"} 3`) {
		t.Errorf("without timeout:\n%s", b.String())
	}
}

// TestScriptMetricsConcurrent changes the same label sets from many
// goroutines (run with -race): no update is lost.
func TestScriptMetricsConcurrent(t *testing.T) {
	s := NewScriptMetrics()
	declare(t, s, KindCounter, "name=c;label=a:b")
	declare(t, s, KindHistogram, "name=h;buckets=1")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				s.CounterInc("c", 1, "x", []string{"p", "q"}[(g+i)%2])
				s.HistogramObserve("h", 0.5)
			}
		}()
	}
	var b strings.Builder
	for range 10 {
		b.Reset()
		s.Write(&b, "")
	}
	wg.Wait()
	b.Reset()
	s.Write(&b, "")
	for _, w := range []string{`c{a="x", b="p"} 4000`, `c{a="x", b="q"} 4000`, "h_count 8000", "h_sum 4000.000000"} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("missing %q in\n%s", w, b.String())
		}
	}
}

func TestAtof(t *testing.T) {
	for in, want := range map[string]float64{
		"21.5abc": 21.5, "x": 0, " -3": -3, "1e3": 1000, "1e": 1, ".5": 0.5, "5.": 5,
		"+2.5e-1x": 0.25, "-": 0, "inf": 0, "0x10": 16, "0x1.8p1z": 3, "0xg": 0,
	} {
		got, ok := Atof(in)
		if in == "inf" {
			if !ok || got <= 1e308 {
				t.Errorf("Atof(%q) = %v", in, got)
			}
			continue
		}
		if !ok || got != want {
			t.Errorf("Atof(%q) = %v %v, want %v", in, got, ok, want)
		}
	}
	if _, ok := Atof(""); ok {
		t.Error(`Atof("") ok`)
	}
}

// BenchmarkCounterInc is the hot path: one label set changed from every
// core.
func BenchmarkCounterInc(b *testing.B) {
	s := NewScriptMetrics()
	m, _ := ParseMetricSpec(KindCounter, "name=c;label=method:code")
	s.Declare(m)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.CounterInc("c", 1, "INVITE", "200")
		}
	})
}
