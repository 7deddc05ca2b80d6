package queues_test

import (
	"context"
	"testing"
	"time"

	"kemi/queues"
	"kemi/queues/queuestest"
)

func openJS(t *testing.T, url string) *queues.JetStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	j, err := queues.OpenJetStream(ctx, url, queues.JetStreamOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func TestLeaseOneHolderAndTakeover(t *testing.T) {
	srv := queuestest.NATSServer(t)
	const ttl = 600 * time.Millisecond
	la, err := openJS(t, srv.ClientURL()).Lease("cleanup timer", "node-a", ttl)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := openJS(t, srv.ClientURL()).Lease("cleanup timer", "node-b", ttl)
	try := func(l *queues.Lease) bool {
		t.Helper()
		ok, err := l.Try(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !try(la) || try(lb) || !try(la) || try(lb) {
		t.Fatal("a takes the lease and renews it, b does not get it")
	}
	if !la.Held() || lb.Held() {
		t.Fatal("Held")
	}
	// a stops renewing (dies): b takes over once the entry expired, a then lost it.
	deadline := time.Now().Add(10 * time.Second)
	for !try(lb) {
		if time.Now().After(deadline) {
			t.Fatal("b did not take the lease over within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if try(la) {
		t.Fatal("a still holds the lease after b took it")
	}
	// A graceful release hands it over at once.
	if err := lb.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !try(la) {
		t.Fatal("a did not take the released lease")
	}
	// A holder that restarts (a new Lease, the same holder string) gets its lease back.
	la2, _ := openJS(t, srv.ClientURL()).Lease("cleanup timer", "node-a", ttl)
	if !try(la2) || try(lb) {
		t.Fatal("the restarted holder did not keep its lease")
	}
	if _, err := openJS(t, srv.ClientURL()).Lease("x", "h", time.Millisecond); err == nil {
		t.Error("a ttl of 1ms was accepted")
	}
}
