// Package conformance holds the side-by-side conformance suite: the same
// kamailio.cfg and Lua script (testdata/) run under kemi and under Kamailio
// 5.6, the same SIP requests go to both, and every case's results must be
// equal, value and Lua type, unless the difference is known and documented
// (knownDifferences, docs/conformance.md).
package conformance

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"kemi/engine/enginetest"
)

// caseTimeout guards one case's exchange; it is never waited for when both
// engines behave (each step waits for a message, not for time to pass).
const caseTimeout = 10 * time.Second

// spec is one case as the script's __list describes it.
type spec struct {
	name, method, profile, expect string
}

// expects reports whether the case's expect list holds what.
func (s spec) expects(what string) bool {
	for _, e := range strings.Split(s.expect, ",") {
		if e == what {
			return true
		}
	}
	return false
}

// target is one engine under test.
type target struct {
	name   string
	port   int // UDP
	tcp    int // TCP
	sink   *sink
	exited chan struct{} // Kamailio only: closed when it exits
}

func (tg *target) addr() string { return "127.0.0.1:" + strconv.Itoa(tg.port) }

func (tg *target) tcpAddr() string { return "127.0.0.1:" + strconv.Itoa(tg.tcp) }

// outcome is what one case gave on one engine, in comparable form.
type outcome struct {
	values    []string // "type:value" per returned value, or "error:..."
	early     []string // replies before the harness's, as "code reason [X- headers]"
	replyHdrs []string // X- headers of the harness's reply besides the results
	forwarded string   // the request the sink received, normalised
	relayed   string   // the relayed final reply the client received
	resumed   string   // the reply of an async resumed function
	failure   string   // no answer, unparsable answer
}

func (o outcome) String() string {
	var parts []string
	if o.failure != "" {
		parts = append(parts, "FAILURE "+o.failure)
	}
	parts = append(parts, "("+strings.Join(o.values, ", ")+")")
	if len(o.early) > 0 {
		parts = append(parts, "replied "+strings.Join(o.early, " then "))
	}
	if len(o.replyHdrs) > 0 {
		parts = append(parts, "reply headers "+strings.Join(o.replyHdrs, " "))
	}
	if o.forwarded != "" {
		parts = append(parts, "forwarded "+o.forwarded)
	}
	if o.relayed != "" {
		parts = append(parts, "relayed reply "+o.relayed)
	}
	if o.resumed != "" {
		parts = append(parts, "resumed "+o.resumed)
	}
	return strings.Join(parts, "; ")
}

// xHeaders lists a message's X- headers as "Name: value", without the
// harness's own.
func xHeaders(m *message) []string {
	var out []string
	for _, h := range m.headers {
		n := strings.ToLower(h[0])
		if !strings.HasPrefix(n, "x-") || strings.HasPrefix(n, "x-r-") {
			continue
		}
		switch n {
		case "x-port", "x-src-port", "x-sink", "x-case":
			continue
		}
		out = append(out, h[0]+": "+h[1])
	}
	return out
}

// harnessReply reports whether m is the script's "Case Done" reply.
func harnessReply(m *message) bool {
	_, ok := m.get("X-R-N")
	return m.isResponse() && ok
}

// runCase sends one case's request to tg and collects its outcome.
func runCase(t *testing.T, tg *target, sp spec, callID string) outcome {
	var o outcome
	proto, addr := "udp", tg.addr()
	if sp.profile == "tcp" {
		proto, addr = "tcp", tg.tcpAddr()
	}
	c, err := dial(proto, addr)
	if err != nil {
		o.failure = "dial: " + err.Error()
		return o
	}
	defer c.close()
	raw := buildRequest(c, request{method: sp.method, profile: sp.profile, caseHdr: sp.name, callID: callID,
		port: tg.port, sink: tg.sink.addr()})
	if err := c.send(raw); err != nil {
		o.failure = "send: " + err.Error()
		return o
	}
	deadline := time.Now().Add(caseTimeout)
	var done *message
	for done == nil {
		m, err := c.recv(deadline)
		if err != nil {
			o.failure = "no reply with the case's results: " + err.Error()
			return o
		}
		if cid, _ := m.get("Call-ID"); !m.isResponse() || cid != callID {
			continue
		}
		if harnessReply(m) {
			done = m
			break
		}
		if _, ok := m.get("X-Sink-Answer"); ok {
			o.relayed = statusOf(m)
			continue
		}
		if isResumed(m) {
			o.resumed = statusOf(m)
			continue
		}
		o.early = append(o.early, statusOf(m))
	}
	o.values = resultValues(done)
	o.replyHdrs = xHeaders(done)
	if sp.expects("fwd") || sp.expects("relay") {
		tg.sink.sync(t, callID)
		if fw := tg.sink.request(callID); fw != nil {
			o.forwarded = normaliseForwarded(fw, tg)
		} else {
			o.forwarded = "nothing"
		}
	}
	if sp.expects("relay") && o.forwarded != "nothing" && o.relayed == "" {
		for o.relayed == "" {
			m, err := c.recv(deadline)
			if err != nil {
				o.relayed = "none: " + err.Error()
				break
			}
			if _, ok := m.get("X-Sink-Answer"); ok && m.isResponse() {
				o.relayed = statusOf(m)
			}
		}
	}
	if sp.expects("resume") {
		for o.resumed == "" {
			m, err := c.recv(deadline)
			if err != nil {
				o.resumed = "none: " + err.Error()
				break
			}
			if cid, _ := m.get("Call-ID"); cid == callID && isResumed(m) {
				o.resumed = statusOf(m)
			}
		}
	}
	return o
}

