package siputils_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/siputils"
	"kemi/sipnet"
)

func request(ruri, extra string) string {
	return "OPTIONS " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\r\n" +
		"From: <sip:alice@a.example.com>;tag=1\r\nTo: <sip:bob@b.example.com>\r\n" +
		"Call-ID: c1\r\nCSeq: 1 OPTIONS\r\n" + extra + "Content-Length: 0\r\n\r\n"
}

type result struct {
	val     string
	ruri    string
	replies []*sip.Response
}

// eval runs expr on raw (a request or a reply received from src on udp
// 127.0.0.1:5060) and returns its value, the R-URI after it and the
// replies sent.
func eval(t *testing.T, m *siputils.Module, raw, src, expr string) result {
	t.Helper()
	var log bytes.Buffer
	d := ksrtest.Deps(t, &log, m)
	d.Now = func() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }
	d.Myself = func() []netip.AddrPort { return []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5060")} }
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	env := ksr.NewEnv(d, "t/0", "t", 0)
	ln := &sipnet.Listener{Proto: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:5060")}
	var res result
	switch v := msg.(type) {
	case *sip.Request:
		r := sipnet.NewFakeRequest(v)
		r.Src, r.Listener = netip.MustParseAddrPort(src), ln
		r.Sink = func(rs *sip.Response) error { res.replies = append(res.replies, rs); return nil }
		env.Msg = &ksr.Msg{Req: r}
	case *sip.Response:
		env.Msg = &ksr.Msg{Res: &sipnet.Response{Msg: v, Src: netip.MustParseAddrPort(src), Listener: ln}}
	}
	L := lua.NewState()
	defer L.Close()
	ksr.Register(L, env)
	if err := L.DoString("return " + expr); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	res.val = L.Get(-1).String()
	if r := env.Msg.Request(); r != nil {
		res.ruri = r.Recipient.String()
	}
	return res
}

func TestChecks(t *testing.T) {
	reply := func(rr string) string {
		return "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n" + rr +
			"From: <sip:a@x>;tag=1\r\nTo: <sip:b@y>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	}
	src := "10.0.0.1:5062"
	cases := []struct{ raw, src, expr, want string }{
		{request("sip:b@y", ""), src, "KSR.siputils.has_totag()", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_request()", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_reply()", "-1"},
		{reply(""), src, "KSR.siputils.is_reply()", "1"},
		{reply(""), src, "KSR.siputils.has_totag()", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_first_hop()", "1"},
		{request("sip:b@y", "Via: SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK2\r\n"), src, "KSR.siputils.is_first_hop()", "-1"},
		{reply(""), src, "KSR.siputils.is_first_hop()", "1"},
		{reply("Record-Route: <sip:127.0.0.1;lr>\r\n"), src, "KSR.siputils.is_first_hop()", "1"},
		{reply("Record-Route: <sip:127.0.0.1;lr>\r\n"), "127.0.0.1:5060", "KSR.siputils.is_first_hop()", "-1"}, // a loop
		{reply("Record-Route: <sip:10.9.9.9;lr>\r\n"), src, "KSR.siputils.is_first_hop()", "-1"},
		{reply("Record-Route: <sip:proxy.example.com;lr>\r\n"), src, "KSR.siputils.is_first_hop()", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_user('alice')", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_uri('sip:a@b')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_uri('tel:+123')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_uri('http://x')", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_uri('sip:')", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_uri('sip:a@b:99999')", "-1"},
		{request("sip:b@y;lr;transport=tcp", ""), src, "KSR.siputils.uri_param('lr')", "1"},
		{request("sip:b@y;lr;transport=tcp", ""), src, "KSR.siputils.uri_param('transport')", "-1"},
		{request("sip:b@y;lr;transport=tcp", ""), src, "KSR.siputils.uri_param('LR')", "-1"},
		{request("sip:b@y;lr;transport=tcp", ""), src, "KSR.siputils.uri_param_value('transport', 'tcp')", "1"},
		{request("sip:b@y;lr;transport=tcp", ""), src, "KSR.siputils.uri_param_value('transport', 'TCP')", "-1"},
		{request("sip:b@y;lr;transport=tcp", ""), src, "KSR.siputils.uri_param_any('Transport')", "1"},
		{request("sip:b@y;lr;transport=tcp", ""), src, "KSR.siputils.uri_param_any('maddr')", "-1"},
		{request("sip:b@y;gr=urn:uuid:1", ""), src, "KSR.siputils.is_gruu()", "1"},
		{request("sip:b@y;gr", ""), src, "KSR.siputils.is_gruu()", "2"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_gruu()", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_tel_number('+49123')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_tel_number('+0123')", "-2"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_tel_number('')", "-2"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_numeric('0123')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_numeric('12a')", "-2"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_alphanum('ab12')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_alphanum('ab-12')", "-3"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_alphanum('')", "-2"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_alphanumex('ab-12', '-_')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.is_alphanumex('ab.12', '-_')", "-3"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_uri('sip:a@B.com;transport=udp', 'sip:a@b.com')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_uri('sip:a@b.com;user=phone', 'sip:a@b.com')", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_uri('sip:a@b.com;transport=tcp', 'sip:a@b.com;transport=udp')", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_uri('sip:A@b.com', 'sip:a@b.com')", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_uri('sip:a@b.com:5060', 'sip:a@b.com')", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_uri('x', 'sip:a@b.com')", "-2"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_aor('sip:a@b.com:5060', 'sip:a@B.com;x=1')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_aor('sip:a@b.com:5070', 'sip:a@b.com')", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_aor('sip:a@b.com:5070', 'sip:a@b.com:5080')", "1"}, // as Kamailio
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_hdr_name('From', 'f')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_hdr_name('X-A', 'x-a')", "1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_hdr_name('From', 'To')", "-1"},
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_hdr_name('X-A', 'X-B')", "-2"}, // strncasecmp < 0
		{request("sip:b@y", ""), src, "KSR.siputils.cmp_hdr_name('X-B', 'X-A')", "-1"},
		{request("sip:b@y", "Date: Tue, 01 Dec 2026 11:59:30 GMT\r\n"), src, "KSR.siputils.hdr_date_check(60)", "1"},
		{request("sip:b@y", "Date: Tue, 01 Dec 2026 11:58:00 GMT\r\n"), src, "KSR.siputils.hdr_date_check(60)", "-4"},
		{request("sip:b@y", ""), src, "KSR.siputils.hdr_date_check(60)", "-1"},
	}
	for _, c := range cases {
		t.Run(c.expr+" "+strings.SplitN(c.raw, "\r\n", 2)[0], func(t *testing.T) {
			if got := eval(t, siputils.New(), c.raw, c.src, c.expr); got.val != c.want {
				t.Fatalf("= %s, want %s", got.val, c.want)
			}
		})
	}
}

func TestURIParamEdits(t *testing.T) {
	cases := []struct{ ruri, expr, want, after string }{
		{"sip:b@y", "KSR.siputils.add_uri_param('lr')", "1", "sip:b@y;lr"},
		{"sip:b@y;transport=tcp", "KSR.siputils.add_uri_param('x=1')", "1", "sip:b@y;transport=tcp;x=1"},
		{"sip:b@y", "KSR.siputils.add_uri_param('')", "1", "sip:b@y"},
		{"sip:b@y;transport=tcp;lr", "KSR.siputils.uri_param_rm('TRANSPORT')", "1", "sip:b@y;lr"},
		{"sip:b@y;transport=tcp;lr", "KSR.siputils.uri_param_rm('lr')", "1", "sip:b@y;transport=tcp"},
		{"sip:b@y;transport=tcp", "KSR.siputils.uri_param_rm('maddr')", "1", "sip:b@y;transport=tcp"},
		{"sip:b@y", "KSR.siputils.uri_param_rm('lr')", "1", "sip:b@y"},
	}
	for _, c := range cases {
		t.Run(c.ruri+" "+c.expr, func(t *testing.T) {
			got := eval(t, siputils.New(), request(c.ruri, ""), "10.0.0.1:5062", c.expr)
			if got.val != c.want || got.ruri != c.after {
				t.Fatalf("= %s, R-URI %q; want %s, %q", got.val, got.ruri, c.want, c.after)
			}
		})
	}
}

func TestOptionsReply(t *testing.T) {
	m := siputils.New()
	got := eval(t, m, request("sip:127.0.0.1", ""), "10.0.0.1:5062", "KSR.siputils.options_reply()")
	if got.val != "1" || len(got.replies) != 1 {
		t.Fatalf("= %s, %d replies", got.val, len(got.replies))
	}
	r := got.replies[0]
	var hs []string
	for _, n := range []string{"Accept", "Accept-Encoding", "Accept-Language", "Supported"} {
		h := r.GetHeader(n)
		if h == nil {
			t.Fatalf("no %s in\n%s", n, r)
		}
		hs = append(hs, n+": "+h.Value())
	}
	if r.StatusCode != 200 || r.Reason != "OK" || fmt.Sprint(hs) != "[Accept: */* Accept-Encoding:  Accept-Language: en Supported: ]" {
		t.Fatalf("reply %d %s %v", r.StatusCode, r.Reason, hs)
	}
	// A user in the R-URI, or another method: -1, no reply.
	if got := eval(t, m, request("sip:bob@127.0.0.1", ""), "10.0.0.1:5062", "KSR.siputils.options_reply()"); got.val != "-1" || len(got.replies) != 0 {
		t.Fatalf("with a user: %s, %d replies", got.val, len(got.replies))
	}
	msg := strings.Replace(strings.Replace(request("sip:127.0.0.1", ""), "OPTIONS sip", "MESSAGE sip", 1), "1 OPTIONS", "1 MESSAGE", 1)
	if got := eval(t, m, msg, "10.0.0.1:5062", "KSR.siputils.options_reply()"); got.val != "-1" || len(got.replies) != 0 {
		t.Fatalf("MESSAGE: %s, %d replies", got.val, len(got.replies))
	}
}

func TestParseURI(t *testing.T) {
	cases := map[string]string{
		"sip:alice:pw@[::1]:5070;transport=tcp?h=1": "alice pw [::1] 5070 transport=tcp h=1",
		"sips:b.example.com":                        "  b.example.com   ",
		"tel:+123;phone-context=x":                  "+123    phone-context=x ",
		"sip:+1;npdi@host;user=phone":               "+1;npdi  host  user=phone ",
	}
	for in, want := range cases {
		u, ok := siputils.ParseURI(in)
		if !ok {
			t.Fatalf("%q does not parse", in)
		}
		if got := strings.Join([]string{u.User, u.Passwd, u.Host, u.Port, u.Params, u.Headers}, " "); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

func TestContactEncoding(t *testing.T) {
	withContact := func(ruri, contact string) string {
		return request(ruri, "Contact: "+contact+"\r\n")
	}
	cases := []struct{ raw, expr, want string }{
		{withContact("sip:b@y", "<sip:alice:pw@10.0.0.1:5062;transport=tcp;x=1>;expires=60"),
			"KSR.siputils.encode_contact('enc', '1.2.3.4') .. ' ' .. KSR.pv.get('$ct')",
			"1 <sip:enc*alice*pw*10.0.0.1*5062*tcp@1.2.3.4>;expires=60"},
		{withContact("sip:b@y", "<sip:10.0.0.1>"),
			"KSR.siputils.encode_contact('p', 'h.example.com') .. ' ' .. KSR.pv.get('$ct')",
			"1 <sip:p***10.0.0.1**@h.example.com>"},
		{withContact("sip:b@y", "*"), "KSR.siputils.encode_contact('p', 'h')", "1"},
		{request("sip:b@y", ""), "KSR.siputils.encode_contact('p', 'h')", "-1"},
		{withContact("sip:b@y", "<sip:enc*alice*pw*10.0.0.1*5062*tcp@1.2.3.4;lr>"),
			"KSR.siputils.decode_contact_header() .. ' ' .. KSR.pv.get('$ct')",
			"1 <sip:alice:pw@10.0.0.1:5062;transport=tcp;lr>"},
		{withContact("sip:b@y", "<sip:alice@10.0.0.1>"), "KSR.siputils.decode_contact_header()", "-26"},
		{request("sip:enc*bob**10.0.0.2*5070*udp@1.2.3.4;lr", ""),
			"KSR.siputils.decode_contact() .. ' ' .. KSR.pv.get('$ru')", "1 sip:bob@10.0.0.2:5070;transport=udp;lr"},
		{request("sip:enc*bob**10.0.0.2*5070@1.2.3.4", ""), "KSR.siputils.decode_contact()", "-26"},
		{request("sip:enc****5070*udp@1.2.3.4", ""), "KSR.siputils.decode_contact()", "-2"},
		{request("sip:enc**pw*h*5070*udp@1.2.3.4", ""), "KSR.siputils.decode_contact()", "-3"},
		{request("sip:bob@example.com", ""), "KSR.siputils.decode_contact()", "-26"},
	}
	for _, c := range cases {
		t.Run(c.expr+" "+strings.SplitN(c.raw, "\r\n", 2)[0], func(t *testing.T) {
			if got := eval(t, siputils.New(), c.raw, "10.0.0.1:5062", c.expr); got.val != c.want {
				t.Fatalf("= %q, want %q", got.val, c.want)
			}
		})
	}
}

func TestContactParams(t *testing.T) {
	ct := func(v string) string { return request("sip:b@y", "Contact: "+v+"\r\n") }
	// base64url of sip:alice@10.0.0.5:5062;transport=tcp, unpadded
	const enc = "c2lwOmFsaWNlQDEwLjAuMC41OjUwNjI7dHJhbnNwb3J0PXRjcA"
	cases := []struct{ raw, expr, want string }{
		{ct("<sip:alice@10.0.0.5:5062;transport=tcp>;expires=30"),
			"KSR.siputils.contact_param_encode('alias', 'sip:203.0.113.1:5060') .. ' ' .. KSR.pv.get('$ct')",
			"1 <sip:203.0.113.1:5060;alias=" + enc + ">;expires=30"},
		{ct("<sip:alice@10.0.0.5:5062;transport=tcp>"),
			"KSR.siputils.contact_param_encode('alias', 'sip:203.0.113.1:5060') .. ' ' .. KSR.siputils.contact_param_decode('ALIAS') .. ' ' .. KSR.pv.get('$ct')",
			"1 1 <sip:alice@10.0.0.5:5062;transport=tcp>"},
		{request("sip:b@y", ""), "KSR.siputils.contact_param_encode('alias', 'sip:h')", "1"},
		{ct("<sip:203.0.113.1;alias=%%%>"), "KSR.siputils.contact_param_decode('alias')", "-1"},
		{ct("<sip:203.0.113.1;lr>"), "KSR.siputils.contact_param_decode('alias') .. ' ' .. KSR.pv.get('$ct')", "1 <sip:203.0.113.1;lr>"},
		{request("sip:203.0.113.1;alias="+enc, ""), "KSR.siputils.contact_param_decode_ruri('alias') .. ' ' .. KSR.pv.get('$ru')",
			"1 sip:alice@10.0.0.5:5062;transport=tcp"},
		{request("sip:203.0.113.1;lr", ""), "KSR.siputils.contact_param_decode_ruri('alias') .. ' ' .. KSR.pv.get('$ru')", "1 sip:203.0.113.1;lr"},
		{ct("<sip:a@h;alias=x;lr>;q=1"), "KSR.siputils.contact_param_rm('Alias') .. ' ' .. KSR.pv.get('$ct')", "1 <sip:a@h;lr>;q=1"},
		{ct("<sip:a@h;lr>"), "KSR.siputils.contact_param_rm('alias') .. ' ' .. KSR.pv.get('$ct')", "1 <sip:a@h;lr>"},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			if got := eval(t, siputils.New(), c.raw, "10.0.0.1:5062", c.expr); got.val != c.want {
				t.Fatalf("= %q, want %q", got.val, c.want)
			}
		})
	}
}
