package sipnet

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestEncodeMessageAsSipgo: encodeMessage writes what sipgo's StringWrite
// writes, for parsed messages and for headers built in code (IPv6 hosts,
// quoted parameters, URI headers, raw URIs, wildcard Contact, compact form).
func TestEncodeMessageAsSipgo(t *testing.T) {
	raw := []string{
		"INVITE sip:bob@[2001:db8::1]:5080;transport=udp;lr SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::2]:5060;branch=z9hG4bK1;rport;received=2001:db8::9\r\n" +
			"Via: SIP/2.0/TCP host.example.com;branch=z9hG4bK2\r\nMax-Forwards: 170\r\nRoute: <sip:p1.example.com;lr>\r\nRecord-Route: <sip:10.0.0.1:5070;lr;ftag=x;r2=on>\r\n" +
			"From: \"Alice A\" <sip:alice:secret@example.com>;tag=1928301774\r\nTo: <sip:bob@example.com?subject=hi&x=1>\r\nCall-ID: a84b4c76e66710@pc33\r\n" +
			"CSeq: 314159 INVITE\r\nContact: <sips:alice@[::1]:5061>;expires=3600;q=0.7\r\nContent-Type: application/sdp\r\nX-Custom: some  value ; p\r\nContent-Length: 4\r\n\r\nv=0\n",
		"MESSAGE tel:+1-201-555-0123 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK3\r\nFrom: <sip:a@x>;tag=1\r\nTo: <tel:+1-201-555-0123>\r\nCall-ID: 1\r\nCSeq: 2 MESSAGE\r\nContact: *\r\nExpires: 0\r\nContent-Length: 150\r\n\r\n" + strings.Repeat("b", 150),
		"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK4;received=192.0.2.9;rport=5099\r\nFrom: <sip:a@x>;tag=1\r\nTo: \"B\" <sip:b@x>;tag=2\r\nCall-ID: 2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/WSS abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnop.invalid;branch=z9hG4bK5\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: 3\r\nCSeq: 1 OPTIONS\r\n\r\n",
	}
	var msgs []sip.Message
	for _, r := range raw {
		m, err := sip.ParseMessage([]byte(r))
		if err != nil {
			t.Fatalf("parse: %v\n%s", err, r)
		}
		msgs = append(msgs, m)
	}
	// Built in code: values a parser would not produce.
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sips", User: "u", Host: "::ffff:192.0.2.1", Port: 5061,
		UriParams: sip.HeaderParams{{K: "a", V: "b c"}, {K: "lr"}}, Headers: sip.HeaderParams{{K: "h", V: "1"}}})
	req.AppendHeader(&sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "fe80::1", Port: 0,
		Params: sip.HeaderParams{{K: "branch", V: "z9hG4bK6"}, {K: "x", V: "y\tz"}}})
	req.AppendHeader(&sip.FromHeader{DisplayName: "D", Address: sip.Uri{Host: "h"}, Params: sip.HeaderParams{{K: "tag", V: "t"}}})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Wildcard: true}})
	req.AppendHeader(sip.NewHeader("X-Empty", ""))
	mf := sip.MaxForwardsHeader(5)
	req.AppendHeader(&mf)
	req.SetBody([]byte("body"))
	msgs = append(msgs, req)
	compact := req.Clone()
	compact.CompactHeaders = true
	msgs = append(msgs, compact, sip.NewResponse(100, "Trying"))
	for i, m := range msgs {
		var got replyBuf
		encodeMessage(&got, m)
		if want := m.String(); string(got.b) != want {
			t.Errorf("message %d:\ngot  %q\nwant %q", i, got.b, want)
		}
	}
}

// BenchmarkEncodeMessage: a relayed request, encoded without allocating.
func BenchmarkEncodeMessage(b *testing.B) {
	m, err := sip.ParseMessage([]byte("MESSAGE sip:uas@127.0.0.1:5090 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKkm0123456789abcdef\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-b1;received=127.0.0.1\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:uas@127.0.0.1:5090>\r\n" +
		"Call-ID: 1-bench\r\nCSeq: 1 MESSAGE\r\nMax-Forwards: 70\r\nContent-Length: 5\r\n\r\nhello"))
	if err != nil {
		b.Fatal(err)
	}
	var buf replyBuf
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf.b = buf.b[:0]
		encodeMessage(&buf, m)
	}
}

// TestRelayCopy: the copy a proxy forwards reads as sipgo's Clone of the
// request, and what changes the received request in place afterwards (its
// top Via's parameters, rr's own Record-Route) or the copy (StampVia, the
// From rewritten by pending edits) stays on its side.
func TestRelayCopy(t *testing.T) {
	m, err := sip.ParseMessage([]byte("MESSAGE sip:bob@example.com;x=1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1;rport\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK0\r\nFrom: \"A\" <sip:a@x>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\n" +
		"Max-Forwards: 70\r\nX-Custom: v\r\nContent-Length: 5\r\n\r\nhello"))
	if err != nil {
		t.Fatal(err)
	}
	in := m.(*sip.Request)
	rr := &sip.RecordRouteHeader{Address: sip.Uri{Host: "10.0.0.1", UriParams: sip.HeaderParams{{K: "lr"}}}}
	in.PrependHeader(rr)
	want := in.Clone().String()
	out := RelayCopy(in, true, rr)
	if got := out.String(); got != want {
		t.Fatalf("copy\n%q\nwant\n%q", got, want)
	}
	if out.Via() == in.Via() || out.From() == in.From() || out.To() == in.To() || out.GetHeader("Record-Route") == sip.Header(rr) {
		t.Fatal("the Via, From, To or own Record-Route of the copy is the received one")
	}
	if out.CallID() != in.CallID() {
		t.Fatal("a header nothing changes in place was copied")
	}
	// The received request changes after the copy was sent...
	in.Via().Params.Add("received", "192.0.2.50")
	rr.Address.UriParams.Add("ftag", "z")
	if got := out.String(); got != want {
		t.Fatalf("the copy changed with the received request:\n%q\nwant\n%q", got, want)
	}
	// ...and the copy changes before it is sent.
	before := in.String()
	(&Request{Msg: in, Src: netip.MustParseAddrPort("198.51.100.7:5999")}).StampVia(out, true)
	out.From().DisplayName = "B"
	out.PrependHeader(sip.NewHeader("Route", "<sip:p@example.com;lr>"))
	if in.String() != before {
		t.Fatalf("the received request changed with the copy:\n%q\nwant\n%q", in.String(), before)
	}
	if v := out.Via().Params; len(v) != 3 || v[0].V != "198.51.100.7" || v[2].V != "5999" {
		t.Fatalf("stamped Via params %v", v)
	}
}
