package engine

import (
	"context"
	"errors"
	"fmt"

	"kemi/jsonrpc"
	"kemi/queues"
)

// queueSystem opens the mqueue database and loads the queues at start, and
// saves them at stop (per queue dbmode; see queues/doc.go and docs/mqueue.md).
// It is the first subsystem started and the last stopped, so loading ends
// before any traffic and saving starts after the workers have finished.
//
// Queues are loaded once the whole configuration is read, as Kamailio 5.8+
// does in mod_init; Kamailio 5.6 loads while parsing the mqueue modparam,
// which is why its db_url must come first.
type queueSystem struct{ e *Engine }

var _ Subsystem = (*queueSystem)(nil)

func (q *queueSystem) Name() string { return "mqueue" }

func (q *queueSystem) Start(ctx context.Context) error {
	e := q.e
	url := e.set.Mqueue.DBURL
	if url == "" {
		return nil
	}
	// A database that cannot be used fails the start: never run with
	// silently empty queues.
	s, err := queues.OpenSQLite(url)
	if err != nil {
		return fmt.Errorf("open db_url: %w", err) // the error names the file
	}
	if err := e.queues.Load(ctx, s); err != nil {
		s.Close()
		return fmt.Errorf("load db_url %q: %w", url, err)
	}
	e.store = s
	return nil
}

func (q *queueSystem) Stop(ctx context.Context) error {
	e := q.e
	if e.store == nil {
		return nil
	}
	err := e.queues.Save(context.WithoutCancel(ctx), e.store)
	if err != nil {
		err = fmt.Errorf("save db_url %q: %w", e.set.Mqueue.DBURL, err)
	}
	if cerr := e.store.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close db_url %q: %w", e.set.Mqueue.DBURL, cerr)
	}
	e.store = nil
	return err
}

// mqueue RPC commands, with Kamailio's reply fields and fault codes
// (reference 1.7). Unlike Kamailio, mqueue.fetch never loses an item: an
// item with an empty key or value is returned as it is.
func (e *Engine) mqueueRPC() []jsonrpc.Method {
	// queue finds the queue named by the first parameter; the fault codes
	// differ per method, as in Kamailio.
	queue := func(p jsonrpc.Params, badName, noQueue int) (string, *queues.Queue, error) {
		n, ok := p.String(0)
		if !ok {
			return "", nil, &jsonrpc.Fault{Code: badName, Message: "No queue name"}
		}
		if n == "" {
			return "", nil, &jsonrpc.Fault{Code: badName, Message: "Invalid queue name"}
		}
		q := e.queues.Get(n)
		if q == nil {
			return "", nil, &jsonrpc.Fault{Code: noQueue, Message: "No such queue"}
		}
		return n, q, nil
	}
	return []jsonrpc.Method{
		{Name: "mqueue.get_size", Doc: "Get the size of a memory queue.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			n, q, err := queue(p, 400, 404)
			if err != nil {
				return nil, err
			}
			return map[string]any{"name": n, "size": q.Len()}, nil
		}},
		{Name: "mqueue.get_sizes", Doc: "Get the size of every memory queue.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			qs := e.queues.Queues()
			out := make([]map[string]any, 0, len(qs))
			for i := len(qs) - 1; i >= 0; i-- { // Kamailio lists in reverse definition order
				out = append(out, map[string]any{"name": qs[i].Name(), "size": qs[i].Len()})
			}
			return out, nil
		}},
		{Name: "mqueue.fetch", Doc: "Fetch (and remove) the oldest item of a memory queue.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			n, q, err := queue(p, 500, 500)
			if err != nil {
				return nil, err
			}
			it, err := q.Fetch()
			if errors.Is(err, queues.ErrEmpty) {
				return nil, &jsonrpc.Fault{Code: 404, Message: "Empty queue"}
			}
			if err != nil { // a durable queue whose row could not be deleted: the item stays queued
				e.log.Error("mqueue.fetch failed", "queue", n, "error", err)
				return nil, &jsonrpc.Fault{Code: 500, Message: "Unexpected error (fetch)"}
			}
			return map[string]any{"key": it.Key, "val": it.Val}, nil
		}},
	}
}
