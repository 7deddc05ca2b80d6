package queues_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"kemi/queues"
	"kemi/queues/queuestest"
)

// entries collects what a Replica applies.
type entries struct {
	mu   sync.Mutex
	last map[string]queues.ReplicaEntry
	acks map[string]uint64
}

func (e *entries) apply(x queues.ReplicaEntry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.last[x.Key] = x
}

func (e *entries) ack(key string, rev uint64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.acks[key] = rev
}

func (e *entries) wait(t *testing.T, key string, ok func(queues.ReplicaEntry) bool) queues.ReplicaEntry {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		e.mu.Lock()
		x, found := e.last[key]
		e.mu.Unlock()
		if found && ok(x) {
			return x
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %q: last entry %+v (found %v)", key, x, found)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestReplicaPutDeleteExpire(t *testing.T) {
	srv := queuestest.NATSServer(t)
	open := func() (*queues.Replica, *entries) {
		e := &entries{last: map[string]queues.ReplicaEntry{}, acks: map[string]uint64{}}
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		r, err := openJS(t, srv.ClientURL()).Replicate(ctx, "calls", queues.ReplicaOptions{OnAck: e.ack}, e.apply)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r, e
	}
	r1, e1 := open()
	_, e2 := open()
	key := "sip:bob@example.com;x=1"
	if err := r1.Put(key, []byte("v1")); err != nil {
		t.Fatal(err)
	}
	got := e2.wait(t, key, func(x queues.ReplicaEntry) bool { return string(x.Value) == "v1" })
	if err := r1.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	e1.mu.Lock()
	ack := e1.acks[key]
	e1.mu.Unlock()
	if got.Deleted || got.Rev == 0 || ack != got.Rev {
		t.Fatalf("entry %+v, ack revision %d: want the same revision", got, ack)
	}
	// Expire with a stale revision changes nothing; with the current one it deletes.
	if err := r1.Put(key, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	v2 := e2.wait(t, key, func(x queues.ReplicaEntry) bool { return string(x.Value) == "v2" })
	if err := r1.Expire(key, got.Rev); err != nil {
		t.Fatal(err)
	}
	if err := r1.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r1.Expire(key, v2.Rev); err != nil {
		t.Fatal(err)
	}
	del := e2.wait(t, key, func(x queues.ReplicaEntry) bool { return x.Deleted })
	if del.Rev != v2.Rev+1 {
		t.Fatalf("the stale Expire wrote something: delete at revision %d, v2 at %d", del.Rev, v2.Rev)
	}
	// A late opener gets the current state (the delete marker) before Replicate returns.
	if err := r1.Put("other", nil); err != nil {
		t.Fatal(err)
	}
	if err := r1.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, e3 := open()
	e3.mu.Lock()
	x, y := e3.last[key], e3.last["other"]
	e3.mu.Unlock()
	if !x.Deleted || y.Deleted || y.Value == nil || len(y.Value) != 0 {
		t.Fatalf("late opener: %+v %+v", x, y)
	}
	if st := r1.State(); st.Bucket != "KEMI_HT_calls" || st.Acked != 3 || st.Failed != 0 {
		t.Fatalf("state %+v", st)
	}
}
