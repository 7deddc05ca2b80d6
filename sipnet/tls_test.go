package sipnet

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestResolveSecureAndWebSocket(t *testing.T) {
	s := &Server{}
	for uri, want := range map[string]string{
		"sips:bob@10.0.0.1":                   "tls:10.0.0.1:5061",
		"sip:bob@10.0.0.1;transport=tls":      "tls:10.0.0.1:5061",
		"sip:bob@10.0.0.1:5071;transport=TLS": "tls:10.0.0.1:5071",
		"sips:bob@10.0.0.1;transport=tcp":     "tls:10.0.0.1:5061",
		"sip:bob@10.0.0.1:8080;transport=ws":  "ws:10.0.0.1:8080",
		"sips:bob@10.0.0.1;transport=ws":      "wss:10.0.0.1:443",
		"sip:bob@10.0.0.1;transport=wss":      "wss:10.0.0.1:443",
		"sip:bob@10.0.0.1":                    "udp:10.0.0.1:5060",
	} {
		got, err := s.ResolveURI(context.Background(), uri)
		if err != nil || got.String() != want {
			t.Errorf("%s: %v %v, want %s", uri, got, err, want)
		}
	}
	if _, err := s.ResolveURI(context.Background(), "sip:bob@10.0.0.1;transport=sctp"); err == nil {
		t.Error("sctp resolved")
	}
}

func TestDoubleRecordRoute(t *testing.T) {
	in := &Listener{Proto: "ws", Addr: netip.MustParseAddrPort("192.0.2.1:8080")}
	out := &Listener{Proto: "udp", Addr: netip.MustParseAddrPort("192.0.2.1:5060")}
	to := Target{Proto: "udp", Addr: netip.MustParseAddrPort("192.0.2.9:5060")}
	build := func(rr string) *sip.Request {
		raw := "MESSAGE sip:bob@192.0.2.9 SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bK1\r\n" +
			"From: <sip:alice@a>;tag=1\r\nTo: <sip:bob@b>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"
		m, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		r := m.(*sip.Request)
		if rr != "" {
			var u sip.Uri
			if err := sip.ParseUri(rr, &u); err != nil {
				t.Fatal(err)
			}
			r.AppendHeader(&sip.RecordRouteHeader{Address: u})
		}
		return r
	}
	rrs := func(r *sip.Request) string {
		var v []string
		for _, h := range r.GetHeaders("Record-Route") {
			v = append(v, h.Value())
		}
		return strings.Join(v, " , ")
	}

	r := build("sip:192.0.2.1:8080;transport=ws;lr;ftag=1")
	doubleRR(r, in, out, to)
	if got, want := rrs(r), "<sip:192.0.2.1:5060;r2=on;lr;ftag=1> , <sip:192.0.2.1:8080;transport=ws;r2=on;lr;ftag=1>"; got != want {
		t.Errorf("ws in, udp out:\n got %s\nwant %s", got, want)
	}
	// Same listener out: nothing added.
	r = build("sip:192.0.2.1:8080;transport=ws;lr;ftag=1")
	doubleRR(r, in, in, to)
	if got := rrs(r); got != "<sip:192.0.2.1:8080;transport=ws;lr;ftag=1>" {
		t.Errorf("same listener: %s", got)
	}
	// A top Record-Route that is not the receiving listener's: untouched.
	r = build("sip:198.51.100.7;lr")
	doubleRR(r, in, out, to)
	if got := rrs(r); got != "<sip:198.51.100.7;lr>" {
		t.Errorf("foreign Record-Route: %s", got)
	}
	// No Record-Route (not record-routed): untouched.
	r = build("")
	doubleRR(r, in, out, to)
	if got := rrs(r); got != "" {
		t.Errorf("no Record-Route: %s", got)
	}
	if RRTransport("wss") != "ws" || RRTransport("udp") != "" || RRTransport("tls") != "tls" {
		t.Error("RRTransport")
	}
}
