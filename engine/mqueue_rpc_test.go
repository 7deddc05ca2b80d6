package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
)

// mqScript drives the queues over SIP, for the mqueue tests of this package:
// a MESSAGE with X-Op: add|fetch|size|free on queue X-Queue (X-Key and X-Val
// for add; an absent header is "") is answered 200 with the return code,
// and for a successful fetch the item as "key=val" (mqk_get/mqv_get).
const mqScript = `
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	local op, q = KSR.hdr.gete("X-Op"), KSR.hdr.gete("X-Queue")
	if op == "add" then
		KSR.sl.send_reply(200, "add " .. KSR.mqueue.mq_add(q, KSR.hdr.gete("X-Key"), KSR.hdr.gete("X-Val")))
	elseif op == "fetch" then
		local rc = KSR.mqueue.mq_fetch(q)
		if rc == 1 then
			KSR.sl.send_reply(200, "fetch 1 " .. KSR.mqueue.mqk_get(q) .. "=" .. KSR.mqueue.mqv_get(q))
		else
			KSR.sl.send_reply(200, "fetch " .. rc)
		end
	elseif op == "size" then
		KSR.sl.send_reply(200, "size " .. KSR.mqueue.mq_size(q))
	else
		KSR.sl.send_reply(400, "Bad X-Op")
	end
end
`

// mqConfig is enginetest's config with the mqueue module and extra lines.
func mqConfig(lines ...string) string {
	return enginetest.Config(append([]string{`loadmodule "mqueue.so"`}, lines...)...)
}

// mqOp sends one mqScript MESSAGE and returns the reply's reason phrase.
func mqOp(t testing.TB, c *enginetest.Client, op, queue, key, val string) string {
	t.Helper()
	h := []string{"X-Op: " + op, "X-Queue: " + queue}
	if key != "" {
		h = append(h, "X-Key: "+key)
	}
	if val != "" {
		h = append(h, "X-Val: "+val)
	}
	res := c.Do(enginetest.Req{Method: "MESSAGE", Headers: h}, enginetest.Patience)
	if res.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", op, queue, res.StatusCode, res.Reason)
	}
	return res.Reason
}

// mqAdd adds items ("key=val" each) over SIP; every add must return 1.
func mqAdd(t testing.TB, c *enginetest.Client, queue string, items ...string) {
	t.Helper()
	for _, it := range items {
		k, v, _ := strings.Cut(it, "=")
		if r := mqOp(t, c, "add", queue, k, v); r != "add 1" {
			t.Fatalf("add %s to %s: %q", it, queue, r)
		}
	}
}

// mqDrain fetches over SIP until the queue is empty and returns the items as "key=val".
func mqDrain(t testing.TB, c *enginetest.Client, queue string) []string {
	t.Helper()
	var out []string
	for {
		r := mqOp(t, c, "fetch", queue, "", "")
		if r == "fetch -2" {
			return out
		}
		it, ok := strings.CutPrefix(r, "fetch 1 ")
		if !ok {
			t.Fatalf("fetch %s: %q", queue, r)
		}
		out = append(out, it)
	}
}

// rpcFault calls method and returns its fault (failing when there is none).
func rpcFault(t *testing.T, url, method string, params ...any) *jsonrpc.Fault {
	t.Helper()
	res, err := jsonrpc.Call(context.Background(), url, method, params)
	var f *jsonrpc.Fault
	if !errors.As(err, &f) {
		t.Fatalf("%s %v: want a fault, got %s %v", method, params, res, err)
	}
	return f
}

// rpcResult calls method and decodes its result into v.
func rpcResult(t *testing.T, url, method string, v any, params ...any) {
	t.Helper()
	res, err := jsonrpc.Call(context.Background(), url, method, params)
	if err != nil {
		t.Fatalf("%s %v: %v", method, params, err)
	}
	if err := json.Unmarshal(res, v); err != nil {
		t.Fatalf("%s %v: result %s: %v", method, params, res, err)
	}
}

type queueSize struct {
	Name string `json:"name"`
	Size *int   `json:"size"` // a pointer, so that a missing field is seen
}

type queueItem struct {
	Key *string `json:"key"`
	Val *string `json:"val"`
}

