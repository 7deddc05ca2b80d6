package sipnet

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// responseCases are requests the stateless writer must answer exactly as
// buildResponse does: several Vias, rport or not, received needed or not,
// tagged and untagged To, Record-Route, Timestamp, IPv6.
var responseCases = []string{
	"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-1;rport\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example.com;branch=z9hG4bK-2;received=10.0.0.9\r\nVia: SIP/2.0/TCP 10.1.1.1:5070;branch=z9hG4bK-x\r\nRecord-Route: <sip:10.1.1.1;lr>\r\nFrom: \"Al\" <sip:x@y>;tag=1\r\nTo: Bob <sip:a@b>;tag=already\r\nCall-ID: c2@h\r\nCSeq: 7 INVITE\r\nTimestamp: 54\r\nContact: <sip:x@1.2.3.4>\r\nContent-Length: 0\r\n\r\n",
	"MESSAGE sip:a@b SIP/2.0\r\nv: SIP/2.0/UDP [2001:db8::1]:5080;branch=z9hG4bK-3;rport;x=\"q v\"\r\nf: <sip:x@y>;tag=1\r\nt: <sip:a@b>;p=1\r\ni: c3\r\nCSeq: 2 MESSAGE\r\nl: 2\r\n\r\nhi",
	"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;received=1.1.1.1;branch=z9hG4bK-5;rport;rport=9;lr\r\nVia: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK-6\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c5\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:4000;branch=z9hG4bK-7;rport=4000\r\nVia: SIP/2.0/UDP ::ffff:1.2.3.4;branch=z9hG4bK-8\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c6\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	"INVITE sip:a@b SIP/2.0\r\nVIA: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-9\r\nUser-Agent: x\r\nRECORD-ROUTE: <sip:r1;lr>\r\nrecord-route: <sip:r2;lr>\r\nRecord-Routes: <sip:no>\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c7\r\nCSeq: 1 INVITE\r\nTIMESTAMP: 5\r\nContent-Length: 0\r\n\r\n",
	// From and To URIs: ports, user and password, URI parameters and
	// headers, IPv6 hosts, other schemes, display names, header params.
	"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-10\r\nFrom: \"Alice A\" <sips:alice:secret@[2001:db8::5]:5061;transport=tls;lr?subject=x&h=y>;tag=9;x=\"a b\"\r\nTo: Bob <sip:bob@example.com:5090;user=phone>;p\r\nCall-ID: c10\r\nCSeq: 3 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-11\r\nFrom: <tel:+1-555-0100;phone-context=example.com>;tag=t\r\nTo: sip:10.0.0.1:65535\r\nCall-ID: c11\r\nCSeq: 4 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-12\r\nFrom: <sip:u@h:1>;tag=a\r\nTo: \"\" <sip:[::1]>;tag=\r\nCall-ID: c12\r\nCSeq: 5 OPTIONS\r\nContent-Length: 0\r\n\r\n",
	"REGISTER sip:b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-4\r\nRecord-Route: <sip:r>\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:x@y>\r\nCall-ID: c4\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n",
}

// checkWriteResponse compares the two for raw, a request; it reports false
// when raw is not one.
func checkWriteResponse(t *testing.T, raw []byte) bool {
	m, err := sip.ParseMessage(raw)
	if err != nil {
		return false
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return false
	}
	srv := &Server{opts: Options{ServerHeader: "kemi test"}}
	srcs := []netip.AddrPort{{}, netip.MustParseAddrPort("127.0.0.1:5080"), netip.MustParseAddrPort("192.0.2.7:4000"), netip.MustParseAddrPort("[2001:db8::1]:5080")}
	extras := [][]sip.Header{nil, {sip.NewHeader("X-A", "1"), sip.NewHeader("Warning", `399 kemi "x"`)}}
	bodies := [][]byte{nil, []byte("body")}
	for _, src := range srcs {
		r := &Request{Msg: req, Src: src, srv: srv}
		for _, code := range []int{100, 180, 200, 404, 503} {
			for _, extra := range extras {
				for _, body := range bodies {
					want := buildResponse(r, code, "Some Reason", "tag1", extra, body).String()
					var b replyBuf
					if !writeResponse(&b, r, code, "Some Reason", "tag1", extra, body) {
						t.Fatalf("writeResponse refused extra %v", extra)
					}
					if got := string(b.b); got != want {
						t.Fatalf("code %d src %v extra %v body %q:\n got %q\nwant %q", code, src, extra, body, got, want)
					}
				}
			}
		}
	}
	return true
}

