package mqueue

import (
	"context"
	"errors"

	"kemi/jsonrpc"
	"kemi/queues"
)

// mqueue RPC commands, with Kamailio's reply fields and fault codes
// (reference 1.7). Unlike Kamailio, mqueue.fetch never loses an item: an
// item with an empty key or value is returned as it is.
func (m *Module) RPC() []jsonrpc.Method {
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
		q := m.reg.Get(n)
		if q == nil {
			return "", nil, &jsonrpc.Fault{Code: noQueue, Message: "No such queue"}
		}
		return n, q, nil
	}
	return []jsonrpc.Method{
		{Name: "mqueue.backend", Doc: "kemi: where the queues are (memory, sqlite, jetstream), the NATS connection's state, each queue's size and the backend errors counted.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			return m.backendState(), nil
		}},
		{Name: "mqueue.get_size", Doc: "Get the size of a memory queue.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			n, q, err := queue(p, 400, 404)
			if err != nil {
				return nil, err
			}
			return map[string]any{"name": n, "size": q.Len()}, nil
		}},
		{Name: "mqueue.get_sizes", Doc: "Get the size of every memory queue.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			qs := m.reg.Queues()
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
				m.host.Logger().Error("mqueue.fetch failed", "queue", n, "error", err)
				return nil, &jsonrpc.Fault{Code: 500, Message: "Unexpected error (fetch)"}
			}
			return map[string]any{"key": it.Key, "val": it.Val}, nil
		}},
	}
}