// isResumed reports whether m is the reply of ksr_conformance_resume.
func isResumed(m *message) bool {
	return m.isResponse() && strings.HasPrefix(m.first, "SIP/2.0 299 Resumed")
}

// statusOf is a reply as "code reason [X- headers]".
func statusOf(m *message) string {
	s := strings.TrimPrefix(m.first, "SIP/2.0 ")
	if x := xHeaders(m); len(x) > 0 {
		s += " [" + strings.Join(x, "; ") + "]"
	}
	return s
}

func resultValues(m *message) []string {
	n, _ := m.get("X-R-N")
	count, err := strconv.Atoi(n)
	if err != nil {
		return []string{"bad X-R-N " + n}
	}
	out := make([]string, count)
	for i := range out {
		v, ok := m.get("X-R-" + strconv.Itoa(i+1))
		if !ok {
			out[i] = "missing"
			continue
		}
		out[i] = pctDecode(v)
	}
	return out
}

// normaliseForwarded renders a request the sink received without what
// differs per engine: Via headers (branches, ports), Content-Length, the
// harness's headers, and the engine's and sink's ports.
func normaliseForwarded(m *message, tg *target) string {
	repl := strings.NewReplacer(":"+strconv.Itoa(tg.port), ":PORT", ":"+strconv.Itoa(tg.sink.port()), ":SINK")
	parts := []string{repl.Replace(m.first)}
	for _, h := range m.headers {
		switch strings.ToLower(h[0]) {
		case "via", "v", "content-length", "l", "x-port", "x-src-port", "x-sink", "x-case":
			continue
		}
		parts = append(parts, repl.Replace(h[0]+": "+h[1]))
	}
	if m.body != "" {
		parts = append(parts, "body "+strconv.Quote(m.body))
	}
	return "[" + strings.Join(parts, " | ") + "]"
}

// compact shows two long outcomes by what differs: the parts (split at
// "; " and " | ") outside their longest common subsequence, or the whole
// outcomes when they are short or differ only in order.
func compact(a, b string) (string, string) {
	if len(a) < 200 && len(b) < 200 {
		return a, b
	}
	split := func(s string) []string { return strings.Split(strings.ReplaceAll(s, " | ", "; "), "; ") }
	x, y := split(a), split(b)
	l := make([][]int, len(x)+1)
	for i := range l {
		l[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				l[i][j] = l[i+1][j+1] + 1
			} else {
				l[i][j] = max(l[i+1][j], l[i][j+1])
			}
		}
	}
	var onlyX, onlyY []string
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			i, j = i+1, j+1
		case j == len(y) || (i < len(x) && l[i+1][j] >= l[i][j+1]):
			onlyX = append(onlyX, x[i])
			i++
		default:
			onlyY = append(onlyY, y[j])
			j++
		}
	}
	return "… " + strings.Join(onlyX, "; ") + " …", "… " + strings.Join(onlyY, "; ") + " …"
}

// mdCell escapes s for a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", "\\|", "\r", "", "\n", " ").Replace(s)
}

// waitReady sends OPTIONS without X-Case until the engine answers; it
// fails when the engine exits first or does not answer within a minute.
func waitReady(tg *target) error {
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if tg.exited != nil {
			select {
			case <-tg.exited:
				return fmt.Errorf("%s exited before answering OPTIONS", tg.name)
			default:
			}
		}
		c, err := dial("udp", tg.addr())
		if err != nil {
			return err
		}
		cid := fmt.Sprintf("ready-%d", i)
		c.send(buildRequest(c, request{method: "OPTIONS", profile: "plain", callID: cid, port: tg.port, sink: tg.sink.addr()}))
		m, err := c.recv(time.Now().Add(300 * time.Millisecond))
		c.close()
		if err == nil && m.isResponse() && strings.HasPrefix(m.first, "SIP/2.0 200") {
			return nil
		}
	}
	return fmt.Errorf("%s did not answer OPTIONS", tg.name)
}