// TestMqueueRPC: the mqueue.* methods over HTTP with Kamailio's reply fields
// and fault codes and messages (reference §1.7).
func TestMqueueRPC(t *testing.T) {
	e := enginetest.Start(t, mqConfig(
		`modparam("mqueue", "mqueue", "name=first")`,
		`modparam("mqueue", "mqueue", "name=second;size=3")`,
		`modparam("mqueue", "mqueue_name", "third")`,
		`modparam("mqueue", "mqueue", "name=5")`,
	), map[string]string{"script.lua": mqScript})
	url := e.RPCURL()
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	mqAdd(t, c, "first", "k1=v1", "k2=v2")
	mqAdd(t, c, "second", "a=1", "b=2", "c=3", "d=4") // size 3: a is dropped

	t.Run("get_size", func(t *testing.T) {
		var got queueSize
		rpcResult(t, url, "mqueue.get_size", &got, "first")
		if got.Name != "first" || got.Size == nil || *got.Size != 2 {
			t.Fatalf("got %+v", got)
		}
		rpcResult(t, url, "mqueue.get_size", &got, "third")
		if got.Name != "third" || got.Size == nil || *got.Size != 0 {
			t.Fatalf("got %+v", got)
		}
	})
	t.Run("get_size faults", func(t *testing.T) {
		for _, c := range []struct {
			params []any
			code   int
			msg    string
		}{
			{nil, 400, "No queue name"},
			{[]any{5}, 400, "No queue name"}, // a number is not converted (jsonrpcs "S" scan)
			{[]any{nil}, 400, "No queue name"},
			{[]any{""}, 400, "Invalid queue name"},
			{[]any{"nope"}, 404, "No such queue"},
			{[]any{"First"}, 404, "No such queue"}, // names are case-sensitive
		} {
			f := rpcFault(t, url, "mqueue.get_size", c.params...)
			if f.Code != c.code || f.Message != c.msg {
				t.Errorf("get_size %v: %d %q, want %d %q", c.params, f.Code, f.Message, c.code, c.msg)
			}
		}
	})
	t.Run("get_sizes in reverse definition order", func(t *testing.T) {
		var got []queueSize
		rpcResult(t, url, "mqueue.get_sizes", &got)
		want := []struct {
			name string
			size int
		}{{"5", 0}, {"third", 0}, {"second", 3}, {"first", 2}}
		if len(got) != len(want) {
			t.Fatalf("got %+v", got)
		}
		for i, w := range want {
			if got[i].Name != w.name || got[i].Size == nil || *got[i].Size != w.size {
				t.Fatalf("entry %d: %+v, want %+v", i, got[i], w)
			}
		}
	})
	t.Run("fetch", func(t *testing.T) {
		for _, want := range []string{"k1=v1", "k2=v2"} {
			var got queueItem
			rpcResult(t, url, "mqueue.fetch", &got, "first")
			if got.Key == nil || got.Val == nil || *got.Key+"="+*got.Val != want {
				t.Fatalf("got %+v, want %s", got, want)
			}
		}
		f := rpcFault(t, url, "mqueue.fetch", "first")
		if f.Code != 404 || f.Message != "Empty queue" {
			t.Fatalf("empty queue: %d %q", f.Code, f.Message)
		}
		// The RPC fetch removed the items: the SIP side sees the queue empty.
		if r := mqOp(t, c, "size", "first", "", ""); r != "size 0" {
			t.Fatalf("after the RPC fetches: %q", r)
		}
		if got := mqDrain(t, c, "second"); strings.Join(got, " ") != "b=2 c=3 d=4" {
			t.Fatalf("second: %v", got)
		}
	})
	t.Run("fetch faults", func(t *testing.T) {
		for _, c := range []struct {
			params []any
			code   int
			msg    string
		}{
			{nil, 500, "No queue name"}, // fetch uses 500 where get_size uses 400, as Kamailio
			{[]any{5}, 500, "No queue name"},
			{[]any{""}, 500, "Invalid queue name"},
			{[]any{"nope"}, 500, "No such queue"}, // 500, not 404, as Kamailio
			{[]any{"5"}, 404, "Empty queue"},
		} {
			f := rpcFault(t, url, "mqueue.fetch", c.params...)
			if f.Code != c.code || f.Message != c.msg {
				t.Errorf("fetch %v: %d %q, want %d %q", c.params, f.Code, f.Message, c.code, c.msg)
			}
		}
	})
	t.Run("fetch returns an empty key or value", func(t *testing.T) {
		// Kamailio dequeues such an item, then answers 500 "Unexpected error
		// (result)": the item is lost. kemi returns it with "" fields.
		mqAdd(t, c, "third", "=only-val", "only-key=", "=")
		for _, want := range [][2]string{{"", "only-val"}, {"only-key", ""}, {"", ""}} {
			var got queueItem
			rpcResult(t, url, "mqueue.fetch", &got, "third")
			if got.Key == nil || got.Val == nil || *got.Key != want[0] || *got.Val != want[1] {
				t.Fatalf("got %+v, want key %q val %q", got, want[0], want[1])
			}
		}
		if f := rpcFault(t, url, "mqueue.fetch", "third"); f.Code != 404 {
			t.Fatalf("third not empty after 3 fetches: %v", f)
		}
	})
}

// TestMqueueRPCNoQueues: get_sizes is an empty array when no queue is defined.
func TestMqueueRPCNoQueues(t *testing.T) {
	e := enginetest.Start(t, mqConfig(), map[string]string{"script.lua": mqScript})
	res, err := jsonrpc.Call(context.Background(), e.RPCURL(), "mqueue.get_sizes", nil)
	if err != nil || string(res) != "[]" {
		t.Fatalf("get_sizes: %s %v, want []", res, err)
	}
	if f := rpcFault(t, e.RPCURL(), "mqueue.get_size", "any"); f.Code != 404 {
		t.Fatalf("get_size: %v", f)
	}
}
