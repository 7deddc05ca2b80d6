package queues_test

import (
	"fmt"
	"testing"
	"time"

	"kemi/queues"
	"kemi/queues/queuestest"
)

// TestJetStreamR3SurvivesServerLoss: a 3-server cluster, R3 stream, two nodes. The stream
// leader is shut down while items are added: adds fail (never silently) until a new leader
// is elected, then succeed; every acknowledged item is fetched exactly once, or at most
// twice when an add failed and was retried (a publish that timed out may still have been
// stored: the retry is then a second copy, at-least-once on the producer's side).
func TestJetStreamR3SurvivesServerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	servers, urls := queuestest.NATSCluster(t, 3)
	o := queues.Options{Name: "jobs", DBMode: queues.DBModeDurable}
	jo := queues.JetStreamOptions{Replicas: 3, Timeout: time.Second}
	a := jsNode(t, urls, jo, o).Get("jobs")
	b := jsNode(t, urls, jo, o).Get("jobs")

	acked, retried := map[string]bool{}, map[string]bool{}
	add := func(q *queues.Queue, key string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for err := q.Add(key, "v"); err != nil; err = q.Add(key, "v") {
			t.Logf("add %q: %v", key, err)
			retried[key] = true
			if time.Now().After(deadline) {
				t.Fatalf("add %q failing for 60 s", key)
			}
			time.Sleep(50 * time.Millisecond)
		}
		acked[key] = true
	}
	for i := range 50 {
		add(a, fmt.Sprint("a", i))
	}
	stopped := false
	for _, s := range servers {
		if s.JetStreamIsStreamLeader("$G", queues.StreamName("jobs")) {
			s.Shutdown()
			stopped = true
			break
		}
	}
	if !stopped {
		t.Fatal("no stream leader found")
	}
	for i := range 50 {
		add(b, fmt.Sprint("b", i))
	}
	got := map[string]int{}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if n, _ := a.Size(); n == 0 && len(got) >= len(acked) {
			break
		}
		it, err := a.Fetch()
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		got[it.Key]++
	}
	for k := range acked {
		if got[k] != 1 && !(retried[k] && got[k] == 2) {
			t.Errorf("%q fetched %d times", k, got[k])
		}
	}
	wantSize(t, b, 0)
}
