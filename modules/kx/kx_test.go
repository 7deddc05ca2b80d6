package kx_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/kx"
	"kemi/sipnet"
)

const invite = "INVITE sip:bob@example.com:5070;transport=tcp SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\r\n" +
	"From: \"Alice\" <sip:alice@a.example.com>;tag=1\r\nTo: <sip:bob@b.example.com>\r\n" +
	"Call-ID: c1@10.0.0.1\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@10.0.0.1:5062>\r\n" +
	"User-Agent: tester 1.0\r\n" +
	"Proxy-Authorization: Digest username=\"alice@a.example.com\", realm=\"a.example.com\", nonce=\"n\", uri=\"sip:b\", response=\"r\"\r\n" +
	"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"

const bare = "MESSAGE sip:b.example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK2\r\n" +
	"From: <sip:a.example.com>;tag=2\r\nTo: <sip:b.example.com>\r\n" +
	"Call-ID: c2\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"

const reply = "SIP/2.0 486 Busy Here\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\r\n" +
	"From: <sip:alice@a.example.com>;tag=1\r\nTo: <sip:bob@b.example.com>;tag=9\r\n" +
	"Call-ID: c1@10.0.0.1\r\nCSeq: 7 INVITE\r\nContent-Length: 0\r\n\r\n"