// listCases asks tg for the script's case table.
func listCases(t *testing.T, tg *target) []spec {
	t.Helper()
	o := runCase(t, tg, spec{name: "__list", method: "OPTIONS", profile: "plain"}, "list-"+tg.name)
	if o.failure != "" {
		t.Fatalf("%s: case list: %s", tg.name, o.failure)
	}
	var out []spec
	for _, v := range o.values {
		f := strings.Split(strings.TrimPrefix(v, "string:"), "|")
		if len(f) != 4 {
			t.Fatalf("%s: case list entry %q", tg.name, v)
		}
		out = append(out, spec{f[0], f[1], f[2], f[3]})
	}
	return out
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	n, err2 := strconv.Atoi(p)
	if err != nil || err2 != nil {
		t.Fatalf("engine address %q", addr)
	}
	return n
}

func readTestdata(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, n := range []string{"kamailio.cfg", "conformance.lua"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = string(b)
	}
	return files
}

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	bin, mpath := findKamailio(t)
	files := readTestdata(t)

	// The sinks answer the requests of cases that expect a relay, or are
	// named for a failure route; the others are forwarded statelessly and
	// must not be answered.
	var specMu sync.Mutex
	specs := map[string]spec{}
	answer := func(name string) int {
		specMu.Lock()
		defer specMu.Unlock()
		switch {
		case strings.Contains(name, "failure"):
			return 486
		case specs[name].expects("relay"):
			return 200
		}
		return 0
	}

	// Kamailio, on a port found free a moment before: another test may
	// take it meanwhile, so a Kamailio that exits at once is started again
	// on another port.
	var kam *target
	for attempt := 1; kam == nil; attempt++ {
		kdir := t.TempDir()
		enginetest.Files(t, kdir, files)
		k := startKamailio(t, bin, mpath, kdir)
		tg := &target{name: "kamailio", port: k.port, tcp: k.port, sink: newSink(t, answer), exited: k.exited}
		err := waitReady(tg)
		switch {
		case err == nil:
			kam = tg
		case attempt < 3 && isClosed(k.exited):
			t.Logf("kamailio on port %d: %v; trying another port. Its log:\n%s", k.port, err, k.log.String())
		default:
			t.Fatalf("%v. Kamailio's log:\n%s", err, k.log.String())
		}
	}

	e := enginetest.Start(t, files["kamailio.cfg"], map[string]string{"conformance.lua": files["conformance.lua"]})
	kemi := &target{name: "kemi", port: portOf(t, e.Addr("udp")), tcp: portOf(t, e.Addr("tcp")), sink: newSink(t, answer)}

	if err := waitReady(kemi); err != nil {
		t.Fatal(err)
	}

	kl, el := listCases(t, kam), listCases(t, kemi)
	if fmt.Sprint(kl) != fmt.Sprint(el) {
		t.Fatalf("the engines list different cases:\nkamailio %v\nkemi     %v", kl, el)
	}
	specMu.Lock()
	for _, s := range kl {
		specs[s.name] = s
	}
	specMu.Unlock()

	// Each engine runs the cases in order, one at a time; the two engines
	// run side by side.
	results := map[string][]outcome{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, tg := range []*target{kam, kemi} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]outcome, len(kl))
			for i, s := range kl {
				out[i] = runCase(t, tg, s, fmt.Sprintf("conformance-%d", i))
			}
			mu.Lock()
			results[tg.name] = out
			mu.Unlock()
		}()
	}
	wg.Wait()

	var newDiffs, gone, table []string
	known := 0
	for i, s := range kl {
		kv, ev := results["kamailio"][i].String(), results["kemi"][i].String()
		reason, isKnown := knownDifferences[s.name]
		if kv != ev {
			kd, ed := compact(kv, ev)
			mod, _, _ := strings.Cut(s.name, ".")
			table = append(table, fmt.Sprintf("| %s | `%s` | %s | %s | %s |", mod, s.name, mdCell(kd), mdCell(ed), mdCell(reason)))
		}
		switch {
		case kv != ev && isKnown:
			known++
			t.Logf("known difference, case %s: kamailio=%s kemi=%s (%s)", s.name, kv, ev, reason)
		case kv != ev:
			newDiffs = append(newDiffs, fmt.Sprintf("case %s: kamailio=%s kemi=%s", s.name, kv, ev))
		case isKnown:
			gone = append(gone, fmt.Sprintf("case %s: both %s (knownDifferences says: %s)", s.name, kv, reason))
		}
	}
	for name := range knownDifferences {
		if _, ok := specs[name]; !ok {
			gone = append(gone, fmt.Sprintf("case %s is in knownDifferences but not in the script", name))
		}
	}
	sort.Strings(gone)
	if path := os.Getenv("CONFORMANCE_TABLE"); path != "" {
		// The rows of docs/conformance.md's table, from this run.
		if err := os.WriteFile(path, []byte(strings.Join(table, "\n")+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
	// The summary line: every case either matches or is a documented
	// difference; an undocumented one fails the suite below.
	t.Logf("%d match, %d documented differences, %d undocumented", len(kl)-known-len(newDiffs), known, len(newDiffs))
	for _, d := range newDiffs {
		t.Errorf("%s", d)
	}
	for _, g := range gone {
		t.Errorf("known difference no longer seen, remove it from knownDifferences and docs/conformance.md: %s", g)
	}
}
