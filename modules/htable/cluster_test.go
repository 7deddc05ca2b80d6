package htable_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"kemi/queues"
	"kemi/queues/queuestest"

	"github.com/nats-io/nats-server/v2/server"
)

// Tables replicated across nodes through NATS JetStream (dmqreplicate=1
// with a nats_url, docs/cluster.md): each node is one htable module with
// its VMs, all on one embedded nats-server.

const clusterSpec = "rt=>size=4;autoexpire=60;dmqreplicate=1"

// node starts an htable module replicating through url.
func node(tb testing.TB, url string, specs ...string) *fixture {
	tb.Helper()
	if len(specs) == 0 {
		specs = []string{clusterSpec}
	}
	f := newFixture(tb, specs...)
	f.m.Settings().NATSURL = url
	f.m.Settings().NATSStartWait = 20 * time.Second
	if err := f.m.Start(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.m.Stop(context.Background()) })
	return f
}

// get reads key of table rt on f's table: its value as Lua would see it
// ("s:..." or "i:N"), or "nil".
func get(f *fixture, key string) string {
	it, ok := f.m.Table("rt").Get(key, f.clock.Now().Unix(), nil)
	switch {
	case !ok:
		return "nil"
	case it.IsStr:
		return "s:" + it.Str
	}
	return "i:" + strconv.Itoa(int(it.Int))
}

