package sipnet

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/emiago/sipgo/sip"
)

// crlf joins lines with CRLF and ends the header section; body (if any)
// follows the blank line.
func crlf(body string, lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n" + body)
}

// handCorpus is kemi's own message shapes: what sipp, phones, Kamailio and
// kemi's tests send, and forms the fast path must leave to sipgo.
func handCorpus() map[string][]byte {
	sdp := "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"
	c := map[string][]byte{
		"options": crlf("",
			"OPTIONS sip:bench@127.0.0.1:5060 SIP/2.0",
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1234-1-0",
			"From: <sip:sipp@127.0.0.1:5070>;tag=1234-1",
			"To: <sip:bench@127.0.0.1:5060>",
			"Call-ID: 1-1234@127.0.0.1",
			"CSeq: 1 OPTIONS",
			"Max-Forwards: 70",
			"User-Agent: kemi-bench",
			"Content-Length: 0"),
		// sipp's [last_Via:] joins the Vias on one line.
		"reply200-via-list": crlf("",
			"SIP/2.0 200 OK",
			"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.k1.0;rport=5060, SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1234-1-0;received=127.0.0.1",
			"From: <sip:sipp@127.0.0.1:5070>;tag=1234-1",
			"To: <sip:uas@127.0.0.1:5090>;tag=99-1",
			"Call-ID: 1-1234@127.0.0.1",
			"CSeq: 1 MESSAGE",
			"Content-Length: 0"),
		// sipp's [routes] lists the route set on one line.
		"bye-route-list": crlf("",
			"BYE sip:uas@127.0.0.1:5090 SIP/2.0",
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1234-2-7",
			"Route: <sip:127.0.0.1:5060;lr;ftag=1234-1>, <sip:127.0.0.1:5062;lr>",
			"Record-Route: <sip:p1;lr>, <sip:p2;lr>",
			"From: <sip:sipp@127.0.0.1:5070>;tag=1234-1",
			"To: <sip:uas@127.0.0.1:5090>;tag=99-1",
			"Call-ID: 1-1234@127.0.0.1",
			"CSeq: 2 BYE",
			"Content-Length: 0"),
		"reply200-2via": crlf("",
			"SIP/2.0 200 OK",
			"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.k1.0;rport=5060;received=127.0.0.1",
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1234-1-0;received=127.0.0.1;rport=5070",
			"From: <sip:sipp@127.0.0.1:5070>;tag=1234-1",
			"To: <sip:bench@127.0.0.1:5060>;tag=5678-1",
			"Call-ID: 1-1234@127.0.0.1",
			"CSeq: 1 MESSAGE",
			"Content-Length: 0"),
		"message": crlf("hello",
			"MESSAGE sip:bench@127.0.0.1:5060 SIP/2.0",
			"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1",
			"From: <sip:sipp@127.0.0.1:5070>;tag=1",
			"To: <sip:bench@127.0.0.1:5060>",
			"Call-ID: c1",
			"CSeq: 1 MESSAGE",
			"Max-Forwards: 70",
			"Content-Type: text/plain",
			"Content-Length: 5"),
		"invite-sdp": crlf(sdp,
			"INVITE sip:bob@biloxi.example.com;transport=udp SIP/2.0",
			"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds;rport",
			"Max-Forwards: 70",
			"Route: <sip:p1.example.com;lr>",
			"Route: <sip:p2.example.com;lr;ftag=abc>",
			`From: "Alice A." <sip:alice@atlanta.example.com>;tag=1928301774`,
			"To: Bob <sip:bob@biloxi.example.com>",
			"Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
			"CSeq: 314159 INVITE",
			"Contact: <sip:alice@pc33.atlanta.example.com;ob>;+sip.instance=\"<urn:uuid:1>\";expires=60",
			"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE",
			"Supported: replaces, timer",
			"User-Agent: phone/1.0",
			"Content-Type: application/sdp",
			"Content-Length: "+strconv.Itoa(len(sdp))),
		"compact": crlf("abc",
			"MESSAGE sip:u@h SIP/2.0",
			"v: SIP/2.0/TCP h1:5061;branch=z9hG4bKx",
			"v: SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bKy;received=2001:db8::9",
			"f: sip:a@h;tag=x",
			"t: <sips:b@h>",
			"i: cid",
			"m: \"x\" <sip:a@h:5070;transport=tcp>",
			"c: text/plain",
			"l: 3",
			"k: path",
			"s: subject"),
		"record-route-reply": crlf("",
			"SIP/2.0 180 Ringing",
			"Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1",
			"Record-Route: <sip:10.0.0.2;lr;ftag=1;did=2>",
			"Record-Route: <sip:10.0.0.3:5080;transport=tcp;lr>",
			"Record-Route: <sip:[2001:db8::3];lr>",
			"From: <sip:a@h>;tag=1",
			"To: <sip:b@h>;tag=2",
			"Call-ID: x",
			"CSeq: 2 INVITE",
			"Contact: <sip:b@10.0.0.5:5090>",
			"Content-Length: 0"),
		"register": crlf("",
			"REGISTER sip:example.com SIP/2.0",
			"Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds7",
			"Max-Forwards: 70",
			"To: Bob <sip:bob@example.com>",
			"From: Bob <sip:bob@example.com>;tag=456248",
			"Call-ID: 843817637684230@998sdasdh09",
			"CSeq: 1826 REGISTER",
			"Contact: <sip:bob@192.0.2.4>;expires=7200;q=0.5",
			"Contact: <sip:bob@192.0.2.5:5070;transport=tcp>;q=1",
			"Contact: *",
			`Authorization: Digest username="bob", realm="example.com", nonce="abc", uri="sip:example.com", response="def"`,
			"Expires: 7200",
			"Content-Length: 0"),
		"many-params": crlf("",
			"OPTIONS sip:user:pw@host:5060;a=1;b;c=3;a=4?h1=v1&h2=v2 SIP/2.0",
			"Via: SIP/2.0/UDP host;branch=z9hG4bK1;a;b=2;c=\"q v\";d=4;e=5;f=6;g=7;h=8;i=9;j=10;k=11;l=12;m=13",
			"From: sip:a@h;p1=1;p2;p3=3;p4=4;p5=5;tag=t",
			"To: <sip:b@h;up=1;uq=2>;tp=1",
			"Call-ID: x",
			"CSeq: 1 OPTIONS",
			"Content-Length: 0"),
		"odd-spacing": crlf("",
			"OPTIONS sip:h SIP/2.0",
			"Via :  SIP / 2.0 / UDP   h:5060 ; branch=z9hG4bK1 ",
			"FROM:\t<sip:a@h>;tag=1",
			"tO: <sip:b@h>",
			"CALL-ID:x",
			"cseq: 7\tOPTIONS",
			"max-forwards: 10",
			"CONTENT-LENGTH: 0"),
		"no-content-length": crlf("body bytes",
			"MESSAGE sip:h SIP/2.0",
			"Via: SIP/2.0/UDP h;branch=z9hG4bK1",
			"From: <sip:a@h>;tag=1",
			"To: <sip:b@h>",
			"Call-ID: x",
			"CSeq: 1 MESSAGE"),
		"short-content-length": crlf("bodyextra",
			"MESSAGE sip:h SIP/2.0",
			"Via: SIP/2.0/UDP h;branch=z9hG4bK1",
			"Call-ID: x",
			"CSeq: 1 MESSAGE",
			"Content-Length: 4"),
		"long-content-length": crlf("body",
			"MESSAGE sip:h SIP/2.0",
			"Via: SIP/2.0/UDP h;branch=z9hG4bK1",
			"Content-Length: 40"),
		"comma-via": crlf("",
			"SIP/2.0 200 OK",
			"Via: SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2",
			"Route: <sip:a;lr>, <sip:b;lr>",
			"Contact: <sip:a@h>, <sip:b@h>;q=0.1",
			"CSeq: 1 INVITE"),
		"folded": crlf("",
			"OPTIONS sip:h SIP/2.0",
			"Subject: first",
			" second",
			"Via: SIP/2.0/UDP h;branch=z9hG4bK1"),
		"tel-uri": crlf("",
			"INVITE tel:+15551234 SIP/2.0",
			"Via: SIP/2.0/UDP h;branch=z9hG4bK1",
			"To: <tel:+15551234>",
			"Refer-To: <sip:c@h>",
			"Referred-By: <sip:d@h>"),
		"bad-cseq":      crlf("", "OPTIONS sip:h SIP/2.0", "CSeq: x OPTIONS"),
		"bad-maxfwd":    crlf("", "OPTIONS sip:h SIP/2.0", "Max-Forwards: -1"),
		"bad-cl":        crlf("", "OPTIONS sip:h SIP/2.0", "Content-Length: x"),
		"empty-callid":  crlf("", "OPTIONS sip:h SIP/2.0", "Call-ID:  "),
		"no-colon":      crlf("", "OPTIONS sip:h SIP/2.0", "Via SIP/2.0/UDP h"),
		"wildcard-ruri": crlf("", "OPTIONS * SIP/2.0", "Call-ID: x"),
		"wildcard-to":   crlf("", "OPTIONS sip:h SIP/2.0", "To: *"),
		"status-bad":    crlf("", "SIP/2.0 2x0 OK", "Call-ID: x"),
		"status-noreason": crlf("",
			"SIP/2.0 100 ",
			"Via: SIP/2.0/UDP h;branch=z9hG4bK1"),
		"no-headers":  []byte("OPTIONS sip:h SIP/2.0\r\n\r\n"),
		"no-end":      []byte("OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"),
		"bare-lf":     []byte("OPTIONS sip:h SIP/2.0\nVia: SIP/2.0/UDP h\n\n"),
		"lf-in-value": []byte("OPTIONS sip:h SIP/2.0\r\nX-A: a\nb\r\nVia: SIP/2.0/UDP h\r\n\r\n"),
		"crlf-first":  []byte("\r\nOPTIONS sip:h SIP/2.0\r\nCall-ID: x\r\n\r\n"),
		"escaped-display": crlf("",
			"OPTIONS sip:h SIP/2.0",
			`From: "a \"b\" \\c" <sip:a@h>;tag=1`,
			`To: "semi";sip:b@h;x=1`,
			`X-Bad: "semi"; sip:b@h;x=1`,
			"Contact: <sip:a@h;lr>;expires=0;=x;novalue;"),
		"via-ipv6-odd": crlf("",
			"SIP/2.0 200 OK",
			"Via: SIP/2.0/UDP [::1]",
			"Via: SIP/2.0/UDP [::1]:x;branch=1",
			"Via: SIP/2.0/UDP [::1]z",
			"Via: SIP/2.0/UDP h:99999999999999999999;branch=1",
			"Via: SIP/2.0/UDP :5060;branch=1"),
		"route-odd": crlf("",
			"OPTIONS sip:h SIP/2.0",
			"Route: <sip:a;lr",
			"Route: \"x\" <sip:b;lr>",
			"Route: sip:c;lr",
			"Record-Route: <sip:d>;p=1",
			"Record-Route:"),
		"uri-odd": crlf("",
			"OPTIONS SIP://u@h?x=1 SIP/2.0",
			"To: <sip:[::1]:5060;transport=tcp?h=1>",
			"From: <sip:h;>;tag=1",
			"Contact: <sip:u@h?a=1&b>"),
	}
	return c
}

