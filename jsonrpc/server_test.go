package jsonrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWire checks replies byte for byte (key order, id echo) and the HTTP
// status over a real HTTP round trip.
func TestWire(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	url := newHTTPTest(t, s)

	const (
		notFound = `{"jsonrpc":"2.0","error":{"code":500,"message":"Method Not Found"},"id":1}`
		parseErr = `{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}`
		invalid  = `{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}`
	)
	tests := []struct {
		name   string
		req    string
		status int
		want   string
	}{
		// success shapes and id types
		{"array params, number id", `{"jsonrpc":"2.0","method":"echo","params":["a",1],"id":1}`, 200,
			`{"jsonrpc":"2.0","result":["a",1],"id":1}`},
		{"string id", `{"jsonrpc":"2.0","method":"echo","params":[],"id":"abc-1"}`, 200,
			`{"jsonrpc":"2.0","result":[],"id":"abc-1"}`},
		{"string id with escapes kept raw", `{"jsonrpc":"2.0","method":"echo","id":"a\u0041\"b"}`, 200,
			`{"jsonrpc":"2.0","result":[],"id":"a\u0041\"b"}`},
		{"float id kept as sent", `{"jsonrpc":"2.0","method":"echo","id":1.50}`, 200,
			`{"jsonrpc":"2.0","result":[],"id":1.50}`},
		{"exponent id kept as sent", `{"jsonrpc":"2.0","method":"echo","id":1e3}`, 200,
			`{"jsonrpc":"2.0","result":[],"id":1e3}`},
		{"big integer id kept exactly", `{"jsonrpc":"2.0","method":"echo","id":12345678901234567890}`, 200,
			`{"jsonrpc":"2.0","result":[],"id":12345678901234567890}`},
		{"null id", `{"jsonrpc":"2.0","method":"echo","id":null}`, 200,
			`{"jsonrpc":"2.0","result":[],"id":null}`},
		{"keys in any order, whitespace", " \n{ \"id\" : 7 , \"params\" : [ true ] , \"method\" : \"echo\" , \"jsonrpc\" : \"2.0\" }\n", 200,
			`{"jsonrpc":"2.0","result":[true],"id":7}`},
		{"notification: no reply", `{"jsonrpc":"2.0","method":"echo","params":[1]}`, 204, ``},
		{"notification of unknown method: no reply", `{"jsonrpc":"2.0","method":"nope"}`, 204, ``},
		{"params object: values in order, names ignored", `{"jsonrpc":"2.0","method":"echo","params":{"z":"first","a":{"k":[1]},"m":2},"id":1}`, 200,
			`{"jsonrpc":"2.0","result":["first",{"k":[1]},2],"id":1}`},
		{"params object with repeated name", `{"jsonrpc":"2.0","method":"echo","params":{"a":1,"a":2},"id":1}`, 200,
			`{"jsonrpc":"2.0","result":[1,2],"id":1}`},
		{"empty params object", `{"jsonrpc":"2.0","method":"echo","params":{},"id":1}`, 200,
			`{"jsonrpc":"2.0","result":[],"id":1}`},
		{"struct result, HTML not escaped", `{"jsonrpc":"2.0","method":"size","id":1}`, 200,
			`{"jsonrpc":"2.0","result":{"name":"q<1>&","size":3},"id":1}`},
		{"raw result compacted", `{"jsonrpc":"2.0","method":"raw","id":1}`, 200,
			`{"jsonrpc":"2.0","result":{"b":1,"a":[2]},"id":1}`},
		{"nil result is {}", `{"jsonrpc":"2.0","method":"nilresult","id":1}`, 200,
			`{"jsonrpc":"2.0","result":{},"id":1}`},
		{"null-marshalling result is {}", `{"jsonrpc":"2.0","method":"nilmap","id":1}`, 200,
			`{"jsonrpc":"2.0","result":{},"id":1}`},
		{"typed nil *Fault is success", `{"jsonrpc":"2.0","method":"typednil","id":1}`, 200,
			`{"jsonrpc":"2.0","result":"fine","id":1}`},

		// String strictness (Kamailio "S" scan) and Int
		{"String: JSON string matches", `{"jsonrpc":"2.0","method":"str","params":["123"],"id":1}`, 200,
			`{"jsonrpc":"2.0","result":"123","id":1}`},
		{"String: number is not a string", `{"jsonrpc":"2.0","method":"str","params":[123],"id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":400,"message":"No queue name"},"id":1}`},
		{"String: missing param", `{"jsonrpc":"2.0","method":"str","id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":400,"message":"No queue name"},"id":1}`},
		{"Int: number", `{"jsonrpc":"2.0","method":"int","params":[42],"id":1}`, 200,
			`{"jsonrpc":"2.0","result":42,"id":1}`},
		{"Int: numeric string", `{"jsonrpc":"2.0","method":"int","params":{"n":"-7"},"id":1}`, 200,
			`{"jsonrpc":"2.0","result":-7,"id":1}`},
		{"Int: fraction refused", `{"jsonrpc":"2.0","method":"int","params":[4.5],"id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":400,"message":"not an int"},"id":1}`},

		// faults
		{"unknown method", `{"jsonrpc":"2.0","method":"nope","id":1}`, 500, notFound},
		{"method name is case sensitive", `{"jsonrpc":"2.0","method":"ECHO","id":1}`, 500, notFound},
		{"fault code kept, not mapped", `{"jsonrpc":"2.0","method":"fault404","id":"x"}`, 404,
			`{"jsonrpc":"2.0","error":{"code":404,"message":"No such queue"},"id":"x"}`},
		{"fault code 0 becomes -32000", `{"jsonrpc":"2.0","method":"fault0","id":1}`, 500,
			`{"jsonrpc":"2.0","error":{"code":-32000,"message":"zero"},"id":1}`},
		{"empty fault gets standard text", `{"jsonrpc":"2.0","method":"fault0empty","id":1}`, 500,
			`{"jsonrpc":"2.0","error":{"code":-32000,"message":"Server error"},"id":1}`},
		{"1xx fault code is HTTP 500", `{"jsonrpc":"2.0","method":"fault150","id":1}`, 500,
			`{"jsonrpc":"2.0","error":{"code":150,"message":"odd"},"id":1}`},
		{"2xx fault code is HTTP 500", `{"jsonrpc":"2.0","method":"fault204","id":1}`, 500,
			`{"jsonrpc":"2.0","error":{"code":204,"message":"no content?"},"id":1}`},
		{"wrapped fault keeps its code and text", `{"jsonrpc":"2.0","method":"faultwrapped","id":1}`, 404,
			`{"jsonrpc":"2.0","error":{"code":404,"message":"Empty queue"},"id":1}`},
		{"plain error is 500 with its text", `{"jsonrpc":"2.0","method":"plainerr","id":1}`, 500,
			`{"jsonrpc":"2.0","error":{"code":500,"message":"disk on fire"},"id":1}`},
		{"unmarshallable result", `{"jsonrpc":"2.0","method":"badresult","id":1}`, 500,
			`{"jsonrpc":"2.0","error":{"code":500,"message":"marshal result: json: unsupported type: func()"},"id":1}`},
		{"panic recovered", `{"jsonrpc":"2.0","method":"panic","id":1}`, 500,
			`{"jsonrpc":"2.0","error":{"code":500,"message":"Internal error"},"id":1}`},
		{"runtime panic recovered", `{"jsonrpc":"2.0","method":"panicnil","id":2}`, 500,
			`{"jsonrpc":"2.0","error":{"code":500,"message":"Internal error"},"id":2}`},

		// parse errors and invalid requests
		{"invalid JSON", `{"jsonrpc":"2.0","method":`, 400, parseErr},
		{"empty body", ``, 400, parseErr},
		{"trailing garbage", `{"jsonrpc":"2.0","method":"echo","id":1} x`, 400, parseErr},
		{"missing jsonrpc", `{"method":"echo","id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`},
		{"jsonrpc 1.0", `{"jsonrpc":"1.0","method":"echo","id":"a"}`, 400,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":"a"}`},
		{"jsonrpc as number", `{"jsonrpc":2.0,"method":"echo","id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`},
		{"key case matters", `{"JSONRPC":"2.0","method":"echo","id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`},
		{"missing method", `{"jsonrpc":"2.0","id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`},
		{"method not a string", `{"jsonrpc":"2.0","method":5,"id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`},
		{"params a string", `{"jsonrpc":"2.0","method":"echo","params":"a","id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`},
		{"params null", `{"jsonrpc":"2.0","method":"echo","params":null,"id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`},
		{"params number", `{"jsonrpc":"2.0","method":"echo","params":3,"id":1}`, 400,
			`{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":1}`},
		{"id an object", `{"jsonrpc":"2.0","method":"echo","id":{"a":1}}`, 400, invalid},
		{"id a bool", `{"jsonrpc":"2.0","method":"echo","id":true}`, 400, invalid},
		{"invalid request without id still answered", `{"jsonrpc":"2.0","method":1}`, 400, invalid},
		{"top-level number", `42`, 400, invalid},
		{"top-level string", `"hello"`, 400, invalid},
		{"top-level null", `null`, 400, invalid},

		// batches
		{"batch", `[{"jsonrpc":"2.0","method":"echo","params":[1],"id":1},{"jsonrpc":"2.0","method":"echo","params":[2]},{"jsonrpc":"2.0","method":"nope","id":"b"},5]`, 200,
			`[{"jsonrpc":"2.0","result":[1],"id":1},{"jsonrpc":"2.0","error":{"code":500,"message":"Method Not Found"},"id":"b"},{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid Request"},"id":null}]`},
		{"batch of notifications", `[{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"nope"}]`, 204, ``},
		{"empty batch", `[]`, 400, invalid},
		{"nested batch", `[[]]`, 200, `[` + invalid + `]`},
		{"batch element panics, others run", `[{"jsonrpc":"2.0","method":"panic","id":1},{"jsonrpc":"2.0","method":"int","params":[3],"id":2}]`, 200,
			`[{"jsonrpc":"2.0","error":{"code":500,"message":"Internal error"},"id":1},{"jsonrpc":"2.0","result":3,"id":2}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post(t, url, tt.req)
			if r.status != tt.status {
				t.Errorf("status = %d, want %d (body %s)", r.status, tt.status, r.body)
			}
			if r.body != tt.want {
				t.Errorf("body\n got %s\nwant %s", r.body, tt.want)
			}
			if tt.want != "" {
				if ct := r.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				if !json.Valid([]byte(r.body)) {
					t.Errorf("reply is not valid JSON")
				}
			}
			// Handle gives the same bytes as HTTP.
			if got := string(s.Handle(t.Context(), []byte(tt.req))); got != tt.want {
				t.Errorf("Handle\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestHandleNotificationIsNil(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	ran := make(chan Params, 1)
	if err := s.Register(Method{Name: "note", Handler: func(_ context.Context, p Params) (any, error) {
		ran <- p
		return "ignored", nil
	}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Handle(t.Context(), []byte(`{"jsonrpc":"2.0","method":"note","params":["x"]}`)); got != nil {
		t.Fatalf("Handle = %q, want nil", got)
	}
	select {
	case p := <-ran:
		if v, _ := p.String(0); v != "x" {
			t.Errorf("param = %q", v)
		}
	default:
		t.Fatal("notification did not run the method")
	}
}

func TestPanicKeepsServing(t *testing.T) {
	s, logs := newTestServer(t, Options{})
	url := newHTTPTest(t, s)
	for i := range 3 {
		r := post(t, url, `{"jsonrpc":"2.0","method":"panic","id":1}`)
		if r.status != 500 || !strings.Contains(r.body, `"Internal error"`) {
			t.Fatalf("panic call %d: %d %s", i, r.status, r.body)
		}
		r = post(t, url, `{"jsonrpc":"2.0","method":"int","params":[5],"id":1}`)
		if r.body != `{"jsonrpc":"2.0","result":5,"id":1}` {
			t.Fatalf("after panic %d: %s", i, r.body)
		}
	}
	out := logs.String()
	if !strings.Contains(out, "jsonrpc method panicked") || !strings.Contains(out, "method=panic") ||
		!strings.Contains(out, "boom") || !strings.Contains(out, "module=jsonrpc") {
		t.Errorf("panic not logged as expected:\n%s", out)
	}
}

func TestHTTPTransport(t *testing.T) {
	s, _ := newTestServer(t, Options{MaxBody: 256})
	url := newHTTPTest(t, s)
	base := strings.TrimSuffix(url, "/RPC")
	okReq := `{"jsonrpc":"2.0","method":"int","params":[1],"id":1}`
	big := `{"jsonrpc":"2.0","method":"echo","params":["` + strings.Repeat("x", 300) + `"],"id":1}`

	tests := []struct {
		name   string
		method string
		url    string
		ctype  string
		body   io.Reader
		hdr    map[string]string
		status int
		inBody string
	}{
		{"ok", "POST", url, "application/json", strings.NewReader(okReq), nil, 200, `"result":1`},
		{"content type with charset", "POST", url, "application/json; charset=utf-8", strings.NewReader(okReq), nil, 200, `"result":1`},
		{"content type case", "POST", url, "Application/JSON", strings.NewReader(okReq), nil, 200, `"result":1`},
		{"GET", "GET", url, "", nil, nil, 405, `"code":-32600`},
		{"PUT", "PUT", url, "application/json", strings.NewReader(okReq), nil, 405, `Method Not Allowed`},
		{"wrong path", "POST", base + "/rpc", "application/json", strings.NewReader(okReq), nil, 404, `Not Found`},
		{"sub path", "POST", url + "/x", "application/json", strings.NewReader(okReq), nil, 404, `Not Found`},
		{"text/plain refused", "POST", url, "text/plain", strings.NewReader(okReq), nil, 415, `Unsupported Media Type`},
		{"form refused", "POST", url, "application/x-www-form-urlencoded", strings.NewReader(okReq), nil, 415, `Unsupported Media Type`},
		{"no content type refused", "POST", url, "", strings.NewReader(okReq), nil, 415, `Unsupported Media Type`},
		{"oversized body with length", "POST", url, "application/json", strings.NewReader(big), nil, 413, `exceeds 256 bytes`},
		{"oversized body chunked", "POST", url, "application/json", io.MultiReader(strings.NewReader(big)), nil, 413, `exceeds 256 bytes`},
		{"body at the limit", "POST", url, "application/json", strings.NewReader(okReq + strings.Repeat(" ", 256-len(okReq))), nil, 200, `"result":1`},
		{"foreign Host refused", "POST", url, "application/json", strings.NewReader(okReq), map[string]string{"Host": "evil.example:5071"}, 403, `Forbidden`},
		{"localhost Host ok", "POST", url, "application/json", strings.NewReader(okReq), map[string]string{"Host": "localhost:5071"}, 200, `"result":1`},
		{"IPv6 loopback Host ok", "POST", url, "application/json", strings.NewReader(okReq), map[string]string{"Host": "[::1]:5071"}, 200, `"result":1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, tt.method, tt.url, tt.ctype, tt.body, tt.hdr)
			if r.status != tt.status {
				t.Errorf("status = %d, want %d (%s)", r.status, tt.status, r.body)
			}
			if !strings.Contains(r.body, tt.inBody) {
				t.Errorf("body %s does not contain %s", r.body, tt.inBody)
			}
			if !json.Valid([]byte(r.body)) {
				t.Errorf("body is not JSON: %s", r.body)
			}
			if tt.status == 405 && r.header.Get("Allow") != "POST" {
				t.Errorf("Allow = %q", r.header.Get("Allow"))
			}
		})
	}
}

