package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

// The multi-process test of docs/cluster.md: Debian's nats-server as a
// 3-server JetStream cluster on loopback ports, R3 streams, three `kemi run`
// processes sharing one cfg. A UA adds items through nodes A and B; node C
// drains with an rtimer (mq_take, record, mq_ack). C and one NATS server
// are SIGKILLed mid-drain and C is started again: every acknowledged item
// must be recorded at least once. Then the killed NATS server comes back, a
// second queue is drained by C with mq_fetch while another NATS server is
// SIGKILLed: every acknowledged item is recorded exactly once (twice at most
// when the UA had to resend it: a publish that timed out may have been
// stored).

const clusterCfg = `#!KAMAILIO
debug=2
children=2
listen=udp:127.0.0.1:SIP_PORT
loadmodule "sl.so"
loadmodule "mqueue.so"
loadmodule "app_lua.so"
modparam("mqueue", "db_url", NATS_URLS)
modparam("mqueue", "mqueue", "name=jobs;dbmode=4")
modparam("mqueue", "mqueue", "name=once;dbmode=4")
modparam("mqueue", "nats_replicas", 3)
modparam("mqueue", "nats_ack_wait", 2000)
modparam("mqueue", "nats_start_wait", 120000)
#!ifdef DRAIN
loadmodule "rtimer.so"
modparam("rtimer", "timer", "name=drain;interval=50000u;mode=1")
modparam("rtimer", "exec", "timer=drain;route=ksr_drain")
modparam("rtimer", "exec", "timer=drain;route=ksr_drain_once")
#!endif
modparam("app_lua", "load", "cluster.lua")
cfgengine "lua"
`

// The drain records each item (a log line) before acknowledging it, and
// keeps the last item of each tick taken until the next tick, so that a
// SIGKILL usually finds one item taken and not acknowledged.
const clusterLua = `
function ksr_request_route()
	KSR.sl.send_reply(200, "add " .. KSR.mqueue.mq_add(KSR.hdr.gete("X-Queue"), KSR.hdr.gete("X-Key"), "v"))
end

function ksr_drain_once(evname)
	for i = 1, 20 do
		if KSR.mqueue.mq_fetch("once") ~= 1 then return end
		KSR.info("FETCHED " .. KSR.mqueue.mqk_get("once") .. " END")
	end
end

local held = false
function ksr_drain(evname)
	if held then
		KSR.mqueue.mq_ack("jobs")
		held = false
	end
	for i = 1, 20 do
		if KSR.mqueue.mq_take("jobs", 0) ~= 1 then return end
		KSR.info("DRAINED " .. KSR.mqueue.mqk_get("jobs") .. " END")
		if i == 20 or KSR.mqueue.mq_size("jobs") <= 1 then -- the size counts the taken item
			held = true
			return
		end
		KSR.mqueue.mq_ack("jobs")
	end
end
`

func clusterTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// proc is a process started by the cluster test.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
}

func startProc(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(args[0], args[1:]...), out: &syncBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	}
}

var (
	drainedRE = regexp.MustCompile(`DRAINED (\S+) END`)
	fetchedRE = regexp.MustCompile(`FETCHED (\S+) END`)
)

// drained returns how many times each key was recorded in the outputs.
func drained(ps ...*proc) map[string]int { return recorded(drainedRE, ps...) }

func recorded(re *regexp.Regexp, ps ...*proc) map[string]int {
	got := map[string]int{}
	for _, p := range ps {
		if p == nil {
			continue
		}
		for _, m := range re.FindAllStringSubmatch(p.out.String(), -1) {
			got[m[1]]++
		}
	}
	return got
}

