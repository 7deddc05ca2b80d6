// Package queuestest checks that a queues.Store behaves as the queues package expects, the way
// testing/slogtest checks a slog.Handler. Run it from a backend's tests:
//
//	func TestSQLStore(t *testing.T) {
//		queuestest.Run(t, func(t *testing.T) queues.Store {
//			s, err := queues.OpenSQLite(filepath.Join(t.TempDir(), "q.db"))
//			...
//		})
//	}
package queuestest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"kemi/queues"
)

// Run runs the conformance cases, each as a subtest with a fresh store from newStore. Run
// closes the store at the end of each case; newStore may register its own cleanup too, so
// Close must tolerate being called twice.
func Run(t *testing.T, newStore func(t *testing.T) queues.Store) {
	for _, c := range cases() {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			c.run(t, s)
		})
	}
}

type testCase struct {
	name string
	run  func(*testing.T, queues.Store)
}

func cases() []testCase {
	return []testCase{
		{"LoadMissingTable", loadMissingTable},
		{"ReplaceKeepsOrder", replaceKeepsOrder},
		{"ReplaceWithNothingEmpties", replaceWithNothing},
		{"AppendAccumulates", appendAccumulates},
		{"DeleteIDs", deleteIDs},
		{"InsertDelete", insertDelete},
		{"MixedWritesKeepCallOrder", mixedWrites},
		{"QueuesAreSeparate", queuesAreSeparate},
		{"OddNames", oddNames},
		{"ConcurrentInserts", concurrentInserts},
		{"CheckWriteWritesNothing", checkWrite},
		{"CancelledContext", cancelledContext},
		{"Close", closeStore},
	}
}

