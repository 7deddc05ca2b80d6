package engine_test

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/queues/queuestest"
)

// mqueue across nodes: two engines whose db_url is the same embedded NATS
// server share every dbmode=4 queue (docs/cluster.md).

const mqClusterScript = `
function ksr_request_route()
	local op, q = KSR.hdr.gete("X-Op"), KSR.hdr.gete("X-Queue")
	local mq = KSR.mqueue
	if op == "add" then
		KSR.sl.send_reply(200, "add " .. mq.mq_add(q, KSR.hdr.gete("X-Key"), KSR.hdr.gete("X-Val")))
	elseif op == "fetch" then
		local rc = mq.mq_fetch(q)
		if rc == 1 then
			KSR.sl.send_reply(200, "fetch 1 " .. mq.mqk_get(q) .. "=" .. mq.mqv_get(q))
		else
			KSR.sl.send_reply(200, "fetch " .. rc)
		end
	elseif op == "size" then
		KSR.sl.send_reply(200, "size " .. mq.mq_size(q))
	elseif op == "take" or op == "takeack" or op == "takenack" then
		local rc = mq.mq_take(q, tonumber(KSR.hdr.gete("X-Wait")) or 0)
		if rc ~= 1 then
			KSR.sl.send_reply(200, "take " .. rc)
			return
		end
		local item = mq.mqk_get(q) .. "=" .. mq.mqv_get(q)
		local settled = ""
		if op == "takeack" then settled = " ack " .. mq.mq_ack(q) .. " " .. mq.mq_ack(q) end
		if op == "takenack" then settled = " nack " .. mq.mq_nack(q) end
		KSR.sl.send_reply(200, "take 1 " .. item .. settled)
	else
		KSR.sl.send_reply(400, "Bad X-Op")
	end
end
`

func mqClusterNode(t *testing.T, url string, lines ...string) (*enginetest.Engine, *enginetest.Client) {
	t.Helper()
	cfg := mqConfig(append([]string{
		fmt.Sprintf(`modparam("mqueue", "db_url", %q)`, url),
		`modparam("mqueue", "mqueue", "name=jobs;size=4;dbmode=4")`,
		`modparam("mqueue", "mqueue", "name=local")`,
	}, lines...)...)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": mqClusterScript})
	return e, enginetest.Dial(t, "udp", e.Addr("udp"))
}

func mqDo(t *testing.T, c *enginetest.Client, op, queue string, h ...string) string {
	t.Helper()
	res := c.Do(enginetest.Req{Method: "MESSAGE", Headers: append([]string{"X-Op: " + op, "X-Queue: " + queue}, h...)}, 10*time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", op, queue, res.StatusCode, res.Reason)
	}
	return res.Reason
}

func TestMqueueClusterTwoNodes(t *testing.T) {
	srv := queuestest.NATSServer(t)
	a, ca := mqClusterNode(t, srv.ClientURL(), `modparam("mqueue", "nats_ack_wait", 800)`)
	b, cb := mqClusterNode(t, srv.ClientURL(), `modparam("mqueue", "nats_ack_wait", 800)`)
	want := func(c *enginetest.Client, op, q, reason string, h ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got := mqDo(t, c, op, q, h...)
			if got == reason {
				return
			}
			// A JetStream size is eventually consistent: an acknowledged message leaves the
			// stream a moment later.
			if op != "size" || time.Now().After(deadline) {
				t.Fatalf("%s %s = %q, want %q", op, q, got, reason)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Added on A and B, seen and fetched on either; size=4 evicts the oldest cluster-wide.
	for i := range 5 {
		c := ca
		if i%2 == 1 {
			c = cb
		}
		want(c, "add", "jobs", "add 1", fmt.Sprintf("X-Key: k%d", i), fmt.Sprintf("X-Val: v%d", i))
	}
	want(ca, "add", "local", "add 1", "X-Key: x", "X-Val: y")
	want(cb, "size", "jobs", "size 4")
	want(cb, "size", "local", "size 0")
	want(cb, "fetch", "jobs", "fetch 1 k1=v1")
	want(ca, "fetch", "jobs", "fetch 1 k2=v2")
	// take + ack on B, take + nack on A then on B.
	want(cb, "takeack", "jobs", "take 1 k3=v3 ack 1 -2")
	want(ca, "takenack", "jobs", "take 1 k4=v4 nack 1")
	want(cb, "takeack", "jobs", "take 1 k4=v4 ack 1 -2", "X-Wait: 5000")
	want(ca, "take", "jobs", "take -2", "X-Wait: 50")
	want(ca, "size", "jobs", "size 0")

	// An item taken by A, which stops before acking: B gets it after the ack wait.
	want(ca, "add", "jobs", "add 1", "X-Key: k5", "X-Val: v5")
	want(ca, "take", "jobs", "take 1 k5=v5")
	want(cb, "take", "jobs", "take -2")
	mqStop(t, a)
	want(cb, "takeack", "jobs", "take 1 k5=v5 ack 1 -2", "X-Wait: 5000")

	var st struct {
		Backend string `json:"backend"`
		NATS    struct {
			Status    string `json:"status"`
			Connected bool   `json:"connected"`
			Replicas  int    `json:"replicas"`
		} `json:"nats"`
		Queues []struct {
			Name, Backend string
			Size          int
		} `json:"queues"`
	}
	rpcResult(t, b.RPCURL(), "mqueue.backend", &st)
	if st.Backend != "jetstream" || !st.NATS.Connected || st.NATS.Status != "CONNECTED" || st.NATS.Replicas != 1 ||
		len(st.Queues) != 2 || st.Queues[0].Backend != "jetstream:KEMI_MQ_jobs" || st.Queues[1].Backend != "memory" {
		raw, _ := json.Marshal(st)
		t.Fatalf("mqueue.backend = %s", raw)
	}
}

func TestMqueueClusterConfigErrors(t *testing.T) {
	for _, c := range []struct{ name, url, queue, want string }{
		{"bad scheme in the list", "nats://127.0.0.1:4222,http://127.0.0.1:1", "name=q;dbmode=4", `modparam mqueue db_url: url "http://127.0.0.1:1": scheme "http", want nats`},
		{"no host", "nats://:4222", "name=q;dbmode=4", `modparam mqueue db_url: url "nats://:4222": no host`},
		{"dbmode 1", "nats://127.0.0.1:4222", "name=q;dbmode=1", `queue "q": dbmode 1 with a nats db_url`},
		{"addmode", "nats://127.0.0.1:4222", "name=q;dbmode=4;addmode=2", `queue "q": addmode 2 with a nats db_url`},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := mqConfig(fmt.Sprintf(`modparam("mqueue", "db_url", %q)`, c.url), `modparam("mqueue", "mqueue", "`+c.queue+`")`)
			e, err := enginetest.TryStart(t, cfg, map[string]string{"script.lua": mqClusterScript})
			if err == nil {
				mqStop(t, e)
				t.Fatal("the engine started")
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), ".cfg:") {
				t.Fatalf("error %q lacks %q and a file:line", err, c.want)
			}
		})
	}
}