func TestClusterMultiProcess(t *testing.T) {
	natsBin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nats-server is not installed (tests/run installs it): the multi-process cluster test cannot run")
		}
		t.Skip("nats-server is not installed (apt-get install nats-server); CI is unset")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	dir := t.TempDir()

	// Three NATS servers, one JetStream cluster.
	const n = 3
	var client, route, monitor [n]int
	for i := range n {
		client[i], route[i], monitor[i] = clusterTCPPort(t), clusterTCPPort(t), clusterTCPPort(t)
	}
	var urls []string
	nats := make([]*proc, n)
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("\"nats-route://127.0.0.1:%d\"", route[j]))
			}
		}
		conf := fmt.Sprintf(`server_name: n%d
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster {
  name: kemi
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, i+1, client[i], monitor[i], filepath.Join(dir, fmt.Sprintf("n%d", i+1)), route[i], strings.Join(routes, ", "))
		path := filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1))
		os.WriteFile(path, []byte(conf), 0o644)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	startNATS := func(i int) {
		nats[i] = startProc(t, fmt.Sprintf("nats n%d", i+1), natsBin, "-c", filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1)))
	}
	for i := range n {
		startNATS(i)
	}
	for _, p := range nats {
		if !p.out.waitFor("Server is ready", 30*time.Second) {
			t.Fatalf("%s did not start:\n%s", p.name, p.out)
		}
	}

	// Three kemi nodes, one cfg.
	os.WriteFile(filepath.Join(dir, "cluster.cfg"), []byte(clusterCfg), 0o644)
	os.WriteFile(filepath.Join(dir, "cluster.lua"), []byte(clusterLua), 0o644)
	type node struct {
		*proc
		sip, rpc string
	}
	startNode := func(name string, drain bool) *node {
		sipPort, rpcPort := freePort(t), clusterTCPPort(t)
		args := []string{kemiBin, "run", "-f", filepath.Join(dir, "cluster.cfg"), "-rpc", fmt.Sprintf("127.0.0.1:%d", rpcPort),
			"-A", fmt.Sprintf("SIP_PORT=%d", sipPort), "-A", fmt.Sprintf("NATS_URLS=%q", strings.Join(urls, ","))}
		if drain {
			args = append(args, "-A", "DRAIN")
		}
		nd := &node{proc: startProc(t, name, args...), sip: fmt.Sprintf("127.0.0.1:%d", sipPort), rpc: fmt.Sprintf("http://127.0.0.1:%d/RPC", rpcPort)}
		return nd
	}
	a, b, c := startNode("A", false), startNode("B", false), startNode("C", true)
	for _, nd := range []*node{a, b, c} {
		if !nd.out.waitFor("kemi started", 150*time.Second) {
			t.Fatalf("node %s did not start:\n%s", nd.name, nd.out)
		}
	}

	// The UA: total items through A and B, half each, each sent until it is acknowledged
	// ("add 1"), paced so that the kills happen while items flow.
	const total = 400
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		retried  = map[string]bool{}
		failures int
		wg       sync.WaitGroup
	)
	stop := make(chan struct{})
	defer close(stop)
	t.Cleanup(wg.Wait) // after stop is closed, before the processes are killed
	ackedCount := func(prefix string) int {
		mu.Lock()
		defer mu.Unlock()
		c := 0
		for k := range acked {
			if strings.HasPrefix(k, prefix) {
				c++
			}
		}
		return c
	}
	send := func(queue, prefix string) {
		for side, nd := range []*node{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ua := enginetest.Dial(t, "udp", nd.sip)
				for i := range total / 2 {
					key := fmt.Sprintf("%s-%d-%04d", prefix, side, i)
					deadline := time.Now().Add(90 * time.Second)
					for {
						select {
						case <-stop:
							return
						default:
						}
						ua.Send(ua.Build(enginetest.Req{Method: "MESSAGE", Headers: []string{"X-Queue: " + queue, "X-Key: " + key}}))
						res, err := ua.RecvResponse(5 * time.Second)
						if err == nil && res.StatusCode == 200 && res.Reason == "add 1" {
							mu.Lock()
							acked[key] = true
							mu.Unlock()
							time.Sleep(15 * time.Millisecond)
							break
						}
						mu.Lock()
						failures++
						retried[key] = true
						mu.Unlock()
						if time.Now().After(deadline) {
							t.Errorf("%s: not acknowledged within 90 s (last: %v %v)", key, res, err)
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
				}
			}()
		}
	}
	send("jobs", "take")

	// Mid-drain: SIGKILL node C and NATS server n1, then start C again.
	waitCount := func(what string, d time.Duration, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(d)
		for !f() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCount("C drains a quarter", 120*time.Second, func() bool { return len(drained(c.proc)) >= total/4 })
	c.kill()
	nats[0].kill()
	atKill := len(drained(c.proc))
	t.Logf("SIGKILL node C after %d items and NATS server n1; %d items acknowledged so far", atKill, ackedCount("take-"))
	waitCount("the UA is halfway", 120*time.Second, func() bool { return ackedCount("take-") >= total/2 })
	c2 := startNode("C'", true)
	if !c2.out.waitFor("kemi started", 150*time.Second) {
		t.Fatalf("node C' did not start:\n%s", c2.out)
	}
	wg.Wait()

	// Every acknowledged item is recorded, at least once.
	waitCount("every acknowledged item drained", 120*time.Second, func() bool {
		got := drained(c.proc, c2.proc)
		for k := range acked {
			if got[k] == 0 {
				return false
			}
		}
		return true
	})
	got := drained(c.proc, c2.proc)
	dups := 0
	for k, cnt := range got {
		if !acked[k] && !retried[k] {
			t.Errorf("recorded %q, which was never sent", k)
		}
		dups += cnt - 1
	}
	if len(acked) != total {
		t.Errorf("%d of %d items acknowledged", len(acked), total)
	}
	t.Logf("take/ack: %d items acknowledged to the UA (%d adds refused meanwhile, retried), %d recorded, %d recorded twice (taken by C, not acknowledged, delivered again)",
		len(acked), failures, len(got), dups)
	// Nothing left behind: the stream is empty once C' acknowledged its last item.
	streamEmpty := func(queue string) func() bool {
		return func() bool {
			res, err := jsonrpc.Call(context.Background(), a.rpc, "mqueue.get_size", []any{queue})
			return err == nil && strings.Contains(string(res), `"size":0`)
		}
	}
	waitCount("the jobs stream empties", 60*time.Second, streamEmpty("jobs"))

	// Phase 2, at most once: n1 comes back (and is current), then C' drains "once" with
	// mq_fetch while n2 is SIGKILLed.
	startNATS(0)
	health := fmt.Sprintf("http://127.0.0.1:%d/healthz", monitor[0])
	var lastHealth string
	healthy := func() bool {
		res, err := http.Get(health)
		if err != nil {
			lastHealth = err.Error()
			return false
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		lastHealth = fmt.Sprintf("%d %s", res.StatusCode, body)
		return res.StatusCode == 200
	}
	// Debian's nats-server 2.9 sometimes (about one run in ten, more under load; the
	// consumer on n1 stays "not current") keeps answering 503 here for minutes. Killing n2
	// then would leave no quorum (n1 behind, n2 dead): the R3 stream could not make
	// progress and the test would only measure that. So n2 is killed only once n1 is
	// current; otherwise the fetch phase runs on the three servers and says so.
	deadline := time.Now().Add(60 * time.Second)
	n1Current := true
	for !healthy() {
		if time.Now().After(deadline) {
			t.Logf("n1 not reported current within 60 s (/healthz %s): n2 is not killed in this run (no quorum would remain)", lastHealth)
			n1Current = false
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	failures = 0
	mu.Unlock()
	send("once", "fetch")
	waitCount("C' fetches a quarter", 120*time.Second, func() bool { return len(recorded(fetchedRE, c2.proc)) >= total/4 })
	if n1Current {
		nats[1].kill()
		t.Logf("SIGKILL NATS server n2 after %d items fetched", len(recorded(fetchedRE, c2.proc)))
	}
	wg.Wait()
	waitCount("every acknowledged item fetched", 120*time.Second, func() bool {
		got := recorded(fetchedRE, c2.proc)
		for k := range acked {
			if strings.HasPrefix(k, "fetch-") && got[k] == 0 {
				return false
			}
		}
		return true
	})
	waitCount("the once stream empties", 60*time.Second, streamEmpty("once"))
	fetched, twice := recorded(fetchedRE, c2.proc), 0
	for k, cnt := range fetched {
		switch {
		case !acked[k] && !retried[k]:
			t.Errorf("fetched %q, which was never sent", k)
		case cnt == 2 && retried[k]:
			twice++ // the UA resent it after a publish that timed out but was stored
		case cnt != 1:
			t.Errorf("%q fetched %d times", k, cnt)
		}
	}
	if n := ackedCount("fetch-"); n != total {
		t.Errorf("%d of %d items acknowledged", n, total)
	}
	t.Logf("mq_fetch: %d items acknowledged to the UA (%d adds refused meanwhile, retried), %d fetched, exactly once each but %d resent by the UA and stored twice",
		ackedCount("fetch-"), failures, len(fetched), twice)
}

// TestCheckNATSURL: kemi check validates a nats db_url's form with file:line
// (and never prints its password), without connecting.
func TestCheckNATSURL(t *testing.T) {
	dir := t.TempDir()
	write := func(url string) string {
		cfg := "loadmodule \"app_lua.so\"\nloadmodule \"mqueue.so\"\n" +
			fmt.Sprintf("modparam(\"mqueue\", \"db_url\", %q)\n", url) +
			"modparam(\"mqueue\", \"mqueue\", \"name=q;dbmode=4\")\nmodparam(\"app_lua\", \"load\", \"s.lua\")\n"
		os.WriteFile(filepath.Join(dir, "k.cfg"), []byte(cfg), 0o644)
		os.WriteFile(filepath.Join(dir, "s.lua"), []byte("function ksr_request_route() end\n"), 0o644)
		return filepath.Join(dir, "k.cfg")
	}
	out, err := exec.Command(kemiBin, "check", "-f", write("nats://127.0.0.1:4222,nats://u:secret@127.0.0.1:4223")).CombinedOutput()
	if err != nil {
		t.Fatalf("a good url: %v\n%s", err, out)
	}
	out, err = exec.Command(kemiBin, "check", "-f", write("nats://u:secret@127.0.0.1:4222,nats://127.0.0.1:port,nats://u:secret@127.0.0.1:x")).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("a bad url: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `modparam mqueue db_url: url "nats://127.0.0.1:port": invalid port ":port" after host, at `+filepath.Join(dir, "k.cfg")+":3") ||
		strings.Contains(string(out), "secret") {
		t.Fatalf("output:\n%s", out)
	}
}