// sampleItems returns items with empty, long, unicode, quote and SQL-looking keys and values, and
// a repeated key.
func sampleItems() []queues.Item {
	return []queues.Item{
		{Key: "a", Val: "1"},
		{Key: "", Val: ""},
		{Key: "b", Val: strings.Repeat("x", 5000)},
		{Key: "a", Val: "2"},
		{Key: "k'\"`;--", Val: "v' OR 1=1; DROP TABLE q; --"},
		{Key: "ключ", Val: "значение\n\t\x01"},
		{Key: "?", Val: "@x"},
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

func load(t *testing.T, s queues.Store, q string) []queues.Record {
	t.Helper()
	recs, err := s.Load(ctx(t), q)
	if err != nil {
		t.Fatalf("Load(%q): %v", q, err)
	}
	return recs
}

func itemsOf(recs []queues.Record) []queues.Item {
	out := make([]queues.Item, len(recs))
	for i, r := range recs {
		out[i] = r.Item
	}
	return out
}

func idsOf(recs []queues.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// expect checks that q holds exactly want, in order, with strictly increasing ids.
func expect(t *testing.T, s queues.Store, q string, want []queues.Item) []queues.Record {
	t.Helper()
	recs := load(t, s, q)
	if got := itemsOf(recs); !slices.Equal(got, want) {
		t.Fatalf("table %q holds %q, want %q", q, got, want)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i].ID <= recs[i-1].ID {
			t.Fatalf("table %q: ids not increasing: %v", q, idsOf(recs))
		}
	}
	return recs
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func loadMissingTable(t *testing.T, s queues.Store) {
	expect(t, s, "never-written", nil)
}

func replaceKeepsOrder(t *testing.T, s queues.Store) {
	sample := sampleItems()
	must(t, s.Replace(ctx(t), "q", sample))
	expect(t, s, "q", sample)
	rev := slices.Clone(sample)
	slices.Reverse(rev)
	must(t, s.Replace(ctx(t), "q", rev))
	expect(t, s, "q", rev)
}

func replaceWithNothing(t *testing.T, s queues.Store) {
	sample := sampleItems()
	must(t, s.Replace(ctx(t), "q", sample))
	must(t, s.Replace(ctx(t), "q", nil))
	expect(t, s, "q", nil)
}

func appendAccumulates(t *testing.T, s queues.Store) {
	sample := sampleItems()
	must(t, s.Append(ctx(t), "q", sample[:3]))
	must(t, s.Append(ctx(t), "q", nil))
	must(t, s.Append(ctx(t), "q", sample[3:]))
	must(t, s.Append(ctx(t), "q", sample[:1]))
	expect(t, s, "q", append(slices.Clone(sample), sample[0]))
}

func deleteIDs(t *testing.T, s queues.Store) {
	sample := sampleItems()
	must(t, s.Append(ctx(t), "q", sample))
	recs := load(t, s, "q")
	// Delete the first, one in the middle, the last, and ids that do not exist.
	del := []int64{recs[0].ID, recs[3].ID, recs[len(recs)-1].ID, recs[len(recs)-1].ID + 1000, -7}
	must(t, s.DeleteIDs(ctx(t), "q", del))
	must(t, s.DeleteIDs(ctx(t), "q", nil))
	want := []queues.Item{sample[1], sample[2], sample[4], sample[5]}
	left := expect(t, s, "q", want)
	if got, wantIDs := idsOf(left), []int64{recs[1].ID, recs[2].ID, recs[4].ID, recs[5].ID}; !slices.Equal(got, wantIDs) {
		t.Fatalf("ids left %v, want %v", got, wantIDs)
	}
}

func insertDelete(t *testing.T, s queues.Store) {
	sample := sampleItems()
	var ids []int64
	for _, it := range sample {
		id, err := s.Insert(ctx(t), "q", it)
		must(t, err)
		ids = append(ids, id)
	}
	recs := expect(t, s, "q", sample)
	if got := idsOf(recs); !slices.Equal(got, ids) {
		t.Fatalf("Load ids %v, Insert returned %v", got, ids)
	}
	must(t, s.Delete(ctx(t), "q", ids[0]))
	must(t, s.Delete(ctx(t), "q", ids[2]))
	must(t, s.Delete(ctx(t), "q", ids[2]))      // again: not an error
	must(t, s.Delete(ctx(t), "q", ids[6]+1000)) // never existed
	expect(t, s, "q", []queues.Item{sample[1], sample[3], sample[4], sample[5], sample[6]})
	// A new row still comes last after the highest row was deleted.
	must(t, s.Delete(ctx(t), "q", ids[6]))
	id, err := s.Insert(ctx(t), "q", queues.Item{Key: "new", Val: "row"})
	must(t, err)
	recs = expect(t, s, "q", []queues.Item{sample[1], sample[3], sample[4], sample[5], {Key: "new", Val: "row"}})
	if recs[len(recs)-1].ID != id {
		t.Fatalf("Insert returned id %d, Load shows %d", id, recs[len(recs)-1].ID)
	}
}

func mixedWrites(t *testing.T, s queues.Store) {
	sample := sampleItems()
	_, err := s.Insert(ctx(t), "q", sample[0])
	must(t, err)
	must(t, s.Append(ctx(t), "q", sample[1:3]))
	_, err = s.Insert(ctx(t), "q", sample[3])
	must(t, err)
	must(t, s.Append(ctx(t), "q", sample[4:]))
	expect(t, s, "q", sample)
}

func queuesAreSeparate(t *testing.T, s queues.Store) {
	sample := sampleItems()
	must(t, s.Replace(ctx(t), "one", sample[:2]))
	must(t, s.Append(ctx(t), "two", sample[2:4]))
	_, err := s.Insert(ctx(t), "three", sample[4])
	must(t, err)
	must(t, s.Replace(ctx(t), "one", sample[5:]))
	expect(t, s, "one", sample[5:])
	expect(t, s, "two", sample[2:4])
	expect(t, s, "three", sample[4:5])
	must(t, s.DeleteIDs(ctx(t), "two", idsOf(load(t, s, "one"))))
	expect(t, s, "two", sample[2:4])
}

// oddQueueNames returns queue names that must work as table names. They differ in more than
// ASCII case, which SQLite ignores.
func oddQueueNames() []string {
	return []string{
		`double"quote`, `""`, "single'quote", "back`tick", "semi;colon -- comment",
		"spaces in name", "dot.ted", "main.q", "[bracket]", "what?", "@at", ":colon", "$dollar",
		"select", "table", "123", "ünïcødé", "tab\tand\nnewline", "sqlite", "x); DROP TABLE y; --",
		strings.Repeat("long", 50),
	}
}

func oddNames(t *testing.T, s queues.Store) {
	sample := sampleItems()
	for i, name := range oddQueueNames() {
		must(t, s.Replace(ctx(t), name, []queues.Item{{Key: name, Val: fmt.Sprint(i)}}))
		_, err := s.Insert(ctx(t), name, queues.Item{Key: "ins", Val: name})
		must(t, err)
	}
	for i, name := range oddQueueNames() {
		recs := expect(t, s, name, []queues.Item{{Key: name, Val: fmt.Sprint(i)}, {Key: "ins", Val: name}})
		must(t, s.Delete(ctx(t), name, recs[0].ID))
		must(t, s.DeleteIDs(ctx(t), name, []int64{recs[1].ID}))
		must(t, s.Append(ctx(t), name, sample[:1]))
		expect(t, s, name, sample[:1])
	}
}

func concurrentInserts(t *testing.T, s queues.Store) {
	const workers, each = 4, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			q := fmt.Sprint("q", w%2)
			for i := range each {
				if _, err := s.Insert(ctx(t), q, queues.Item{Key: fmt.Sprint(w), Val: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, q := range []string{"q0", "q1"} {
		recs := expect(t, s, q, itemsOf(load(t, s, q))) // ids increasing
		if len(recs) != 2*each {
			t.Fatalf("%s holds %d rows, want %d", q, len(recs), 2*each)
		}
		next := map[string]int{}
		for _, r := range recs {
			if r.Val != fmt.Sprint(next[r.Key]) {
				t.Fatalf("%s: worker %s row %s, want %d", q, r.Key, r.Val, next[r.Key])
			}
			next[r.Key]++
		}
	}
}

// checkWrite: CheckWrite succeeds on a usable store, on a new table too, and leaves no row
// behind and the next id where it was.
func checkWrite(t *testing.T, s queues.Store) {
	sample := sampleItems()
	must(t, s.CheckWrite(ctx(t), "fresh"))
	expect(t, s, "fresh", nil)
	first, err := s.Insert(ctx(t), "q", sample[0])
	must(t, err)
	must(t, s.CheckWrite(ctx(t), "q"))
	must(t, s.CheckWrite(ctx(t), "q"))
	second, err := s.Insert(ctx(t), "q", sample[1])
	must(t, err)
	recs := expect(t, s, "q", sample[:2])
	if got := idsOf(recs); !slices.Equal(got, []int64{first, second}) || second <= first {
		t.Fatalf("ids %v after CheckWrite, Insert returned %d and %d", got, first, second)
	}
	must(t, s.CheckWrite(ctx(t), "odd \"name\" ?.@"))
}

func cancelledContext(t *testing.T, s queues.Store) {
	sample := sampleItems()
	must(t, s.Append(ctx(t), "q", sample[:2]))
	c, cancel := context.WithCancel(ctx(t))
	cancel()
	if _, err := s.Load(c, "q"); err == nil {
		t.Error("Load with a cancelled context succeeded")
	}
	if err := s.Replace(c, "q", nil); err == nil {
		t.Error("Replace with a cancelled context succeeded")
	}
	expect(t, s, "q", sample[:2])
}

func closeStore(t *testing.T, s queues.Store) {
	sample := sampleItems()
	must(t, s.Append(ctx(t), "q", sample[:1]))
	must(t, s.Close())
	if _, err := s.Load(ctx(t), "q"); err == nil {
		t.Error("Load after Close succeeded")
	}
	if _, err := s.Insert(ctx(t), "q", sample[0]); err == nil {
		t.Error("Insert after Close succeeded")
	}
	if err := s.CheckWrite(ctx(t), "q"); err == nil {
		t.Error("CheckWrite after Close succeeded")
	}
	if err := errors.Join(s.Close()); err != nil {
		t.Logf("second Close: %v", err) // allowed either way
	}
}