// TestMqueueClusterNATSLoss: while the NATS server is down, mq_add returns
// -1 (never a silent loss), the error is logged at most once a second and
// counted in mqueue.backend; once the server is back (same port and store),
// the node reconnects and the items added before are still there.
func TestMqueueClusterNATSLoss(t *testing.T) {
	dir := t.TempDir()
	srv := queuestest.NATSServerAt(t, -1, dir)
	url := srv.ClientURL()
	_, portStr, _ := strings.Cut(strings.TrimPrefix(url, "nats://"), ":")
	var port int
	fmt.Sscan(portStr, &port)
	e, c := mqClusterNode(t, url, `modparam("mqueue", "nats_timeout", 500)`)
	if got := mqDo(t, c, "add", "jobs", "X-Key: before"); got != "add 1" {
		t.Fatalf("add = %q", got)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	for i := range 5 {
		if got := mqDo(t, c, "add", "jobs", fmt.Sprintf("X-Key: during%d", i)); got != "add -1" {
			t.Fatalf("add while NATS is down = %q, want add -1", got)
		}
	}
	if got := mqDo(t, c, "size", "jobs"); got != "size -1" {
		t.Fatalf("size while NATS is down = %q", got)
	}
	if n := strings.Count(e.Log.String(), `msg="mqueue add failed"`); n < 1 || n > 2 {
		t.Errorf("%d add errors logged for 5 failed adds within a second or two, want 1 (rate limited)", n)
	}
	var st struct {
		NATS struct {
			Connected   bool  `json:"connected"`
			Disconnects int64 `json:"disconnects"`
		} `json:"nats"`
		Errors map[string]int64 `json:"errors"`
	}
	rpcResult(t, e.RPCURL(), "mqueue.backend", &st)
	if st.NATS.Connected || st.NATS.Disconnects < 1 || st.Errors["mqueue add failed"] != 5 {
		t.Fatalf("mqueue.backend while down: %+v", st)
	}

	queuestest.NATSServerAt(t, port, dir)
	deadline := time.Now().Add(20 * time.Second)
	for mqDo(t, c, "add", "jobs", "X-Key: after") != "add 1" {
		if time.Now().After(deadline) {
			t.Fatal("adds still failing 20 s after NATS came back")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"fetch 1 before=", "fetch 1 after=", "fetch -2"} {
		if got := mqDo(t, c, "fetch", "jobs"); got != want {
			t.Fatalf("fetch = %q, want %q", got, want)
		}
	}
}

func TestMqueueClusterNATSDownAtStart(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + l.Addr().String()
	l.Close() // nothing listens there now
	cfg := mqConfig(fmt.Sprintf(`modparam("mqueue", "db_url", %q)`, url), `modparam("mqueue", "mqueue", "name=q;dbmode=4")`,
		`modparam("mqueue", "nats_start_wait", 500)`)
	e, err := enginetest.TryStart(t, cfg, map[string]string{"script.lua": mqClusterScript})
	if err == nil {
		mqStop(t, e)
		t.Fatal("the engine started without NATS")
	}
	if !strings.Contains(err.Error(), "start mqueue") || !strings.Contains(err.Error(), url) {
		t.Fatalf("error %q does not say mqueue could not reach %s", err, url)
	}
}
