package jsonrpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestClientCall(t *testing.T) {
	s, _ := newTestServer(t, Options{Addr: "127.0.0.1:0"})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Stop(t.Context()) })
	url := fmt.Sprintf("http://%s/RPC", s.Addr())
	ctx := t.Context()

	tests := []struct {
		method string
		params []any
		want   string
		fault  *Fault
	}{
		{"echo", nil, `[]`, nil},
		{"echo", []any{"a", int64(2), true}, `["a",2,true]`, nil},
		{"echo", ParseCLIArgs([]string{"q1", "12", "s:12", "i:7"}), `["q1",12,"12",7]`, nil},
		{"size", nil, `{"name":"q<1>&","size":3}`, nil},
		{"nilresult", nil, `{}`, nil},
		{"str", ParseCLIArgs([]string{"123"}), ``, &Fault{400, "No queue name"}},
		{"str", ParseCLIArgs([]string{"s:123"}), `"123"`, nil},
		{"fault404", nil, ``, &Fault{404, "No such queue"}},
		{"fault0", nil, ``, &Fault{-32000, "zero"}},
		{"plainerr", nil, ``, &Fault{500, "disk on fire"}},
		{"panic", nil, ``, &Fault{500, "Internal error"}},
		{"nope", nil, ``, &Fault{500, "Method Not Found"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s%v", tt.method, tt.params), func(t *testing.T) {
			got, err := Call(ctx, url, tt.method, tt.params)
			if tt.fault == nil {
				if err != nil || string(got) != tt.want {
					t.Fatalf("Call = %s, %v; want %s", got, err, tt.want)
				}
				return
			}
			var f *Fault
			if !errors.As(err, &f) {
				t.Fatalf("err = %v (%T), want *Fault", err, err)
			}
			if *f != *tt.fault {
				t.Errorf("fault = %+v, want %+v", *f, *tt.fault)
			}
			if got != nil {
				t.Errorf("result %s with a fault", got)
			}
		})
	}
}

func TestClientCallErrors(t *testing.T) {
	ctx := t.Context()
	var f *Fault

	// Nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("http://%s/RPC", ln.Addr())
	ln.Close()
	if _, err := Call(ctx, dead, "x", nil); err == nil || errors.As(err, &f) {
		t.Errorf("dead server: %v", err)
	}

	// Not JSON-RPC.
	replies := map[string]func(w http.ResponseWriter){
		"/html": func(w http.ResponseWriter) { w.WriteHeader(502); io.WriteString(w, "<html>bad gateway</html>") },
		"/empty200": func(w http.ResponseWriter) {
			io.WriteString(w, `{"jsonrpc":"2.0","id":1}`)
		},
		"/status": func(w http.ResponseWriter) {
			w.WriteHeader(503)
			io.WriteString(w, `{"jsonrpc":"2.0","result":{},"id":1}`)
		},
		"/kamailio": func(w http.ResponseWriter) { // pretty-printed Kamailio fault
			w.WriteHeader(404)
			io.WriteString(w, "{\n\t\"jsonrpc\":\t\"2.0\",\n\t\"error\":\t{\n\t\t\"code\":\t404,\n\t\t\"message\":\t\"No such queue\"\n\t},\n\t\"id\":\t1\n}")
		},
	}
	var gotReq []byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotReq, _ = io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" || r.Method != "POST" {
			w.WriteHeader(400)
			return
		}
		replies[r.URL.Path](w)
	}))
	defer ts.Close()
	for _, path := range []string{"/html", "/empty200", "/status"} {
		if _, err := Call(ctx, ts.URL+path, "x", nil); err == nil || errors.As(err, &f) {
			t.Errorf("%s: %v", path, err)
		} else if !strings.Contains(err.Error(), "rpc x") {
			t.Errorf("%s: error lacks the method: %v", path, err)
		}
	}
	_, err = Call(ctx, ts.URL+"/kamailio", "mqueue.get_size", []any{"q"})
	if !errors.As(err, &f) || *f != (Fault{404, "No such queue"}) {
		t.Errorf("kamailio fault: %v", err)
	}
	if string(gotReq) != `{"jsonrpc":"2.0","method":"mqueue.get_size","params":["q"],"id":1}` {
		t.Errorf("request sent: %s", gotReq)
	}
	if _, err := Call(ctx, ts.URL+"/html", "x", []any{make(chan int)}); err == nil {
		t.Error("unmarshallable param accepted")
	}
}

func TestParseCLIArgs(t *testing.T) {
	tests := []struct {
		in   []string
		want []any
	}{
		{nil, []any{}},
		{[]string{"q1"}, []any{"q1"}},
		{[]string{"12"}, []any{int64(12)}},
		{[]string{"-12"}, []any{int64(-12)}},
		{[]string{"0"}, []any{int64(0)}},
		{[]string{"007"}, []any{"007"}},
		{[]string{"+5"}, []any{"+5"}},
		{[]string{"1.5"}, []any{"1.5"}},
		{[]string{"1e3"}, []any{"1e3"}},
		{[]string{"0x10"}, []any{"0x10"}},
		{[]string{"-"}, []any{"-"}},
		{[]string{""}, []any{""}},
		{[]string{"99999999999999999999"}, []any{"99999999999999999999"}},
		{[]string{"9223372036854775807"}, []any{int64(9223372036854775807)}},
		{[]string{"s:123"}, []any{"123"}},
		{[]string{"s:"}, []any{""}},
		{[]string{"s:i:5"}, []any{"i:5"}},
		{[]string{"i:12"}, []any{int64(12)}},
		{[]string{"i:-3"}, []any{int64(-3)}},
		{[]string{"i:007"}, []any{int64(7)}},
		{[]string{"i:abc"}, []any{"i:abc"}},
		{[]string{"i:"}, []any{"i:"}},
		{[]string{"S:x"}, []any{"S:x"}},
		{[]string{"x:y"}, []any{"x:y"}},
		{[]string{"mqueue.get_size", "12", "s:12", "i:3", "true"}, []any{"mqueue.get_size", int64(12), "12", int64(3), "true"}},
	}
	for _, tt := range tests {
		got := ParseCLIArgs(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseCLIArgs(%q) = %#v, want %#v", tt.in, got, tt.want)
		}
		// What goes on the wire.
		if _, err := json.Marshal(got); err != nil {
			t.Errorf("marshal %v: %v", got, err)
		}
	}
	for _, bad := range []string{"i:abc", "i:", "i:1.5", "i:99999999999999999999"} {
		if _, err := ParseCLIArg(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseCLIArg(%q) err = %v", bad, err)
		}
	}
}
