package queues_test

import (
	"context"
	"errors"
	"fmt"

	"kemi/queues"
)

func ExampleParseSpec() {
	o, err := queues.ParseSpec("name=jobs;size=100;AddMode=2;")
	fmt.Printf("%+v %v\n", o, err)
	_, err = queues.ParseSpec("name=jobs;size=abc")
	fmt.Println(err)
	_, err = queues.ParseSpec("name=jobs;dbmod=1")
	fmt.Println(err)
	// Output:
	// {Name:jobs Size:100 AddMode:2 DBMode:0} <nil>
	// size "abc": not a number
	// unknown key "dbmod" (value "1")
}

func ExampleQueue_Add() {
	r, _ := queues.NewRegistry(queues.Options{Name: "latest", Size: 3, AddMode: queues.AddModeKeepNewest})
	q := r.Get("latest")
	for _, kv := range [][2]string{{"a", "1"}, {"b", "1"}, {"a", "2"}, {"c", "1"}, {"d", "1"}} {
		_ = q.Add(kv[0], kv[1])
	}
	fmt.Println(q.Snapshot())
	for {
		it, err := q.Fetch()
		if errors.Is(err, queues.ErrEmpty) {
			break
		}
		fmt.Println(it.Key, it.Val)
	}
	// Output:
	// [{a 2} {c 1} {d 1}]
	// a 2
	// c 1
	// d 1
}

// A durable queue (dbmode 4) keeps every added item that was not fetched across a crash.
func ExampleRegistry_Load() {
	ctx := context.Background()
	store := queues.NewMemStore() // queues.OpenSQLite in production
	opts := queues.Options{Name: "jobs", DBMode: queues.DBModeDurable}

	r, _ := queues.NewRegistry(opts)
	_ = r.Load(ctx, store)
	q := r.Get("jobs")
	_ = q.Add("a", "1")
	_ = q.Add("b", "2")
	_, _ = q.Fetch()
	// The process dies here: no Save.

	r, _ = queues.NewRegistry(opts)
	_ = r.Load(ctx, store)
	fmt.Println(r.Get("jobs").Snapshot())
	// Output: [{b 2}]
}