// sippCorpus turns the sipp scenarios' messages (bench/sipp) into
// datagrams: lines trimmed as sipp does, keywords replaced.
func sippCorpus(t testing.TB) map[string][]byte {
	files, _ := filepath.Glob("../bench/sipp/*.xml")
	cdata := regexp.MustCompile(`(?s)<!\[CDATA\[(.*?)\]\]>`)
	kw := strings.NewReplacer(
		"[remote_ip]", "127.0.0.1", "[remote_port]", "5060", "[local_ip]", "127.0.0.1", "[local_port]", "5070",
		"[transport]", "UDP", "[pid]", "4242", "[call_number]", "7", "[via_host]", "127.0.0.1",
		"[call_id]", "7-4242@127.0.0.1", "[branch]", "z9hG4bK-4242-7-0", "[branch-1]", "z9hG4bK-4242-7-1",
		"[uas_port]", "5080", "[field0]", "alice", "[field1]", "secret",
		"[peer_tag_param]", ";tag=99-1", "[next_url]", "sip:uas@127.0.0.1:5080",
		// sipp writes a header that occurs several times as one line, the
		// values comma-separated: the route set, the Vias of a relayed request.
		"[routes]", "Route: <sip:127.0.0.1:5060;lr;ftag=4242-7>, <sip:127.0.0.1:5062;lr>",
		"[last_Via:]", "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK.k.1;rport=5060, SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-4242-7-0;received=127.0.0.1;rport=5070",
		"[last_From:]", "From: <sip:sipp@127.0.0.1:5070>;tag=4242-7",
		"[last_To:]", "To: <sip:bench@127.0.0.1:5060>",
		"[last_Call-ID:]", "Call-ID: 7-4242@127.0.0.1",
		"[last_CSeq:]", "CSeq: 1 MESSAGE",
		"[last_Record-Route:]", "Record-Route: <sip:127.0.0.1:5060;lr;ftag=4242-7>",
		"[mode]", "sendrecv", "[media_port]", "6000", "[media_ip_type]", "4", "[media_ip]", "127.0.0.1",
		"[local_ip_type]", "4", "[delay]", "0",
	)
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range cdata.FindAllSubmatch(b, -1) {
			var lines []string
			for _, l := range strings.Split(string(m[1]), "\n") {
				lines = append(lines, kw.Replace(strings.TrimSpace(l)))
			}
			for len(lines) > 0 && lines[0] == "" {
				lines = lines[1:]
			}
			for len(lines) > 0 && lines[len(lines)-1] == "" {
				lines = lines[:len(lines)-1]
			}
			head, body := lines, []string(nil)
			for j, l := range lines {
				if l == "" {
					head, body = lines[:j], lines[j+1:]
					break
				}
			}
			bodyText := ""
			if len(body) > 0 {
				bodyText = strings.Join(body, "\r\n") + "\r\n"
			}
			msg := strings.ReplaceAll(strings.Join(head, "\r\n"), "[len]", strconv.Itoa(len(bodyText)))
			out[filepath.Base(f)+"#"+strconv.Itoa(i)] = []byte(msg + "\r\n\r\n" + bodyText)
		}
	}
	if len(out) == 0 {
		t.Fatal("no sipp scenario messages found in ../bench/sipp")
	}
	return out
}

