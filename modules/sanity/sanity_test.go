package sanity_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/sanity"
	"kemi/sipnet"
)

func message(ruri, extra string) string {
	return "MESSAGE " + ruri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\r\n" +
		"From: <sip:alice@a.example.com>;tag=1\r\nTo: <sip:bob@b.example.com>\r\n" +
		"Call-ID: c1\r\nCSeq: 1 MESSAGE\r\n" + extra + "Content-Length: 0\r\n\r\n"
}

// run evaluates the Lua statements in code (the last returns a value) on
// raw and returns that value and the replies sent, as "code reason
// [Unsupported]".
func run(t *testing.T, m *sanity.Module, raw, code string) (string, []string) {
	t.Helper()
	var log bytes.Buffer
	d := ksrtest.Deps(t, &log, m)
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	r := sipnet.NewFakeRequest(req)
	r.Src = netip.MustParseAddrPort("10.0.0.1:5062")
	r.Listener = &sipnet.Listener{Proto: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:5060")}
	var replies []string
	r.Sink = func(rs *sip.Response) error {
		s := fmt.Sprintf("%d %s", rs.StatusCode, rs.Reason)
		if h := rs.GetHeader("Unsupported"); h != nil {
			s += " [" + h.Value() + "]"
		}
		replies = append(replies, s)
		return nil
	}
	env := ksr.NewEnv(d, "t/0", "t", 0)
	env.Msg = &ksr.Msg{Req: r}
	L := lua.NewState()
	defer L.Close()
	ksr.Register(L, env)
	if err := L.DoString(code); err != nil {
		t.Fatalf("%s: %v", code, err)
	}
	return L.Get(-1).String(), replies
}

func configured(t *testing.T, params ...string) *sanity.Module {
	t.Helper()
	m := sanity.New()
	src := "loadmodule \"sanity.so\"\n"
	for i := 0; i+1 < len(params); i += 2 {
		src += fmt.Sprintf("modparam(\"sanity\", %q, %s)\n", params[i], params[i+1])
	}
	c, err := config.Parse("t.cfg", []byte(src), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var notices []string
	setup := ksr.NewSetup("t.cfg", &notices)
	for _, st := range c.Stmts {
		if st.Kind != config.ModParam {
			continue
		}
		for _, p := range m.Info().Params {
			if p.Name == st.Param {
				if err := p.Set(setup, st); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	return m
}

// TestChecks follows sanity.c at 5.6.3: which check fails, the reply it
// sends and the result (-1 failed, 1 passed).
func TestChecks(t *testing.T) {
	m := func() *sanity.Module { return configured(t, "proxy_require", `"foo, bar"`) }
	auth := func(v string) string { return "Authorization: Digest " + v + "\r\n" }
	cases := []struct {
		raw, expr, want string
		replies         string
	}{
		{message("sip:b@y", ""), "KSR.sanity.sanity_check_defaults()", "1", "[]"},
		{message("sip:b@y", "Proxy-Require: foo, bar\r\n"), "KSR.sanity.sanity_check_defaults()", "1", "[]"},
		{message("sip:b@y", "Proxy-Require: foo, baz\r\n"), "KSR.sanity.sanity_check_defaults()", "-1", "[420 Bad Proxy Require Extension [baz]]"},
		{message("sip:b@y", "Proxy-Require: baz\r\n"), "KSR.sanity.sanity_check(1, 7)", "1", "[]"}, // the check is off
		{message("sip:b@y", "Expires: 60\r\n"), "KSR.sanity.sanity_check_defaults()", "1", "[]"},
		{message("sip:b@y", "Expires: 4294967296\r\n"), "KSR.sanity.sanity_check_defaults()", "1", "[]"},
		{message("sip:b@y", "Expires: 4294967297\r\n"), "KSR.sanity.sanity_check_defaults()", "-1", "[400 Expires value is illegal]"},
		{message("sip:b@y", "Expires: soon\r\n"), "KSR.sanity.sanity_check_defaults()", "-1", "[400 Expires value is illegal]"},
		{message("sip:b@y", auth(`username="a", realm="r", nonce="n", uri="sip:x", response="x"`)), "KSR.sanity.sanity_check_defaults()", "1", "[]"},
		{message("sip:b@y", auth(`username="a", realm="r", nonce="n", uri="sip:x"`)), "KSR.sanity.sanity_check_defaults()", "-1", "[400 Bad Auth Credentials]"},
		{message("sip:b@y", auth(`username="a", realm="r", nonce="n", uri="sip:x", response="x", qop=auth`)), "KSR.sanity.sanity_check_defaults()", "-1", "[400 Bad Auth Credentials]"},
		{message("sip:b@y", auth(`username="", realm="r", nonce="n", uri="sip:x", response="x"`)), "KSR.sanity.sanity_check_defaults()", "-1", "[400 Auth Empty User]"},
		{message("sip:b@y", auth(`username="a", realm="r", nonce="", uri="sip:x", response="x"`)), "KSR.sanity.sanity_check_defaults()", "-1", "[400 Auth Empty Nonce]"},
		{message("sip:b@y", auth(`username="a", realm="r", nonce="n", uri="sip:x", response=""`)), "KSR.sanity.sanity_check_defaults()", "-1", "[400 Auth Empty Response]"},
		// Basic credentials: not applicable, which CHECK_DIGEST counts as a
		// failure without a reply and CHECK_AUTHORIZATION as a pass.
		{message("sip:b@y", "Authorization: Basic YQ==\r\n"), "KSR.sanity.sanity_check(2048, 7)", "-1", "[]"},
		{message("sip:b@y", "Authorization: Basic YQ==\r\n"), "KSR.sanity.sanity_check(8192, 7)", "1", "[]"},
		{message("sip:b@y", "Contact: <sip:a@10.0.0.1>\r\n"), "KSR.sanity.sanity_check(1024, 15)", "1", "[]"},
		{message("sip:b@y", ""), "KSR.sanity.sanity_check(16383, 15)", "1", "[]"},
		{message("sip:b@y", ""), "KSR.sanity.sanity_reply()", "1", "[]"}, // without noreply: nothing
	}
	for _, c := range cases {
		t.Run(c.expr+" "+strings.ReplaceAll(c.raw[strings.Index(c.raw, "CSeq"):], "\r\n", " "), func(t *testing.T) {
			got, replies := run(t, m(), c.raw, "return "+c.expr)
			if got != c.want || fmt.Sprint(replies) != c.replies {
				t.Fatalf("= %s, replies %v; want %s, %s", got, replies, c.want, c.replies)
			}
		})
	}
}

// TestNoreply: with noreply, the failed check's reply waits for
// sanity_reply, which sends 500 when nothing failed; the Unsupported header
// of a 420 is kept for it.
func TestNoreply(t *testing.T) {
	m := configured(t, "noreply", "1", "proxy_require", `"foo"`)
	got, replies := run(t, m, message("sip:b@y", "Proxy-Require: baz\r\n"),
		"local r = KSR.sanity.sanity_check_defaults(); return r .. ' ' .. KSR.sanity.sanity_reply()")
	if got != "-1 1" || fmt.Sprint(replies) != "[420 Bad Proxy Require Extension [baz]]" {
		t.Fatalf("= %s, replies %v", got, replies)
	}
	got, replies = run(t, m, message("sip:b@y", ""),
		"local r = KSR.sanity.sanity_check_defaults(); return r .. ' ' .. KSR.sanity.sanity_reply()")
	if got != "1 1" || fmt.Sprint(replies) != "[500 Server Sanity Failure]" {
		t.Fatalf("= %s, replies %v", got, replies)
	}
}

// TestAutodropDoesNotStopTheScript: Kamailio's KEMI sanity_check returns
// -1 on a failure whatever autodrop says; only its native cfg function
// drops. The statement after the call runs.
func TestAutodropDoesNotStopTheScript(t *testing.T) {
	m := configured(t, "autodrop", "1")
	got, _ := run(t, m, message("sip:b@y", "Expires: soon\r\n"),
		"local r = KSR.sanity.sanity_check_defaults(); return 'after ' .. r")
	if got != "after -1" {
		t.Fatalf("= %s", got)
	}
}

func TestDefaults(t *testing.T) {
	if sanity.DefaultChecks != 3047 || sanity.DefaultURIChecks != 7 {
		t.Fatalf("defaults %d, %d; Kamailio's are 3047, 7", sanity.DefaultChecks, sanity.DefaultURIChecks)
	}
}
