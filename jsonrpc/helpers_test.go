package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testMethods are registered by newTestServer.
func testMethods() []Method {
	return []Method{
		{Name: "echo", Doc: "Returns its params as an array.", Handler: func(_ context.Context, p Params) (any, error) {
			out := make([]json.RawMessage, p.Len())
			for i := range out {
				out[i] = p.Raw(i)
			}
			return out, nil
		}},
		{Name: "str", Handler: func(_ context.Context, p Params) (any, error) {
			s, ok := p.String(0)
			if !ok {
				return nil, &Fault{Code: 400, Message: "No queue name"}
			}
			return s, nil
		}},
		{Name: "int", Handler: func(_ context.Context, p Params) (any, error) {
			n, ok := p.Int(0)
			if !ok {
				return nil, &Fault{Code: 400, Message: "not an int"}
			}
			return n, nil
		}},
		{Name: "size", Handler: func(context.Context, Params) (any, error) {
			return struct {
				Name string `json:"name"`
				Size int    `json:"size"`
			}{"q<1>&", 3}, nil
		}},
		{Name: "fault404", Handler: func(context.Context, Params) (any, error) {
			return nil, &Fault{Code: 404, Message: "No such queue"}
		}},
		{Name: "fault0", Handler: func(context.Context, Params) (any, error) {
			return nil, &Fault{Code: 0, Message: "zero"}
		}},
		{Name: "fault0empty", Handler: func(context.Context, Params) (any, error) {
			return nil, &Fault{}
		}},
		{Name: "fault150", Handler: func(context.Context, Params) (any, error) {
			return nil, &Fault{Code: 150, Message: "odd"}
		}},
		{Name: "fault204", Handler: func(context.Context, Params) (any, error) {
			return nil, &Fault{Code: 204, Message: "no content?"}
		}},
		{Name: "faultwrapped", Handler: func(context.Context, Params) (any, error) {
			return nil, fmt.Errorf("fetch: %w", &Fault{Code: 404, Message: "Empty queue"})
		}},
		{Name: "plainerr", Handler: func(context.Context, Params) (any, error) {
			return nil, errors.New("disk on fire")
		}},
		{Name: "typednil", Handler: func(context.Context, Params) (any, error) {
			var f *Fault
			return "fine", f
		}},
		{Name: "nilresult", Handler: func(context.Context, Params) (any, error) {
			return nil, nil
		}},
		{Name: "nilmap", Handler: func(context.Context, Params) (any, error) {
			var m map[string]int
			return m, nil
		}},
		{Name: "badresult", Handler: func(context.Context, Params) (any, error) {
			return func() {}, nil
		}},
		{Name: "raw", Handler: func(context.Context, Params) (any, error) {
			return json.RawMessage(`{ "b" : 1, "a" : [ 2 ] }`), nil
		}},
		{Name: "panic", Handler: func(context.Context, Params) (any, error) {
			panic("boom")
		}},
		{Name: "panicnil", Handler: func(context.Context, Params) (any, error) {
			var m map[string]int
			m["x"] = 1 // runtime error
			return nil, nil
		}},
	}
}

// newTestServer returns a server with testMethods and a captured log.
func newTestServer(t testing.TB, opts Options) (*Server, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	s, err := NewServer(opts)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	for _, m := range testMethods() {
		if err := s.Register(m); err != nil {
			t.Fatalf("Register %q: %v", m.Name, err)
		}
	}
	return s, logs
}

// newHTTPTest serves s with httptest and returns the /RPC URL.
func newHTTPTest(t testing.TB, s *Server) string {
	t.Helper()
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts.URL + s.opts.Path
}

type httpReply struct {
	status int
	header http.Header
	body   string
}

// post sends body with Content-Type application/json.
func post(t testing.TB, url, body string) httpReply {
	t.Helper()
	return do(t, http.MethodPost, url, "application/json", strings.NewReader(body), nil)
}

func do(t testing.TB, method, url, ctype string, body io.Reader, hdr map[string]string) httpReply {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return httpReply{status: resp.StatusCode, header: resp.Header, body: string(b)}
}