// eval runs expr in a VM whose message is raw, received from 10.0.0.1:5062
// on udp 127.0.0.1:5060 unless faked, and returns "type:value".
func eval(t *testing.T, m *kx.Module, raw string, faked bool, expr string) string {
	t.Helper()
	var log bytes.Buffer
	d := ksrtest.Deps(t, &log, m)
	d.Now = func() time.Time { return time.Unix(1700000000, 0) }
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	env := ksr.NewEnv(d, "t/0", "t", 0)
	src := netip.MustParseAddrPort("10.0.0.1:5062")
	ln := &sipnet.Listener{Proto: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:5060")}
	switch v := msg.(type) {
	case *sip.Request:
		r := sipnet.NewFakeRequest(v)
		if !faked {
			r.Src, r.Listener = src, ln
		}
		env.Msg = &ksr.Msg{Req: r}
	case *sip.Response:
		env.Msg = &ksr.Msg{Res: &sipnet.Response{Msg: v, Src: src, Listener: ln}}
	}
	L := lua.NewState()
	defer L.Close()
	ksr.Register(L, env)
	if err := L.DoString("local v = " + expr + "; return type(v) .. ':' .. tostring(v)"); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return L.Get(-1).String()
}

func TestGetters(t *testing.T) {
	cases := []struct {
		raw   string
		faked bool
		expr  string
		want  string
	}{
		{invite, false, "KSR.kx.get_ruri()", "string:sip:bob@example.com:5070;transport=tcp"},
		{invite, false, "KSR.kx.get_ouri()", "string:sip:bob@example.com:5070;transport=tcp"},
		{reply, false, "KSR.kx.get_ruri()", "nil:nil"},
		{invite, false, "KSR.kx.get_ruser()", "string:bob"},
		{bare, false, "KSR.kx.get_ruser()", "nil:nil"},
		{bare, false, "KSR.kx.getw_ruser()", "string:<null>"},
		{bare, false, "KSR.kx.gete_ruser()", "string:"},
		{reply, false, "KSR.kx.getw_rhost()", "string:<null>"},
		{invite, false, "KSR.kx.get_rhost()", "string:example.com"},
		{invite, false, "KSR.kx.get_furi()", "string:sip:alice@a.example.com"},
		{invite, false, "KSR.kx.get_fuser()", "string:alice"},
		{bare, false, "KSR.kx.getw_fuser()", "string:<null>"},
		{invite, false, "KSR.kx.get_fhost()", "string:a.example.com"},
		{reply, false, "KSR.kx.get_turi()", "string:sip:bob@b.example.com"},
		{invite, false, "KSR.kx.get_tuser()", "string:bob"},
		{bare, false, "KSR.kx.gete_tuser()", "string:"},
		{invite, false, "KSR.kx.get_thost()", "string:b.example.com"},
		{invite, false, "KSR.kx.get_duri()", "nil:nil"},
		{invite, false, "KSR.kx.getw_duri()", "string:<null>"},
		{invite, false, "KSR.kx.get_nhuri()", "string:sip:bob@example.com:5070;transport=tcp"},
		{invite, false, "(function() KSR.pv.sets('$du', 'sip:10.1.1.1:5080'); return KSR.kx.get_nhuri() end)()", "string:sip:10.1.1.1:5080"},
		{invite, false, "KSR.kx.get_cturi()", "string:sip:alice@10.0.0.1:5062"},
		{bare, false, "KSR.kx.gete_cturi()", "string:"},
		{invite, false, "KSR.kx.get_srcuri()", "string:sip:10.0.0.1:5062"},
		{invite, false, "KSR.kx.get_srcaddr_sock()", "string:udp:10.0.0.1:5062"},
		{invite, false, "KSR.kx.get_ua()", "string:tester 1.0"},
		{bare, false, "KSR.kx.get_ua()", "nil:nil"},
		{bare, false, "KSR.kx.getw_ua()", "string:<null>"},
		{invite, false, "KSR.kx.get_srcip()", "string:10.0.0.1"},
		{invite, false, "KSR.kx.get_srcport()", "number:5062"},
		{invite, true, "KSR.kx.get_srcport()", "number:0"},
		{invite, false, "KSR.kx.get_send_sock()", "nil:nil"},
		{invite, false, "KSR.kx.get_send_sock_port()", "number:0"},
		{invite, false, "KSR.kx.get_rcvip()", "string:127.0.0.1"},
		{invite, true, "KSR.kx.get_rcvip()", "nil:nil"},
		{invite, false, "KSR.kx.get_rcvport()", "number:5060"},
		{invite, false, "KSR.kx.get_rcvadvport()", "number:5060"},
		{invite, false, "KSR.kx.get_rcvaddr_sock()", "string:udp:127.0.0.1:5060"},
		{invite, true, "KSR.kx.get_rcvaddr_sock()", "string:"},
		{invite, false, "KSR.kx.get_proto()", "string:udp"},
		{invite, true, "KSR.kx.get_proto()", "string:"},
		{invite, false, "KSR.kx.get_protoid()", "number:1"},
		{invite, false, "KSR.kx.get_au()", "string:alice"},
		{bare, false, "KSR.kx.get_au()", "nil:nil"},
		{bare, false, "KSR.kx.gete_au()", "string:"},
		{invite, false, "KSR.kx.get_method()", "string:INVITE"},
		{reply, false, "KSR.kx.get_method()", "string:INVITE"},
		{reply, false, "KSR.kx.get_status()", "number:486"},
		{invite, false, "KSR.kx.get_status()", "number:-1"},
		{reply, false, "KSR.kx.gets_status()", "string:486"},
		{invite, false, "KSR.kx.gets_status()", "nil:nil"},
		{invite, false, "KSR.kx.get_body()", "string:hello"},
		{bare, false, "KSR.kx.get_body()", "nil:nil"},
		{bare, false, "KSR.kx.getw_body()", "string:<null>"},
		{invite, false, "KSR.kx.get_bodylen()", "number:5"},
		{invite, false, "KSR.kx.get_timestamp()", "number:1700000000"},
		{invite, false, "KSR.kx.get_callid()", "string:c1@10.0.0.1"},
		{invite, false, "KSR.kx.get_conid()", "number:-1"},
		{invite, false, "KSR.kx.get_msgtype()", "number:1"},
		{reply, false, "KSR.kx.get_msgtype()", "number:2"},
		{invite, false, "KSR.kx.get_msglen() == #KSR.kx.get_msgbuf()", "boolean:true"},
		{invite, false, "KSR.kx.get_ruri(1, 2)", "boolean:false"}, // a function without parameters refuses arguments (app_lua's switch, 5.6.3)
		{invite, false, "KSR.kx.ifdef()", "boolean:false"},        // too few arguments: false
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			if got := eval(t, kx.New(), c.raw, c.faked, c.expr); got != c.want {
				t.Fatalf("= %q, want %q", got, c.want)
			}
		})
	}
}

