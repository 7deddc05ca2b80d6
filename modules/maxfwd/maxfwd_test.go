package maxfwd_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/maxfwd"
	"kemi/sipnet"
)

// call runs expr on a request carrying the Max-Forwards header line hdr
// ("" for none) and returns its value and the request after it.
func call(t *testing.T, m *maxfwd.Module, hdr, expr string) (string, *sip.Request) {
	t.Helper()
	var log bytes.Buffer
	d := ksrtest.Deps(t, &log, m)
	raw := "MESSAGE sip:b@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n" +
		"From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\n" +
		hdr + "Content-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	env := ksr.NewEnv(d, "t/0", "t", 0)
	env.Msg = &ksr.Msg{Req: sipnet.NewFakeRequest(req)}
	L := lua.NewState()
	defer L.Close()
	ksr.Register(L, env)
	if err := L.DoString("return " + expr); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return L.Get(-1).String(), req
}

// TestProcessMaxfwd follows process_maxfwd_header in maxfwd.c at 5.6.3.
func TestProcessMaxfwd(t *testing.T) {
	cases := []struct {
		hdr, expr, want, after string // after: the header's value afterwards ("" absent)
	}{
		{"Max-Forwards: 10\r\n", "KSR.maxfwd.process_maxfwd(10)", "1", "9"},
		{"Max-Forwards: 1\r\n", "KSR.maxfwd.process_maxfwd(10)", "1", "0"},
		{"Max-Forwards: 0\r\n", "KSR.maxfwd.process_maxfwd(10)", "-1", "0"},
		{"Max-Forwards: 200\r\n", "KSR.maxfwd.process_maxfwd(10)", "1", "70"}, // lowered to max_limit
		{"", "KSR.maxfwd.process_maxfwd(10)", "2", "10"},
		{"", "KSR.maxfwd.process_maxfwd(256)", "-1", ""},
		{"", "KSR.maxfwd.process_maxfwd(-1)", "-1", ""},
		{"Max-Forwards: 5\r\n", "KSR.maxfwd.is_maxfwd_lt(10)", "1", "5"},
		{"Max-Forwards: 10\r\n", "KSR.maxfwd.is_maxfwd_lt(10)", "-1", "10"},
		{"", "KSR.maxfwd.is_maxfwd_lt(10)", "-2", ""},
		{"Max-Forwards: 5\r\n", "KSR.maxfwd.is_maxfwd_lt(300)", "-1", "5"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%q %s", c.hdr, c.expr), func(t *testing.T) {
			got, req := call(t, maxfwd.New(), c.hdr, c.expr)
			if got != c.want {
				t.Fatalf("= %s, want %s", got, c.want)
			}
			after := ""
			if h := req.GetHeader("Max-Forwards"); h != nil {
				after = h.Value()
			}
			if after != c.after {
				t.Fatalf("Max-Forwards afterwards %q, want %q", after, c.after)
			}
		})
	}
}

// TestAddedHeaderComesFirst: Kamailio inserts a missing Max-Forwards before
// the first header.
func TestAddedHeaderComesFirst(t *testing.T) {
	_, req := call(t, maxfwd.New(), "", "KSR.maxfwd.process_maxfwd(70)")
	if hs := req.Headers(); len(hs) == 0 || hs[0].Name() != "Max-Forwards" {
		t.Fatalf("first header %v", hs)
	}
}
