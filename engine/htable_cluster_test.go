package engine_test

import (
	"fmt"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/queues/queuestest"
)

// htable across nodes: tables with dmqreplicate=1 are replicated through a
// NATS JetStream key-value bucket, on mqueue's nats:// db_url connection
// (the engine's hook) or on htable's own nats_url (docs/cluster.md).

const htClusterScript = `
function ksr_request_route()
	local op, k = KSR.hdr.gete("X-Op"), KSR.hdr.gete("X-Key")
	if op == "set" then
		KSR.sl.send_reply(200, "set " .. KSR.htable.sht_sets("rt", k, KSR.hdr.gete("X-Val")))
	elseif op == "inc" then
		KSR.sl.send_reply(200, "inc " .. KSR.htable.sht_inc("rt", k))
	elseif op == "get" then
		KSR.sl.send_reply(200, "get " .. tostring(KSR.htable.sht_get("rt", k)) .. " " .. tostring(KSR.htable.sht_get("loc", k)))
	else
		KSR.sl.send_reply(400, "Bad X-Op")
	end
end
`

func htClusterNode(t *testing.T, lines ...string) (*enginetest.Engine, *enginetest.Client) {
	t.Helper()
	cfg := enginetest.Config(append([]string{
		`loadmodule "htable.so"`,
		`modparam("htable", "htable", "rt=>size=4;initval=0;dmqreplicate=1")`,
		`modparam("htable", "htable", "loc=>size=2")`,
	}, lines...)...)
	e := enginetest.Start(t, cfg, map[string]string{"script.lua": htClusterScript})
	return e, enginetest.Dial(t, "udp", e.Addr("udp"))
}

func htDo(t *testing.T, c *enginetest.Client, op, key string, h ...string) string {
	t.Helper()
	res := c.Do(enginetest.Req{Method: "MESSAGE", Headers: append([]string{"X-Op: " + op, "X-Key: " + key}, h...)}, enginetest.Patience)
	if res.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", op, key, res.StatusCode, res.Reason)
	}
	return res.Reason
}

func htWait(t *testing.T, c *enginetest.Client, key, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := htDo(t, c, "get", key)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("get %s = %q, want %q", key, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHtableClusterTwoNodes(t *testing.T) {
	srv := queuestest.NATSServer(t)
	for _, c := range []struct{ name, line string }{
		{"mqueue's db_url", fmt.Sprintf("loadmodule \"mqueue.so\"\nmodparam(\"mqueue\", \"db_url\", %q)", srv.ClientURL())},
		{"htable's nats_url", fmt.Sprintf("modparam(\"htable\", \"nats_url\", %q)", srv.ClientURL())},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, a := htClusterNode(t, c.line)
			eb, b := htClusterNode(t, c.line)
			key := "alice@" + c.name
			if got := htDo(t, a, "set", key, "X-Val: v1"); got != "set 1" {
				t.Fatal(got)
			}
			htWait(t, b, key, "get v1 nil")
			n := htDo(t, b, "inc", "n-"+c.name)
			htWait(t, a, "n-"+c.name, "get "+n[len("inc "):]+" nil")

			var st struct {
				NATS *struct {
					Connected bool `json:"connected"`
				} `json:"nats"`
				Tables []struct {
					Name   string `json:"name"`
					Bucket string `json:"bucket"`
					Acked  int    `json:"acked"`
				} `json:"tables"`
			}
			rpcResult(t, eb.RPCURL(), "htable.cluster", &st)
			own := c.name == "htable's nats_url" // its own connection, shown
			if len(st.Tables) != 1 || st.Tables[0].Name != "rt" || st.Tables[0].Bucket != "KEMI_HT_rt" || st.Tables[0].Acked != 1 ||
				(st.NATS != nil) != own || (own && !st.NATS.Connected) {
				t.Fatalf("htable.cluster = %+v", st)
			}
		})
	}
}

// Without a nats:// URL, dmqreplicate is ignored (with a notice): a
// Kamailio configuration runs, each node on its own.
func TestHtableDMQReplicateWithoutNATS(t *testing.T) {
	_, a := htClusterNode(t)
	if got := htDo(t, a, "set", "k", "X-Val: v"); got != "set 1" {
		t.Fatal(got)
	}
	if got := htDo(t, a, "get", "k"); got != "get v nil" {
		t.Fatal(got)
	}
}