// TestFakedRequest: on the faked request of timer routes, KSR.kx gives
// what Kamailio 5.6 gives for its own (TestFakedAgainstKamailio).
func TestFakedRequest(t *testing.T) {
	var log bytes.Buffer
	d := ksrtest.Deps(t, &log, kx.New())
	env := ksr.NewEnv(d, "t/0", "t", 0)
	env.Msg = env.Faked(ksr.RouteEvent)
	L := lua.NewState()
	defer L.Close()
	ksr.Register(L, env)
	want := map[string]string{
		"get_srcip": "1.0.0.127", "get_srcport": "5060", "get_proto": "udp", "get_protoid": "1",
		"get_srcuri": "sip:1.0.0.127:5060", "get_srcaddr_sock": "udp:1.0.0.127:5060",
		"get_rcvip": "nil", "get_rcvport": "0", "get_rcvaddr_sock": "", "get_method": "OPTIONS",
	}
	for f, w := range want {
		if err := L.DoString("return tostring(KSR.kx." + f + "())"); err != nil {
			t.Fatal(err)
		}
		if got := L.Get(-1).String(); got != w {
			t.Errorf("%s() = %q, want %q", f, got, w)
		}
		L.Pop(1)
	}
}

func TestDefinesAndEnv(t *testing.T) {
	t.Setenv("KX_TEST_N", "42abc")
	t.Setenv("KX_TEST_S", "hello")
	m := kx.New()
	m.SetDefines(map[string]string{"WITH_NAT": "", "PORT": "5080", "DBURL": `"sqlite:///x"`, "NEG": "-12"})
	cases := []struct{ expr, want string }{
		{`KSR.kx.ifdef("WITH_NAT")`, "boolean:true"},
		{`KSR.kx.ifdef("WITH_AUTH")`, "boolean:false"},
		{`KSR.kx.ifndef("WITH_AUTH")`, "boolean:true"},
		{`KSR.kx.ifndef("PORT")`, "boolean:false"},
		{`KSR.kx.get_def("PORT")`, "string:5080"},
		{`KSR.kx.get_def("DBURL")`, `string:"sqlite:///x"`},
		{`KSR.kx.get_def("WITH_NAT")`, "string:"},
		{`KSR.kx.get_def("NONE")`, "string:"},
		{`KSR.kx.get_defn("PORT")`, "number:5080"},
		{`KSR.kx.get_defn("NEG")`, "number:-12"},
		{`KSR.kx.get_defn("DBURL")`, "number:0"},
		{`KSR.kx.get_defn("NONE")`, "number:0"},
		{`KSR.kx.get_env("KX_TEST_S")`, "string:hello"},
		{`KSR.kx.get_env("KX_TEST_UNSET")`, "string:"},
		{`KSR.kx.get_envn("KX_TEST_N")`, "number:42"},
		{`KSR.kx.get_envn("KX_TEST_S")`, "number:0"},
	}
	for _, c := range cases {
		t.Run(c.expr, func(t *testing.T) {
			if got := eval(t, m, bare, false, c.expr); got != c.want {
				t.Fatalf("= %q, want %q", got, c.want)
			}
		})
	}
}

func TestStr2sint(t *testing.T) {
	for in, want := range map[string]int{"": 0, "7": 7, "+7": 7, "-7": -7, "12ab": 12, "x1": 0,
		"2147483647": 2147483647, "2147483648": 2147483647, "-2147483648": -2147483648, "-2147483649": -2147483648} {
		if got := kx.Str2sint(in); got != want {
			t.Errorf("Str2sint(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestExportList: the functions of sr_kemi_kx_exports at 5.6.3, in order.
func TestExportList(t *testing.T) {
	want := "get_ruri get_ruser getw_ruser gete_ruser get_rhost getw_rhost gete_rhost get_ouri " +
		"get_furi get_fuser getw_fuser gete_fuser get_fhost getw_fhost gete_fhost get_turi " +
		"get_tuser gete_tuser getw_tuser get_thost gete_thost getw_thost get_duri gete_duri getw_duri " +
		"get_cturi gete_cturi getw_cturi get_nhuri get_srcuri get_srcaddr_sock get_ua gete_ua getw_ua " +
		"get_srcip get_srcport get_send_sock get_send_sock_name get_send_sock_port get_rcvip " +
		"get_rcv_sock_name get_rcvport get_rcvadvip get_rcvadvport get_rcvaddr_sock get_proto " +
		"get_protoid get_au getw_au gete_au get_method get_status gets_status get_body getw_body " +
		"gete_body get_bodylen get_timestamp get_callid get_conid get_msgbuf get_msglen get_msgtype " +
		"get_def get_defn ifdef ifndef get_env get_envn"
	var got []string
	for _, x := range kx.New().Info().Exports[0].Funcs {
		got = append(got, x.Name)
	}
	if g := strings.Join(got, " "); g != want {
		t.Fatalf("exports\n got %s\nwant %s", g, want)
	}
}