// await waits until get(f, key) is want.
func await(tb testing.TB, f *fixture, key, want string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := get(f, key)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("key %q: %s, want %s after 30 s", key, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// kv opens the bucket of table rt as a plain NATS client sees it.
func kv(tb testing.TB, url string) jetstream.KeyValue {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	b, err := js.KeyValue(tb.Context(), queues.ReplicaBucket("rt"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestClusterReplicatesEveryChange(t *testing.T) {
	srv := queuestest.NATSServer(t)
	a, b := node(t, srv.ClientURL()), node(t, srv.ClientURL())
	va, vb := a.vm("a", ""), b.vm("b", "")
	h := "KSR.htable."

	// Sets and their types, keys with any bytes.
	for _, k := range []string{"k", "sip:alice@example.com;tag=x y", "", "ü.*>_5F"} {
		va.run(h + `sht_sets("rt", ` + strconv.Quote(k) + `, "v-` + k + `")`)
		await(t, b, k, "s:v-"+k)
	}
	vb.run(h + `sht_seti("rt", "n", 41)`)
	await(t, a, "n", "i:41")
	if got := va.run(`return ` + h + `sht_inc("rt", "n")`); !same(got, vals(42)) {
		t.Fatalf("sht_inc on a: %v", got)
	}
	await(t, b, "n", "i:42")
	vb.run(h + `sht_dec("rt", "n")`)
	await(t, a, "n", "i:41")
	// $sht assignment and $shtinc go through the same table functions.
	va.run(`KSR.pv.sets("$sht(rt=>pv)", "x")`)
	await(t, b, "pv", "s:x")
	vb.run(`KSR.pv.seti("$sht(rt=>pv)", 7); local _ = KSR.pv.get("$shtinc(rt=>pv)")`)
	await(t, a, "pv", "i:8")

	// Expiry changes: sht_setex and sht_setxs carry the absolute expiry.
	va.run(h + `sht_setex("rt", "k", 500)`)
	want := a.clock.Now().Unix() + 500
	deadline := time.Now().Add(30 * time.Second)
	for {
		it, _ := b.m.Table("rt").Get("k", b.clock.Now().Unix(), nil)
		if it.Expire == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expiry on b: %d, want %d", it.Expire, want)
		}
		time.Sleep(time.Millisecond)
	}
	vb.run(h + `sht_setxs("rt", "x", "tmp", 5)`)
	await(t, a, "x", "s:tmp")

	// Deletes: sht_rm, $sht = nil, sht_rm_name_re, sht_rm_value (sw).
	vb.run(h + `sht_rm("rt", "k")`)
	await(t, a, "k", "nil")
	va.run(`KSR.pv.unset("$sht(rt=>pv)")`)
	await(t, b, "pv", "nil")
	va.run(h + `sht_sets("rt", "re1", "a"); ` + h + `sht_sets("rt", "re2", "b"); ` + h + `sht_sets("rt", "keep", "swx")`)
	await(t, b, "keep", "s:swx")
	vb.run(h + `sht_rm_name_re("rt", "^re[0-9]$")`)
	await(t, a, "re1", "nil")
	await(t, a, "re2", "nil")
	va.run(h + `sht_rm_value("rt", "sw", "sw")`)
	await(t, b, "keep", "nil")

	// An iterator's changes replicate too.
	va.run(h + `sht_seti("rt", "it", 1)`)
	await(t, b, "it", "i:1")
	vb.run(`KSR.htable.sht_iterator_start("i", "rt")
		while KSR.htable.sht_iterator_next("i") == 1 do
			if KSR.pv.get("$shtitkey(i)") == "it" then KSR.htable.sht_iterator_seti("i", 99) end
		end
		KSR.htable.sht_iterator_end("i")`)
	await(t, a, "it", "i:99")

	// sht_reset empties the table on every node (Kamailio's DMQ does not
	// replicate it: docs/cluster.md).
	vb.run(h + `sht_reset("rt")`)
	await(t, a, "n", "nil")
	await(t, a, "it", "nil")
	if n := a.m.Table("rt").Len(); n != 0 {
		deadline := time.Now().Add(30 * time.Second)
		for a.m.Table("rt").Len() != 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if n := a.m.Table("rt").Len(); n != 0 {
			t.Fatalf("a has %d items after b's sht_reset", n)
		}
	}
}

// A node that starts later loads the bucket's content before Start
// returns, as DMQ's sync; a table without dmqreplicate stays local.
func TestClusterLateJoinerAndLocalTables(t *testing.T) {
	srv := queuestest.NATSServer(t)
	specs := []string{clusterSpec, "loc=>size=2"}
	a := node(t, srv.ClientURL(), specs...)
	va := a.vm("a", "")
	for i := range 50 {
		va.run(fmt.Sprintf(`KSR.htable.sht_seti("rt", "k%d", %d)`, i, i))
	}
	va.run(`KSR.htable.sht_sets("rt", "s", "str"); KSR.htable.sht_rm("rt", "k7"); KSR.htable.sht_sets("loc", "l", "1")`)
	if err := a.m.Table("rt").Replica().Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := node(t, srv.ClientURL(), specs...)
	for i := range 50 {
		want := "i:" + strconv.Itoa(i)
		if i == 7 {
			want = "nil"
		}
		if got := get(c, "k"+strconv.Itoa(i)); got != want {
			t.Fatalf("late joiner: k%d = %s, want %s", i, got, want)
		}
	}
	if got := get(c, "s"); got != "s:str" {
		t.Fatalf("late joiner: s = %s", got)
	}
	if c.m.Table("loc").Len() != 0 || c.m.Table("loc").Replica() != nil {
		t.Fatal("a table without dmqreplicate was replicated")
	}
}

// No echo: each change is written to the bucket once, by the node that
// made it; a node applying another's change does not write it again. A
// node's own burst is not undone by its changes coming back.
func TestClusterNoEchoAndOwnWrites(t *testing.T) {
	srv := queuestest.NATSServer(t)
	a, b := node(t, srv.ClientURL()), node(t, srv.ClientURL())
	va, vb := a.vm("a", ""), b.vm("b", "")
	const n = 500
	va.run(`KSR.htable.sht_seti("rt", "c", 0)`)
	got := va.run(fmt.Sprintf(`local v; for i = 1, %d do v = KSR.htable.sht_inc("rt", "c") end; return v`, n))
	if !same(got, vals(n)) {
		t.Fatalf("a's own increments: %v, want %d", got, n)
	}
	await(t, b, "c", "i:"+strconv.Itoa(n))
	vb.run(fmt.Sprintf(`for i = 1, %d do KSR.htable.sht_inc("rt", "c") end`, n))
	await(t, a, "c", "i:"+strconv.Itoa(2*n))
	for _, f := range []*fixture{a, b} {
		if err := f.m.Table("rt").Replica().Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// 1 + 2n changes in all: the bucket's stream has exactly that many
	// revisions (a node applying another's change does not write it), each
	// node's own acknowledged.
	st, err := kv(t, srv.ClientURL()).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	info := st.(*jetstream.KeyValueBucketStatus).StreamInfo()
	if want := uint64(1 + 2*n); info.State.LastSeq != want {
		t.Fatalf("bucket has %d revisions, want %d (one per change)", info.State.LastSeq, want)
	}
	for i, f := range []*fixture{a, b} {
		want := []int64{1 + n, n}[i]
		if s := f.m.Table("rt").Replica().State(); s.Acked != want || s.Failed != 0 {
			t.Fatalf("node %d: replica state %+v, want %d acked, 0 failed", i, s, want)
		}
	}
}

// Two nodes writing the same key at once end with the same value: the
// bucket's last (last writer wins).
func TestClusterConcurrentWritersConverge(t *testing.T) {
	srv := queuestest.NATSServer(t)
	a, b := node(t, srv.ClientURL()), node(t, srv.ClientURL())
	va, vb := a.vm("a", ""), b.vm("b", "")
	va.run(`KSR.htable.sht_seti("rt", "n", 0)`)
	await(t, b, "n", "i:0")
	done := make(chan struct{})
	go func() {
		defer close(done)
		vb.run(`for i = 1, 300 do KSR.htable.sht_sets("rt", "k", "b" .. i); KSR.htable.sht_inc("rt", "n") end`)
	}()
	va.run(`for i = 1, 300 do KSR.htable.sht_sets("rt", "k", "a" .. i) end`)
	<-done
	e, err := waitLast(t, kv(t, srv.ClientURL()), "k")
	if err != nil {
		t.Fatal(err)
	}
	want := "s:" + e
	await(t, a, "k", want)
	await(t, b, "k", want)
}

// waitLast waits until both writers' changes are in the bucket and returns
// key's last value there.
func waitLast(t *testing.T, b jetstream.KeyValue, key string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		e, err := b.Get(t.Context(), key)
		if err != nil && err != jetstream.ErrKeyNotFound {
			return "", err
		}
		var v []byte
		if err == nil {
			v = e.Value()[13:] // after the cell's header
		}
		if s := string(v); s == "a300" || s == "b300" {
			// The other writer may still be behind: wait for the stream to
			// hold both last changes (600 sets, 300 incs, 1 seti).
			st, _ := b.Status(t.Context())
			if st.(*jetstream.KeyValueBucketStatus).StreamInfo().State.LastSeq == 901 {
				e, err = b.Get(t.Context(), key)
				if err != nil {
					return "", err
				}
				return string(e.Value()[13:]), nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("the writers' changes did not reach the bucket within 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Autoexpire works across nodes: each node expires its copy on its clock,
// and the bucket loses the item too (one node's delete wins).
func TestClusterAutoexpire(t *testing.T) {
	srv := queuestest.NATSServer(t)
	spec := "rt=>size=4;autoexpire=10;dmqreplicate=1"
	a, b := node(t, srv.ClientURL(), spec), node(t, srv.ClientURL(), spec)
	a.vm("a", "").run(`KSR.htable.sht_sets("rt", "gone", "soon")`)
	await(t, b, "gone", "s:soon")
	a.clock.Advance(11 * time.Second)
	b.clock.Advance(11 * time.Second)
	if get(a, "gone") != "nil" || get(b, "gone") != "nil" {
		t.Fatal("the expired item is still readable")
	}
	if a.m.Sweep() != 1 || b.m.Sweep() != 1 {
		t.Fatal("each node's sweep removes its copy")
	}
	bucket := kv(t, srv.ClientURL())
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := bucket.Get(t.Context(), "gone")
		if err == jetstream.ErrKeyNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired item is still in the bucket: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A node joining now does not get it back.
	c := node(t, srv.ClientURL(), spec)
	if c.m.Table("rt").Len() != 0 {
		t.Fatal("a late joiner loaded an expired item")
	}
}

// A NATS restart (same port, same store) is survived: writes made while it
// is down stay local (counted) until it is back, then are sent again; the
// nodes replicate again and a late joiner sees what was stored before the
// restart and since.
func TestClusterNATSRestart(t *testing.T) {
	dir := t.TempDir()
	srv := queuestest.NATSServerAt(t, -1, dir)
	u, _ := url.Parse(srv.ClientURL())
	port, _ := strconv.Atoi(u.Port())
	a, b := node(t, srv.ClientURL()), node(t, srv.ClientURL())
	va := a.vm("a", "")
	va.run(`KSR.htable.sht_sets("rt", "before", "1")`)
	await(t, b, "before", "s:1")

	srv.Shutdown()
	srv.WaitForShutdown()
	if got := va.run(`return KSR.htable.sht_sets("rt", "during", "x")`); !same(got, vals(1)) {
		t.Fatalf("sht_sets while NATS is down: %v", got)
	}
	if get(a, "during") != "s:x" {
		t.Fatal("the local write was lost")
	}

	queuestest.NATSServerAt(t, port, dir)
	restarted := time.Now()
	// Writes replicate again (the nodes reconnect and their watches resume).
	deadline := time.Now().Add(60 * time.Second)
	for i := 0; ; i++ {
		v := strconv.Itoa(i)
		va.run(`KSR.htable.sht_sets("rt", "after", "` + v + `")`)
		if waitFor(b, "after", "s:"+v, 200*time.Millisecond) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no replication within 60 s of the NATS restart")
		}
	}
	t.Logf("replicating again %v after the NATS restart", time.Since(restarted).Round(time.Millisecond))
	await(t, b, "during", "s:x")
	b.vm("b", "").run(`KSR.htable.sht_sets("rt", "fromb", "y")`)
	await(t, a, "fromb", "s:y")
	if st := a.m.Table("rt").Replica().State(); st.Failed == 0 {
		t.Errorf("the write made while NATS was down was not counted as failed: %+v", st)
	}
	c := node(t, srv.ClientURL())
	if get(c, "before") != "s:1" || get(c, "fromb") != "s:y" || get(c, "during") != "s:x" {
		t.Fatalf("late joiner after the restart: before=%s during=%s fromb=%s", get(c, "before"), get(c, "during"), get(c, "fromb"))
	}
	if st := a.m.Table("rt").Replica().State(); st.Rewatch == 0 {
		t.Errorf("the watch was not started again after the reconnection: %+v", st)
	}
}

func waitFor(f *fixture, key, want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if get(f, key) == want {
			return true
		}
		time.Sleep(time.Millisecond)
	}
	return false
}

// Three nodes on a 3-server JetStream cluster, R3 buckets: the loss of one
// server is survived (the nodes connected to it reconnect to another and
// watch again), and every node converges.
func TestClusterR3ServerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	servers, urls := queuestest.NATSCluster(t, 3)
	began := time.Now()
	nodes := make([]*fixture, 3)
	for i := range nodes {
		f := newFixture(t, clusterSpec)
		f.m.Settings().NATSURL = urls
		f.m.Settings().NATSReplicas = 3
		f.m.Settings().NATSStartWait = 60 * time.Second
		if err := f.m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.m.Stop(context.Background()) })
		nodes[i] = f
	}
	vms := []*vm{nodes[0].vm("a", ""), nodes[1].vm("b", ""), nodes[2].vm("c", "")}
	vms[0].run(`KSR.htable.sht_sets("rt", "k", "a")`)
	await(t, nodes[1], "k", "s:a")
	await(t, nodes[2], "k", "s:a")

	t.Logf("three nodes up and replicating in %v", time.Since(began).Round(time.Millisecond))
	// The client picks one server of its list at random: shut down the one
	// node a is connected to.
	connected := nodes[0].m.NATS().State().Server
	var lost *server.Server
	for _, s := range servers {
		if s.ClientURL() == connected {
			lost = s
		}
	}
	if lost == nil {
		t.Fatalf("node a is connected to %q, not one of %s", connected, urls)
	}
	lost.Shutdown()
	lost.WaitForShutdown()
	lostAt := time.Now()
	// Writes on every node, retried until they go through (a leader may
	// be elected again meanwhile): then all three converge.
	deadline := time.Now().Add(60 * time.Second)
	for i, v := range vms {
		for try := 0; ; try++ {
			val := fmt.Sprintf("n%d-%d", i, try)
			v.run(`KSR.htable.sht_sets("rt", "k` + strconv.Itoa(i) + `", "` + val + `")`)
			ok := true
			for _, f := range nodes {
				ok = ok && waitFor(f, "k"+strconv.Itoa(i), "s:"+val, 500*time.Millisecond)
			}
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d's write not replicated within 60 s of the server loss", i)
			}
		}
	}
	t.Logf("every node's write replicated %v after the server loss", time.Since(lostAt).Round(time.Millisecond))
	// Node a reconnected to another server: it watches the bucket again.
	for st := nodes[0].m.Table("rt").Replica().State(); st.Rewatch == 0; st = nodes[0].m.Table("rt").Replica().State() {
		if time.Now().After(deadline) {
			t.Fatalf("node a did not watch again after its server died: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