// tortureCorpus is RFC 4475's torture messages as sipgo ships them.
func tortureCorpus(t testing.TB) map[string][]byte {
	files, _ := filepath.Glob("testdata/parse/torture/*.dat")
	if len(files) == 0 {
		t.Fatal("no torture messages in testdata/parse/torture")
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

func corpus(t testing.TB) map[string][]byte {
	all := handCorpus()
	for k, v := range sippCorpus(t) {
		all[k] = v
	}
	for k, v := range tortureCorpus(t) {
		all[k] = v
	}
	return all
}

// checkSame parses data with Parse and with sipgo and fails t unless both
// fail or both give equal messages. It reports whether the fast path took
// the message.
func checkSame(t *testing.T, data []byte) bool {
	t.Helper()
	want, werr := sip.ParseMessage(bytes.Clone(data))
	fast, arena := parseFast(bytes.Clone(data), &testArenas)
	// At the end the arenas go back to testArenas (as Request.Recycle
	// does), so that the next messages checked are parsed into reused
	// memory.
	defer recycleArena(fast, arena)
	in := bytes.Clone(data)
	got, gerr := Parse(in)
	if werr != nil {
		if fast != nil {
			t.Fatalf("fast path parsed what sipgo refuses (%v):\n%q", werr, data)
		}
		if gerr == nil || gerr.Error() != werr.Error() {
			t.Fatalf("Parse error %v, sipgo's %v", gerr, werr)
		}
		return false
	}
	if gerr != nil {
		t.Fatalf("Parse failed (%v), sipgo parsed %q", gerr, data)
	}
	if fast != nil {
		// The fast path keeps nothing of the caller's buffer.
		for i := range in {
			in[i] = 'X'
		}
		got = fast
		// and a second fast parse of the same bytes gives the same value.
		again, againArena := parseFast(bytes.Clone(data), &testArenas)
		defer recycleArena(again, againArena)
		if !reflect.DeepEqual(again, fast) {
			t.Fatalf("two fast parses differ for %q", data)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("fast=%v: messages differ for %q:\n got %#v\nwant %#v", fast != nil, data, got, want)
	}
	if g, w := got.String(), want.String(); g != w {
		t.Fatalf("String differs:\n got %q\nwant %q", g, w)
	}
	var gb, wb strings.Builder
	got.StringWrite(&gb)
	want.StringWrite(&wb)
	if gb.String() != wb.String() {
		t.Fatalf("StringWrite differs:\n got %q\nwant %q", gb.String(), wb.String())
	}
	// The quick accessors see the same headers.
	if !reflect.DeepEqual(got.Via(), want.Via()) || !reflect.DeepEqual(got.From(), want.From()) ||
		!reflect.DeepEqual(got.To(), want.To()) || !reflect.DeepEqual(got.CallID(), want.CallID()) ||
		!reflect.DeepEqual(got.CSeq(), want.CSeq()) || !reflect.DeepEqual(got.ContentLength(), want.ContentLength()) {
		t.Fatalf("accessors differ for %q", data)
	}
	return fast != nil
}

// testArenas is the arena pool of the parser's differential tests.
var testArenas arenaPool

// recycleArena gives a request's arena back to testArenas as
// Request.Recycle does to its server's.
func recycleArena(m sip.Message, a *reqArena) {
	if _, ok := m.(*sip.Request); ok && a != nil {
		testArenas.put(a)
	}
}

func TestParseCorpus(t *testing.T) {
	fastCount := 0
	c := corpus(t)
	for name, data := range c {
		t.Run(name, func(t *testing.T) {
			if checkSame(t, data) {
				fastCount++
			}
		})
	}
	t.Logf("%d of %d corpus messages took the fast path", fastCount, len(c))
	// The shapes kemi sees most must take the fast path.
	for _, name := range []string{"options", "reply200-2via", "message", "invite-sdp", "compact",
		"record-route-reply", "many-params", "odd-spacing", "no-content-length", "short-content-length",
		"escaped-display", "via-ipv6-odd", "route-odd", "uri-odd", "options.xml#0", "relay-uas.xml#0",
		"reply200-via-list", "bye-route-list"} {
		if m, _ := parseFast(c[name], nil); m == nil {
			t.Errorf("%s: the fast path left it to sipgo", name)
		}
	}
}

// TestParseHeaderValues puts awkward values into every header kind the fast
// path parses itself, in a request and in a reply.
var awkwardNames = []string{"Via", "v", "From", "f", "To", "t", "Contact", "m", "Route", "Record-Route",
	"Call-ID", "i", "CSeq", "Max-Forwards", "Content-Length", "l", "Content-Type", "c", "X-Any"}

var awkwardValues = []string{
	"SIP/2.0/UDP h", "SIP/2.0/UDP h:5060", "SIP/2.0/UDP h:;branch=1", "SIP/2.0/UDP h:x;branch=1",
	"SIP/2.0/UDP [::1]:5060;branch=1;rport", "SIP/2.0/UDP [::1];branch=1", "SIP/2.0/UDP [::1]x",
	"SIP/2.0/UDP h;branch=\"a;b\";x", "SIP/2.0/UDP h;;;", "SIP/2.0/UDP h;=;a=", "SIP /2.0/ UDP\th",
	"SIP/2.0/UDP h;branch=1;branch=2", "SIP/2.0 UDP h", "SIP/2.0/UDP", "/ / h",
	"<sip:a@h>", "<sip:a@h>;tag=1", "\"A B\" <sip:a@h;transport=tcp>;tag=1;x", "A B <sips:a:pw@h:5061>",
	"sip:a@h;tag=1", "sip:a@h", "<sip:a@h", "sip:a@h>", "\"unterminated <sip:a@h>", "\"esc\\\"q\" <sip:a@h>",
	"<sip:[2001:db8::1]:5060;lr>", "<sip:[2001:db8::1>", "<sip:h;lr;lr;ftag=1>;x=1;x=2", "<sip:h?a=b&c>",
	"<sip:h;>", "<sip:h:>", "<sip:h:99999999999999999999>", "<SIP:H>", "<sip://h>", "<tel:+1>",
	"<sip:*>", "*", "<>", "\"\" <sip:h>", "x <sip:h>;=1;;a", "<sip:h> ;tag=1", "<sip:a@b@c>",
	"1 INVITE", "1  INVITE", "1\tINVITE", "-1 INVITE", "2147483648 INVITE", "1", " 1 x",
	"70", "0", "4294967296", "+5", "text/plain", "a, b", "\"a,b\" <sip:h>", "<sip:a,b@h>",
	"SIP/2.0/UDP a:1;branch=x, SIP/2.0/UDP b:2;branch=y;received=1.2.3.4", "SIP/2.0/UDP a;branch=x,SIP/2.0/UDP b",
	"SIP/2.0/UDP a;b=1, SIP/2.0/UDP b;b=2 , SIP/2.0/UDP [::1]:5;b=3", "SIP/2.0/UDP a;branch=x, , SIP/2.0/UDP b",
	"SIP/2.0/UDP a;branch=x,", "SIP/2.0/UDP a, SIP/2.0/UDP b;branch=y", "SIP/2.0/UDP a;;,SIP/2.0/UDP b",
	"SIP/2.0/UDP a;branch=\"x,y\";z, SIP/2.0/UDP b", "SIP/2.0/UDP a;,b", "SIP/2.0/UDP a;x=\"q, SIP/2.0/UDP b\"",
	"<sip:a;lr>, <sip:b;lr>", "<sip:a;lr>,<sip:b;lr>,<sip:c>", "<sip:a;lr>,", "<sip:a;lr>, ", ",<sip:a>",
	"\"x,y\" <sip:a;lr>, <sip:b>", "<sip:a,b;lr>, <sip:c>", "<sip:a;lr>, junk", "sip:a;lr, sip:b",
	"\u00e9t\u00e9 <sip:h>", "x\x00y", "\x01", "sip:h;p=\"v w\"", "<sip:h;p=\"v w\">;q=\"1 2\"",
}

func TestParseHeaderValues(t *testing.T) {
	names, values := awkwardNames, awkwardValues
	fast := 0
	for _, name := range names {
		for _, v := range values {
			for _, start := range []string{"OPTIONS sip:u@h SIP/2.0", "SIP/2.0 200 OK"} {
				data := crlf("", start, "Call-ID: base", name+": "+v, "CSeq: 1 OPTIONS")
				if checkSame(t, data) {
					fast++
				}
			}
		}
	}
	t.Logf("%d of %d took the fast path", fast, 2*len(names)*len(values))
}

// TestParseIsolated: slices the fast path hands out are capacity-limited,
// so appending to one header's parameters never writes into another's.
func TestParseIsolated(t *testing.T) {
	m, err := Parse(handCorpus()["reply200-2via"])
	if err != nil {
		t.Fatal(err)
	}
	vias := m.GetHeaders("Via")
	v0, v1 := vias[0].(*sip.ViaHeader), vias[1].(*sip.ViaHeader)
	before := v1.Params.Clone()
	v0.Params.Add("new", "1")
	if !reflect.DeepEqual(v1.Params, before) {
		t.Fatalf("appending to the first Via's params changed the second's: %v", v1.Params)
	}
	req, err := Parse(handCorpus()["options"])
	if err != nil {
		t.Fatal(err)
	}
	r := req.(*sip.Request)
	r.AppendHeader(sip.NewHeader("X-New", "1"))
	r.AppendHeader(sip.NewHeader("X-New2", "2"))
	if _, ok := r.From().Params.Get("tag"); !ok || r.GetHeader("x-new2") == nil || r.Via() == nil {
		t.Fatal("headers lost after appending")
	}
}

// TestParseArenaSize: each arena, with the allocator's 8-byte header for
// objects with pointers, stays within the 1,536-byte size class.
func TestParseArenaSize(t *testing.T) {
	if n := unsafe.Sizeof(reqArena{}) + 8; n > 1536 {
		t.Errorf("request arena %d bytes, over the 1,536-byte class", n)
	}
	if n := unsafe.Sizeof(resArena{}) + 8; n > 1536 {
		t.Errorf("reply arena %d bytes, over the 1,536-byte class", n)
	}
}

func FuzzParse(f *testing.F) {
	for _, data := range corpus(f) {
		f.Add(data)
	}
	for i, v := range awkwardValues {
		f.Add(crlf("", "OPTIONS sip:u@h SIP/2.0", "Call-ID: base", awkwardNames[i%len(awkwardNames)]+": "+v, "CSeq: 1 OPTIONS"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkSame(t, data)
	})
}

func BenchmarkParse(b *testing.B) {
	c := handCorpus()
	for _, name := range []string{"options", "reply200-2via", "invite-sdp"} {
		data := c[name]
		b.Run(name+"/sipgo", func(b *testing.B) {
			p := sip.NewParser()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.ParseSIP(data); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/kemi", func(b *testing.B) {
			if m, _ := parseFast(data, nil); m == nil {
				b.Fatal("not on the fast path")
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