func TestHostCheckOffWhenNonLoopbackAllowed(t *testing.T) {
	s, _ := newTestServer(t, Options{AllowNonLoopback: true})
	url := newHTTPTest(t, s)
	r := do(t, "POST", url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","method":"int","params":[1],"id":1}`),
		map[string]string{"Host": "kemi.example.net"})
	if r.status != 200 {
		t.Fatalf("status %d %s", r.status, r.body)
	}
}

func TestLoopbackRefusal(t *testing.T) {
	tests := []struct {
		addr  string
		allow bool
		ok    bool
	}{
		{"127.0.0.1:0", false, true},
		{"127.0.0.2:0", false, true},
		{"localhost:0", false, true},
		{"[::1]:0", false, true},
		{"[::ffff:127.0.0.1]:0", false, true},
		{"", false, true}, // default 127.0.0.1:5071
		{"0.0.0.0:0", false, false},
		{"[::]:0", false, false},
		{":5071", false, false},
		{"192.0.2.1:5071", false, false},
		{"kemi.example.net:5071", false, false},
		{"0.0.0.0:0", true, true},
		{":5071", true, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s allow=%v", tt.addr, tt.allow), func(t *testing.T) {
			_, err := NewServer(Options{Addr: tt.addr, AllowNonLoopback: tt.allow})
			if tt.ok && err != nil {
				t.Fatalf("NewServer: %v", err)
			}
			if !tt.ok {
				if !errors.Is(err, ErrNonLoopback) {
					t.Fatalf("err = %v, want ErrNonLoopback", err)
				}
				if !strings.Contains(err.Error(), tt.addr) || !strings.Contains(err.Error(), "not loopback") {
					t.Errorf("unclear error: %v", err)
				}
			}
		})
	}
}