func TestWriteResponseMatchesBuildResponse(t *testing.T) {
	for i, c := range responseCases {
		if !checkWriteResponse(t, []byte(c)) {
			t.Fatalf("case %d does not parse as a request", i)
		}
	}
	seeds, _ := filepath.Glob("../engine/testdata/sip/*.sip")
	for _, f := range seeds {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkWriteResponse(t, raw)
	}
	// A Content-Length among the extra headers is left to buildResponse.
	m, _ := sip.ParseMessage([]byte(responseCases[0]))
	r := &Request{Msg: m.(*sip.Request), srv: &Server{}}
	if writeResponse(new(replyBuf), r, 200, "OK", "", []sip.Header{sip.NewHeader("Content-Length", "3")}, nil) {
		t.Fatal("writeResponse took a Content-Length in extra")
	}
}

// TestWriteResponseNewTag: without a tag given, the To of a reply gets a
// new 16 hex digit one, as buildResponse's newTag.
func TestWriteResponseNewTag(t *testing.T) {
	m, _ := sip.ParseMessage([]byte(responseCases[0]))
	r := &Request{Msg: m.(*sip.Request), srv: &Server{}}
	var b replyBuf
	if !writeResponse(&b, r, 200, "OK", "", nil, nil) {
		t.Fatal("writeResponse refused")
	}
	res, err := sip.ParseMessage(b.b)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := res.(*sip.Response).To().Params.Get("tag")
	if len(tag) != 16 || strings.Trim(tag, "0123456789abcdef") != "" {
		t.Fatalf("To tag %q, want 16 hex digits", tag)
	}
	if want := "To: <sip:a@b>;tag=" + tag + "\r\n"; !strings.Contains(string(b.b), want) {
		t.Fatalf("reply %q lacks %q", b.b, want)
	}
}

func FuzzWriteResponse(f *testing.F) {
	for _, c := range responseCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkWriteResponse(t, raw) })
}

type discard struct{}

func (discard) HandleRequest(*Request)   {}
func (discard) HandleResponse(*Response) {}

// BenchmarkStatelessReplyUDP: a stateless 200 to an OPTIONS sent from a
// UDP listener, written straight into a pooled buffer (written) or built as
// a sip.Response and serialised (built, what it was before).
func BenchmarkStatelessReplyUDP(b *testing.B) {
	srv, err := New(Options{Listen: []Listen{{Proto: "udp", Addr: "127.0.0.1:0"}}}, discard{})
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer srv.Stop(b.Context())
	sink, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	go func() { // keep the sink's queue empty
		buf := make([]byte, 2048)
		for {
			if _, _, err := sink.ReadFromUDPAddrPort(buf); err != nil {
				return
			}
		}
	}()
	m, _ := sip.ParseMessage([]byte(responseCases[0]))
	r := &Request{Msg: m.(*sip.Request), Listener: srv.Listener("udp"), Src: sink.LocalAddr().(*net.UDPAddr).AddrPort(), srv: srv}
	benchWrittenBuilt(b, r)
}

// benchWrittenBuilt runs the sub-benchmarks of a stateless 200 to r:
// written (ReplyStateless) and built (the reply built as a sip.Response,
// then sent).
func benchWrittenBuilt(b *testing.B, r *Request) {
	b.Run("written", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := r.ReplyStateless(200, "OK", nil, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("built", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := r.Listener.send(buildResponse(r, 200, "OK", "", nil, nil)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkWriteResponse: the stateless 200 to sipp's OPTIONS (bench/sipp/
// options.xml, with its User-Agent) written into a buffer, no socket: the
// CPU of kemi's reply writer alone.
func BenchmarkWriteResponse(b *testing.B) {
	m, err := sip.ParseMessage([]byte("OPTIONS sip:bench@127.0.0.1:15060 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:18060;branch=z9hG4bK-1-1-0\r\n" +
		"From: <sip:sipp@127.0.0.1:18060>;tag=1234-1\r\n" +
		"To: <sip:bench@127.0.0.1:15060>\r\n" +
		"Call-ID: 1-1234@127.0.0.1\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 70\r\n" +
		"User-Agent: kemi-bench\r\n" +
		"Content-Length: 0\r\n\r\n"))
	if err != nil {
		b.Fatal(err)
	}
	r := &Request{Msg: m.(*sip.Request), Src: netip.MustParseAddrPort("127.0.0.1:18060"), srv: &Server{}}
	var buf replyBuf
	b.ReportAllocs()
	for b.Loop() {
		buf.b = buf.b[:0]
		writeResponse(&buf, r, 200, "OK", "", nil, nil)
	}
}
