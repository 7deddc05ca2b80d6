package engine

import (
	"context"
	"errors"
	"fmt"

	"kemi/jsonrpc"
	"kemi/queues"
)

// queueSystem opens the mqueue database and loads the queues at start, and
// saves them at stop (per queue dbmode; see queues/doc.go).
type queueSystem struct{ e *Engine }

func (q *queueSystem) Name() string { return "mqueue" }

func (q *queueSystem) Start(ctx context.Context) error {
	e := q.e
	url := e.set.Mqueue.DBURL
	if url == "" {
		return nil
	}
	s, err := queues.OpenSQLite(url)
	if err != nil {
		return fmt.Errorf("open mqueue db_url %q: %w", url, err)
	}
	if err := e.queues.Load(ctx, s); err != nil {
		s.Close()
		return err
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
	if cerr := e.store.Close(); err == nil {
		err = cerr
	}
	e.store = nil
	return err
}

// mqueue RPC commands, with Kamailio's reply fields and fault codes
// (reference 1.7). Unlike Kamailio, mqueue.fetch never loses an item: an
// item with an empty key or value is returned as it is.
func (e *Engine) mqueueRPC() []jsonrpc.Method {
	name := func(p jsonrpc.Params, code int) (string, error) {
		s, ok := p.String(0)
		if !ok {
			return "", &jsonrpc.Fault{Code: code, Message: "No queue name"}
		}
		if s == "" {
			return "", &jsonrpc.Fault{Code: code, Message: "Invalid queue name"}
		}
		return s, nil
	}
	return []jsonrpc.Method{
		{Name: "mqueue.get_size", Doc: "Get the size of a memory queue.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			n, err := name(p, 400)
			if err != nil {
				return nil, err
			}
			q := e.queues.Get(n)
			if q == nil {
				return nil, &jsonrpc.Fault{Code: 404, Message: "No such queue"}
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
			n, err := name(p, 500)
			if err != nil {
				return nil, err
			}
			q := e.queues.Get(n)
			if q == nil {
				return nil, &jsonrpc.Fault{Code: 500, Message: "No such queue"}
			}
			it, err := q.Fetch()
			if errors.Is(err, queues.ErrEmpty) {
				return nil, &jsonrpc.Fault{Code: 404, Message: "Empty queue"}
			}
			if err != nil {
				return nil, &jsonrpc.Fault{Code: 500, Message: "Unexpected error (fetch)"}
			}
			return map[string]any{"key": it.Key, "val": it.Val}, nil
		}},
	}
}