func TestStartNonLoopbackAllowed(t *testing.T) {
	s, _ := newTestServer(t, Options{Addr: "0.0.0.0:0", AllowNonLoopback: true})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer s.Stop(context.Background())
	port := s.Addr().(*net.TCPAddr).Port
	got, err := Call(t.Context(), fmt.Sprintf("http://127.0.0.1:%d/RPC", port), "int", []any{9})
	if err != nil || string(got) != "9" {
		t.Fatalf("Call = %s, %v", got, err)
	}
}

func TestIsLoopbackNetAddr(t *testing.T) {
	for _, tt := range []struct {
		a    net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, true},
		{&net.TCPAddr{IP: net.ParseIP("::1")}, true},
		{&net.TCPAddr{IP: net.ParseIP("10.0.0.1")}, false},
		{&net.TCPAddr{IP: net.IPv4zero}, false},
		{&net.UnixAddr{Name: "/tmp/x", Net: "unix"}, false},
	} {
		if got := isLoopbackNetAddr(tt.a); got != tt.want {
			t.Errorf("isLoopbackNetAddr(%v) = %v", tt.a, got)
		}
	}
}

func TestNewServerOptions(t *testing.T) {
	s, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.opts.Addr != "127.0.0.1:5071" || s.opts.Path != "/RPC" || s.opts.MaxBody != 1<<20 ||
		s.opts.ReadTimeout <= 0 || s.opts.WriteTimeout <= 0 {
		t.Errorf("defaults not applied: %+v", s.opts)
	}
	for _, bad := range []Options{
		{Path: "RPC"},
		{MaxBody: -1},
		{Addr: "127.0.0.1"},
		{ReadTimeout: -time.Second},
	} {
		if _, err := NewServer(bad); err == nil {
			t.Errorf("NewServer(%+v) accepted", bad)
		}
	}
	s2, err := NewServer(Options{Path: "/jsonrpc"})
	if err != nil {
		t.Fatal(err)
	}
	url := newHTTPTest(t, s2)
	if !strings.HasSuffix(url, "/jsonrpc") {
		t.Fatal(url)
	}
	if r := post(t, url, `{"jsonrpc":"2.0","method":"system.listMethods","id":1}`); r.status != 200 {
		t.Errorf("custom path: %d %s", r.status, r.body)
	}
}

