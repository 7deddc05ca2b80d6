package main

import (
	"context"
	"fmt"
	"net"
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
// must be recorded at least once.

const clusterCfg = `#!KAMAILIO
debug=2
children=2
listen=udp:127.0.0.1:SIP_PORT
loadmodule "sl.so"
loadmodule "mqueue.so"
loadmodule "app_lua.so"
modparam("mqueue", "db_url", NATS_URLS)
modparam("mqueue", "mqueue", "name=jobs;dbmode=4")
modparam("mqueue", "nats_replicas", 3)
modparam("mqueue", "nats_ack_wait", 2000)
modparam("mqueue", "nats_start_wait", 120000)
#!ifdef DRAIN
loadmodule "rtimer.so"
modparam("rtimer", "timer", "name=drain;interval=50000u;mode=1")
modparam("rtimer", "exec", "timer=drain;route=ksr_drain")
#!endif
modparam("app_lua", "load", "cluster.lua")
cfgengine "lua"
`

// The drain records each item (a log line) before acknowledging it, and
// keeps the last item of each tick taken until the next tick, so that a
// SIGKILL usually finds one item taken and not acknowledged.
const clusterLua = `
function ksr_request_route()
	KSR.sl.send_reply(200, "add " .. KSR.mqueue.mq_add("jobs", KSR.hdr.gete("X-Key"), "v"))
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
		if i == 20 or KSR.mqueue.mq_size("jobs") == 0 then
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

var drainedRE = regexp.MustCompile(`DRAINED (\S+) END`)

// drained returns how many times each key was recorded in the outputs.
func drained(ps ...*proc) map[string]int {
	got := map[string]int{}
	for _, p := range ps {
		if p == nil {
			continue
		}
		for _, m := range drainedRE.FindAllStringSubmatch(p.out.String(), -1) {
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
	var client, route [n]int
	for i := range n {
		client[i], route[i] = clusterTCPPort(t), clusterTCPPort(t)
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
jetstream { store_dir: %q }
cluster {
  name: kemi
  listen: 127.0.0.1:%d
  routes: [%s]
}
`, i+1, client[i], filepath.Join(dir, fmt.Sprintf("n%d", i+1)), route[i], strings.Join(routes, ", "))
		path := filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1))
		os.WriteFile(path, []byte(conf), 0o644)
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	for i := range n {
		nats[i] = startProc(t, fmt.Sprintf("nats n%d", i+1), natsBin, "-c", filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1)))
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

	// The UA: 2 x total/2 items through A and B, each sent until acknowledged ("add 1").
	const total = 400
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		failures int
	)
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	var wg sync.WaitGroup
	for side, nd := range []*node{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ua := enginetest.Dial(t, "udp", nd.sip)
			for i := range total / 2 {
				key := fmt.Sprintf("item-%d-%04d", side, i)
				deadline := time.Now().Add(90 * time.Second)
				for {
					ua.Send(ua.Build(enginetest.Req{Method: "MESSAGE", Headers: []string{"X-Key: " + key}}))
					res, err := ua.RecvResponse(5 * time.Second)
					if err == nil && res.StatusCode == 200 && res.Reason == "add 1" {
						mu.Lock()
						acked[key] = true
						mu.Unlock()
						time.Sleep(15 * time.Millisecond) // paced, so that the kills happen while items flow
						break
					}
					mu.Lock()
					failures++
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
	t.Logf("SIGKILL node C after %d items and NATS server n1; %d items acknowledged so far", atKill, ackedCount())
	waitCount("the UA is halfway", 120*time.Second, func() bool { return ackedCount() >= total/2 })
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
		if !strings.HasPrefix(k, "item-") {
			t.Errorf("recorded %q, which was never sent", k)
		}
		dups += cnt - 1
	}
	if len(acked) != total {
		t.Errorf("%d of %d items acknowledged", len(acked), total)
	}
	// Nothing left behind: the stream is empty once C' acknowledged its last item.
	waitCount("the stream empties", 60*time.Second, func() bool {
		res, err := jsonrpc.Call(context.Background(), a.rpc, "mqueue.get_size", []any{"jobs"})
		return err == nil && strings.Contains(string(res), `"size":0`)
	})
	t.Logf("%d items acknowledged to the UA (%d adds refused meanwhile, retried), %d recorded, %d recorded twice (taken by C, not acknowledged, delivered again)",
		len(acked), failures, len(got), dups)
}
