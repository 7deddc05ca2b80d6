package queues_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"kemi/queues"
	"kemi/queues/queuestest"
)

// jsNode is one kemi node: a registry whose durable queues are streams on the server at url.
func jsNode(t *testing.T, url string, o queues.JetStreamOptions, opts ...queues.Options) *queues.Registry {
	t.Helper()
	reg, err := queues.NewRegistry(opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	j, err := queues.OpenJetStream(ctx, url, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	if err := reg.Connect(ctx, j); err != nil {
		t.Fatal(err)
	}
	return reg
}

func mustAdd(t *testing.T, q *queues.Queue, key, val string) {
	t.Helper()
	if err := q.Add(key, val); err != nil {
		t.Fatalf("add %q: %v", key, err)
	}
}

func wantFetch(t *testing.T, q *queues.Queue, want queues.Item) {
	t.Helper()
	it, err := q.Fetch()
	if err != nil || it != want {
		t.Fatalf("fetch = %+v, %v; want %+v", it, err, want)
	}
}

// wantSize waits up to 5 s for the queue's size to be want: a JetStream queue's size is
// eventually consistent (an acknowledged message leaves the stream a moment later).
func wantSize(t *testing.T, q *queues.Queue, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := q.Size()
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("size = %d, %v; want %d", n, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestJetStreamSharedAcrossNodes(t *testing.T) {
	srv := queuestest.NATSServer(t)
	opts := []queues.Options{{Name: "jobs", DBMode: queues.DBModeDurable}, {Name: "local"}}
	a := jsNode(t, srv.ClientURL(), queues.JetStreamOptions{}, opts...)
	b := jsNode(t, srv.ClientURL(), queues.JetStreamOptions{}, opts...)
	if got := a.Get("jobs").Backend(); got != "jetstream:KEMI_MQ_jobs" {
		t.Errorf("backend = %q", got)
	}
	if got := a.Get("local").Backend(); got != "memory" {
		t.Errorf("local backend = %q", got)
	}
	mustAdd(t, a.Get("jobs"), "k1", "v1")
	mustAdd(t, a.Get("jobs"), "", "v2")
	mustAdd(t, b.Get("jobs"), "k3", "")
	mustAdd(t, a.Get("local"), "only", "a")
	wantSize(t, b.Get("jobs"), 3)
	wantSize(t, b.Get("local"), 0)
	if got := a.Get("jobs").Snapshot(); len(got) != 3 || got[0] != (queues.Item{Key: "k1", Val: "v1"}) {
		t.Errorf("snapshot = %+v", got)
	}
	wantFetch(t, b.Get("jobs"), queues.Item{Key: "k1", Val: "v1"})
	wantFetch(t, a.Get("jobs"), queues.Item{Key: "", Val: "v2"})
	wantFetch(t, b.Get("jobs"), queues.Item{Key: "k3", Val: ""})
	if _, err := a.Get("jobs").Fetch(); err != queues.ErrEmpty {
		t.Fatalf("fetch from empty = %v, want ErrEmpty", err)
	}
	wantSize(t, a.Get("jobs"), 0)
}

func TestJetStreamEvictsOldestClusterWide(t *testing.T) {
	srv := queuestest.NATSServer(t)
	o := queues.Options{Name: "q q/1.x", Size: 3, DBMode: queues.DBModeDurable}
	a := jsNode(t, srv.ClientURL(), queues.JetStreamOptions{}, o)
	b := jsNode(t, srv.ClientURL(), queues.JetStreamOptions{}, o)
	for i := range 5 {
		node := a
		if i%2 == 1 {
			node = b
		}
		mustAdd(t, node.Get(o.Name), fmt.Sprint("k", i), fmt.Sprint("v", i))
	}
	wantSize(t, a.Get(o.Name), 3)
	for i := 2; i < 5; i++ {
		wantFetch(t, b.Get(o.Name), queues.Item{Key: fmt.Sprint("k", i), Val: fmt.Sprint("v", i)})
	}
}

func TestJetStreamTakeAckNackRedelivery(t *testing.T) {
	srv := queuestest.NATSServer(t)
	o := queues.Options{Name: "work", DBMode: queues.DBModeDurable}
	jo := queues.JetStreamOptions{AckWait: 700 * time.Millisecond}
	a := jsNode(t, srv.ClientURL(), jo, o)
	b := jsNode(t, srv.ClientURL(), jo, o)
	qa, qb := a.Get("work"), b.Get("work")

	// An empty queue: take waits, then ErrEmpty.
	start := time.Now()
	if _, err := qa.Take(t.Context(), 100*time.Millisecond); err != queues.ErrEmpty {
		t.Fatalf("take from empty = %v", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("take returned after %v, want the wait", d)
	}

	// A take waiting on B gets an item added on A.
	got := make(chan *queues.Taken, 1)
	go func() {
		tk, err := qb.Take(context.Background(), 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- tk
	}()
	time.Sleep(50 * time.Millisecond)
	mustAdd(t, qa, "k1", "v1")
	tk := <-got
	if tk == nil || tk.Item != (queues.Item{Key: "k1", Val: "v1"}) {
		t.Fatalf("taken %+v", tk)
	}
	// Not acknowledged: A cannot take it, until the ack wait expires (the "node" B died).
	if _, err := qa.Take(t.Context(), 0); err != queues.ErrEmpty {
		t.Fatalf("take of a taken item = %v, want ErrEmpty", err)
	}
	wantSize(t, qa, 1) // still in the stream
	again, err := qa.Take(t.Context(), 10*time.Second)
	if err != nil || again.Item != tk.Item {
		t.Fatalf("redelivered %+v, %v", again, err)
	}
	if err := again.Ack(); err != nil {
		t.Fatal(err)
	}
	if err := again.Ack(); !errors.Is(err, queues.ErrSettled) {
		t.Errorf("second ack = %v", err)
	}
	wantSize(t, qa, 0)
	if _, err := qb.Take(t.Context(), 1200*time.Millisecond); err != queues.ErrEmpty {
		t.Fatalf("an acknowledged item came back: %v", err)
	}

	// Nack: delivered again at once, to the other node.
	mustAdd(t, qa, "k2", "v2")
	tk, err = qa.Take(t.Context(), 5*time.Second) // the consumer may see the item a little after the publish ack
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Nack(); err != nil {
		t.Fatal(err)
	}
	tk, err = qb.Take(t.Context(), 5*time.Second)
	if err != nil || tk.Item != (queues.Item{Key: "k2", Val: "v2"}) {
		t.Fatalf("after nack: %+v, %v", tk, err)
	}
	if err := tk.Ack(); err != nil {
		t.Fatal(err)
	}
	wantSize(t, qb, 0)
}

func TestJetStreamConnectionLoss(t *testing.T) {
	dir := t.TempDir()
	srv := queuestest.NATSServerAt(t, -1, dir)
	port := srv.Addr().(interface{ String() string }).String()
	_, port, _ = strings.Cut(port, ":")
	o := queues.Options{Name: "jobs", DBMode: queues.DBModeDurable}
	a := jsNode(t, srv.ClientURL(), queues.JetStreamOptions{Timeout: 500 * time.Millisecond}, o)
	q := a.Get("jobs")
	mustAdd(t, q, "k1", "before")

	srv.Shutdown()
	srv.WaitForShutdown()
	if err := q.Add("k2", "during"); err == nil {
		t.Fatal("add while the server is down returned nil")
	}
	if _, err := q.Size(); err == nil {
		t.Fatal("size while the server is down returned no error")
	}

	var p int
	fmt.Sscan(port, &p)
	queuestest.NATSServerAt(t, p, dir)
	deadline := time.Now().Add(20 * time.Second)
	for q.Add("k3", "after") != nil {
		if time.Now().After(deadline) {
			t.Fatal("add still failing 20 s after the server came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	wantFetch(t, q, queues.Item{Key: "k1", Val: "before"})
	wantFetch(t, q, queues.Item{Key: "k3", Val: "after"})
	if _, err := q.Fetch(); err != queues.ErrEmpty {
		t.Fatalf("the failed add was stored: %v", err)
	}
}

func TestJetStreamRefusesAddMode(t *testing.T) {
	srv := queuestest.NATSServer(t)
	reg, _ := queues.NewRegistry(queues.Options{Name: "q", DBMode: queues.DBModeDurable, AddMode: queues.AddModeKeepOldest})
	j, err := queues.OpenJetStream(t.Context(), srv.ClientURL(), queues.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := reg.Connect(t.Context(), j); err == nil || !strings.Contains(err.Error(), "addmode") {
		t.Fatalf("connect = %v", err)
	}
}

func TestParseNATSURLs(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{in: "nats://127.0.0.1:4222", want: "nats://127.0.0.1:4222"},
		{in: " nats://127.0.0.1:4222 , nats://127.0.0.1:4223", want: "nats://127.0.0.1:4222,nats://127.0.0.1:4223"},
		{in: "nats://u:secret@127.0.0.1:4222", want: "nats://u:secret@127.0.0.1:4222"},
		{in: "nats://127.0.0.1:4222,", err: "empty url"},
		{in: "nats://127.0.0.1:4222,http://x:1", err: `scheme "http"`},
		{in: "nats://:4222", err: "no host"},
		{in: "nats://127.0.0.1:99999", err: "bad port"},
		{in: "nats://u:secret@127.0.0.1:4222/db", err: "only nats://host:port"},
		{in: "nats://u:secret@127.0.0.1:port", err: `url "nats://xxxxx@127.0.0.1:port": invalid port ":port" after host`},
	} {
		got, err := queues.ParseNATSURLs(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("%q: err = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q = %q, %v", c.in, got, err)
		}
	}
	if !queues.IsNATSURL("nats://a:1") || queues.IsNATSURL("sqlite:///x.db") || queues.IsNATSURL("/x.db") {
		t.Error("IsNATSURL")
	}
}

func TestStreamNameDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, n := range []string{"a", "A", "a.b", "a_2Eb", "a b", "a/b", "a*", "é", "_"} {
		s := queues.StreamName(n)
		if strings.ContainsAny(s, " .*>/\\") {
			t.Errorf("%q: stream %q has a forbidden character", n, s)
		}
		if prev, ok := seen[s]; ok {
			t.Errorf("%q and %q both give %q", n, prev, s)
		}
		seen[s] = n
	}
}