func TestRegister(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	h := func(context.Context, Params) (any, error) { return nil, nil }
	err := s.Register(Method{Name: "echo", Handler: h})
	if !errors.Is(err, ErrDuplicateMethod) || !strings.Contains(err.Error(), `"echo"`) {
		t.Errorf("duplicate: %v", err)
	}
	if err := s.Register(Method{Name: "system.listMethods", Handler: h}); !errors.Is(err, ErrDuplicateMethod) {
		t.Errorf("duplicate builtin: %v", err)
	}
	if err := s.Register(Method{Name: "", Handler: h}); err == nil {
		t.Error("empty name accepted")
	}
	if err := s.Register(Method{Name: "x"}); err == nil {
		t.Error("nil handler accepted")
	}
	if slices.Contains(s.Methods(), "x") {
		t.Error("failed registration left a method")
	}
}

func TestBuiltins(t *testing.T) {
	s, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := func(context.Context, Params) (any, error) { return nil, nil }
	for _, m := range []Method{
		{Name: "mqueue.get_size", Doc: "Get size of a queue.", Handler: h},
		{Name: "core.version", Doc: "Returns the version string of the server.", Handler: h},
		{Name: "app_lua.reload", Handler: h},
	} {
		if err := s.Register(m); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"app_lua.reload", "core.version", "mqueue.get_size", "system.listMethods", "system.methodHelp"}
	if got := s.Methods(); !slices.Equal(got, want) {
		t.Errorf("Methods() = %v", got)
	}
	url := newHTTPTest(t, s)
	tests := []struct {
		req, want string
		status    int
	}{
		{`{"jsonrpc":"2.0","method":"system.listMethods","id":1}`,
			`{"jsonrpc":"2.0","result":["app_lua.reload","core.version","mqueue.get_size","system.listMethods","system.methodHelp"],"id":1}`, 200},
		{`{"jsonrpc":"2.0","method":"system.methodHelp","params":["mqueue.get_size"],"id":1}`,
			`{"jsonrpc":"2.0","result":"Get size of a queue.","id":1}`, 200},
		{`{"jsonrpc":"2.0","method":"system.methodHelp","params":["system.methodHelp"],"id":1}`,
			`{"jsonrpc":"2.0","result":"Print the help string for given method.","id":1}`, 200},
		{`{"jsonrpc":"2.0","method":"system.methodHelp","params":["app_lua.reload"],"id":1}`,
			`{"jsonrpc":"2.0","result":"undocumented","id":1}`, 200},
		{`{"jsonrpc":"2.0","method":"system.methodHelp","params":["nope"],"id":1}`,
			`{"jsonrpc":"2.0","error":{"code":500,"message":"Method Not Found"},"id":1}`, 500},
		{`{"jsonrpc":"2.0","method":"system.methodHelp","id":1}`,
			`{"jsonrpc":"2.0","error":{"code":400,"message":"Method Name Expected"},"id":1}`, 400},
		{`{"jsonrpc":"2.0","method":"system.methodHelp","params":[5],"id":1}`,
			`{"jsonrpc":"2.0","error":{"code":400,"message":"Method Name Expected"},"id":1}`, 400},
	}
	for _, tt := range tests {
		r := post(t, url, tt.req)
		if r.body != tt.want || r.status != tt.status {
			t.Errorf("%s\n got %d %s\nwant %d %s", tt.req, r.status, r.body, tt.status, tt.want)
		}
	}
}

