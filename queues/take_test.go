package queues_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"kemi/queues"
)

func TestTakeInMemory(t *testing.T) {
	reg, _ := queues.NewRegistry(queues.Options{Name: "q", Size: 2}, queues.Options{Name: "n", AddMode: queues.AddModeKeepNewest})
	q := reg.Get("q")
	if _, err := q.Take(t.Context(), 0); err != queues.ErrEmpty {
		t.Fatalf("take from empty = %v", err)
	}
	mustAdd(t, q, "k1", "v1")
	mustAdd(t, q, "k2", "v2")
	tk, err := q.Take(t.Context(), 0)
	if err != nil || tk.Item != (queues.Item{Key: "k1", Val: "v1"}) {
		t.Fatalf("take = %+v, %v", tk, err)
	}
	wantSize(t, q, 1)
	if err := tk.Nack(); err != nil {
		t.Fatal(err)
	}
	if err := tk.Nack(); !errors.Is(err, queues.ErrSettled) {
		t.Errorf("second nack = %v", err)
	}
	if got := q.Snapshot(); len(got) != 2 || got[0].Key != "k1" || got[1].Key != "k2" {
		t.Fatalf("after nack: %+v, want k1 back at the head", got)
	}
	// Full meanwhile: the put-back item is the oldest and is dropped.
	tk, _ = q.Take(t.Context(), 0)
	mustAdd(t, q, "k3", "v3")
	tk.Nack()
	if got := q.Snapshot(); len(got) != 2 || got[0].Key != "k2" || got[1].Key != "k3" {
		t.Fatalf("nack into a full queue: %+v", got)
	}
	// Keep newest: a newer item with the key wins over the put-back one.
	n := reg.Get("n")
	mustAdd(t, n, "k", "old")
	tk, _ = n.Take(t.Context(), 0)
	mustAdd(t, n, "k", "new")
	tk.Nack()
	if got := n.Snapshot(); len(got) != 1 || got[0].Val != "new" {
		t.Fatalf("keep newest after nack: %+v", got)
	}
	// A waiting take sees an item added meanwhile.
	go func() { time.Sleep(30 * time.Millisecond); n.Add("w", "x") }()
	n.Fetch()
	tk, err = n.Take(t.Context(), 5*time.Second)
	if err != nil || tk.Key != "w" {
		t.Fatalf("waiting take = %+v, %v", tk, err)
	}
	if err := tk.Ack(); err != nil {
		t.Fatal(err)
	}
}

func TestTakeDurableSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	o := queues.Options{Name: "jobs", DBMode: queues.DBModeDurable}
	n := start(t, path, o)
	n.add("jobs", seq(1, 3))
	acked, err := n.q("jobs").Take(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := acked.Ack(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.q("jobs").Take(t.Context(), 0); err != nil { // taken, never acked
		t.Fatal(err)
	}
	wantTable(t, path, "jobs", seq(2, 2))
	n.crash()

	n = start(t, path, o)
	n.wantQueue("jobs", seq(2, 2)) // the unacknowledged item is back, at its place
	tk, _ := n.q("jobs").Take(t.Context(), 0)
	tk.Nack() // put back: still in the table, at the head
	wantTable(t, path, "jobs", seq(2, 2))
	n.wantQueue("jobs", seq(2, 2))
	n.crash()
}