func TestServerCall(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	ctx := t.Context()
	got, err := s.Call(ctx, "echo", "a", 1, map[string]int{"k": 2})
	if err != nil || string(got) != `["a",1,{"k":2}]` {
		t.Errorf("echo = %s, %v", got, err)
	}
	got, err = s.Call(ctx, "nilresult")
	if err != nil || string(got) != `{}` {
		t.Errorf("nilresult = %s, %v", got, err)
	}
	var f *Fault
	_, err = s.Call(ctx, "str", 12)
	if !errors.As(err, &f) || *f != (Fault{400, "No queue name"}) {
		t.Errorf("str(12) err = %v", err)
	}
	_, err = s.Call(ctx, "nope")
	if !errors.As(err, &f) || *f != (Fault{500, MsgMethodNotFound}) {
		t.Errorf("nope err = %v", err)
	}
	_, err = s.Call(ctx, "panic")
	if !errors.As(err, &f) || *f != (Fault{500, MsgInternalError}) {
		t.Errorf("panic err = %v", err)
	}
	_, err = s.Call(ctx, "echo", make(chan int))
	if err == nil || errors.As(err, &f) {
		t.Errorf("unmarshallable param: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	s, _ := newTestServer(t, Options{Addr: "127.0.0.1:0"})
	if s.Addr() != nil {
		t.Error("Addr before Start should be nil")
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("Stop before Start: %v", err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start: %v", err)
	}
	addr := s.Addr().(*net.TCPAddr)
	if !addr.IP.IsLoopback() || addr.Port == 0 {
		t.Fatalf("Addr = %v", addr)
	}
	url := fmt.Sprintf("http://%s/RPC", addr)

	// A method registered after Start is served.
	if err := s.Register(Method{Name: "late", Handler: func(context.Context, Params) (any, error) { return "here", nil }}); err != nil {
		t.Fatal(err)
	}
	if got, err := Call(t.Context(), url, "late", nil); err != nil || string(got) != `"here"` {
		t.Fatalf("late = %s, %v", got, err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := s.Start(t.Context()); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop: %v", err)
	}
	if _, err := Call(t.Context(), url, "late", nil); err == nil {
		t.Error("server still answering after Stop")
	}
}

func TestStartErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, _ := newTestServer(t, Options{Addr: ln.Addr().String()})
	if err := s.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "start jsonrpc server") {
		t.Errorf("Start on a busy port: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	s2, _ := newTestServer(t, Options{Addr: "127.0.0.1:0"})
	if err := s2.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with cancelled ctx: %v", err)
	}
}

// blockingMethod registers "block": it signals entered, then waits for
// release or for its context to end, reporting which.
func blockingMethod(t *testing.T, s *Server) (entered chan struct{}, release chan struct{}, ctxErr chan error) {
	t.Helper()
	entered, release, ctxErr = make(chan struct{}, 1), make(chan struct{}), make(chan error, 1)
	err := s.Register(Method{Name: "block", Handler: func(ctx context.Context, _ Params) (any, error) {
		entered <- struct{}{}
		select {
		case <-release:
			ctxErr <- nil
			return s.Addr().String(), nil // Addr must not block while Stop waits
		case <-ctx.Done():
			ctxErr <- ctx.Err()
			return nil, ctx.Err()
		case <-time.After(60 * time.Second): // longer than within's guard: only a broken test gets here
			ctxErr <- errors.New("handler gave up waiting")
			return nil, errors.New("handler gave up waiting")
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return entered, release, ctxErr
}

// within receives from ch or fails the test after 30 s, so that a broken
// shutdown fails instead of hanging.
func within[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestStopIsGraceful(t *testing.T) {
	s, _ := newTestServer(t, Options{Addr: "127.0.0.1:0"})
	entered, release, _ := blockingMethod(t, s)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/RPC", s.Addr())
	type res struct {
		raw json.RawMessage
		err error
	}
	done := make(chan res, 1)
	go func() {
		raw, err := Call(context.Background(), url, "block", nil)
		done <- res{raw, err}
	}()
	within(t, entered, "handler entered")
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) while a call was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if r := within(t, done, "in-flight call"); r.err != nil || string(r.raw) != `"`+s.Addr().String()+`"` {
		t.Errorf("in-flight call = %s, %v", r.raw, r.err)
	}
	if err := within(t, stopped, "Stop"); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestStopDeadlineCancelsHandlers(t *testing.T) {
	s, _ := newTestServer(t, Options{Addr: "127.0.0.1:0"})
	entered, _, ctxErr := blockingMethod(t, s)
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/RPC", s.Addr())
	callErr := make(chan error, 1)
	go func() {
		_, err := Call(context.Background(), url, "block", nil)
		callErr <- err
	}()
	within(t, entered, "handler entered")
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(ctx) }()
	if err := within(t, stopped, "Stop"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want deadline exceeded", err)
	}
	if err := within(t, ctxErr, "handler end"); !errors.Is(err, context.Canceled) {
		t.Errorf("handler ctx err = %v, want canceled", err)
	}
	if err := within(t, callErr, "client call"); err == nil {
		t.Error("client call should fail when the server is forced down")
	}
}

func TestStartContextEndsServer(t *testing.T) {
	s, _ := newTestServer(t, Options{Addr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(t.Context())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://%s/RPC", s.Addr())
	if _, err := Call(t.Context(), url, "int", []any{1}); err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open after ctx cancel")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("Stop after ctx cancel: %v", err)
	}
}

// TestConcurrent exercises registration, listing and calls in parallel (run
// with -race).
func TestConcurrent(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	url := newHTTPTest(t, s)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				name := fmt.Sprintf("m.%d.%d", g, i)
				if err := s.Register(Method{Name: name, Handler: func(context.Context, Params) (any, error) { return name, nil }}); err != nil {
					t.Error(err)
					return
				}
				got, err := s.Call(t.Context(), name)
				if err != nil || string(got) != `"`+name+`"` {
					t.Errorf("%s = %s, %v", name, got, err)
				}
				_ = s.Methods()
				if i%5 == 0 {
					r := post(t, url, fmt.Sprintf(`{"jsonrpc":"2.0","method":%q,"id":%d}`, name, i))
					if r.status != 200 {
						t.Errorf("%s over HTTP: %d %s", name, r.status, r.body)
					}
				}
			}
		})
	}
	wg.Wait()
	if n := len(s.Methods()); n != 2+len(testMethods())+8*20 {
		t.Errorf("%d methods", n)
	}
}

func TestFault(t *testing.T) {
	f := &Fault{Code: 404, Message: "No such queue"}
	if f.Error() != "jsonrpc fault 404: No such queue" {
		t.Errorf("Error() = %q", f.Error())
	}
	var nilF *Fault
	if nilF.Error() == "" {
		t.Error("nil Fault Error() empty")
	}
	var err error = fmt.Errorf("x: %w", f)
	var got *Fault
	if !errors.As(err, &got) || got != f {
		t.Error("errors.As through wrap failed")
	}
	for code, want := range map[int]int{404: 404, 400: 400, 599: 599, 500: 500, 0: 500, -32000: 500,
		-32600: 400, -32700: 400, -32601: 500, 150: 500, 204: 500, 302: 500, 600: 500, 101: 500} {
		if got := httpStatus(code); got != want {
			t.Errorf("httpStatus(%d) = %d, want %d", code, got, want)
		}
	}
}

// TestHTTPTestServerUsesHandler makes sure ServeHTTP works mounted under a
// mux as well.
func TestMountedInMux(t *testing.T) {
	s, _ := newTestServer(t, Options{})
	mux := http.NewServeMux()
	mux.Handle("/RPC", s)
	ts := httptest.NewServer(mux)
	defer ts.Close()
	got, err := Call(t.Context(), ts.URL+"/RPC", "int", []any{"8"})
	if err != nil || string(got) != "8" {
		t.Fatalf("Call = %s, %v", got, err)
	}
}
