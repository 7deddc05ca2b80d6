package xlog_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/xlog"
	"kemi/sipnet"
)

const msg = "MESSAGE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\r\n" +
	"From: <sip:alice@a.example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\n" +
	"Call-ID: c1\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n"

func run(t *testing.T, m *xlog.Module, expr string) (lua.LValue, string) {
	t.Helper()
	var log bytes.Buffer
	d := ksrtest.Deps(t, &log, m)
	env := ksr.NewEnv(d, "t/0", "t", 0)
	r, err := sip.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	env.Msg = &ksr.Msg{Req: sipnet.NewFakeRequest(r.(*sip.Request))}
	L := lua.NewState()
	defer L.Close()
	ksr.Register(L, env)
	if err := L.DoString("return " + expr); err != nil {
		t.Fatal(err)
	}
	return L.Get(-1), log.String()
}

func TestXlog(t *testing.T) {
	for _, c := range []struct{ expr, ret, logged string }{
		{"KSR.xlog.xinfo('m=$rm u=$ru')", "1", `level=INFO msg="m=MESSAGE u=sip:bob@example.com"`},
		{"KSR.xlog.xerr('x=$hdr(X)\\n')", "1", `level=ERROR msg="x=<null>" worker`},
		{"KSR.xlog.xcrit('c')", "1", `level=ERROR+4 msg=c`},
		{"KSR.xlog.xalert('a')", "1", `level=ERROR+8 msg=a`},
		{"KSR.xlog.xnotice('n')", "1", `level=INFO+2 msg=n`},
		{"KSR.xlog.xwarn('w')", "1", `level=WARN msg=w`},
		{"KSR.xlog.xdbg('d')", "1", `level=DEBUG msg=d`},
		{"KSR.xlog.xlog('l_info', 'i')", "1", `level=INFO msg=i`},
		{"KSR.xlog.xlog('L_BUG', 'b')", "1", `level=ERROR+4 msg=b`},
		{"KSR.xlog.xlog('nope', 'e')", "1", `level=ERROR msg=e`},
		{"KSR.xlog.xinfo('bad $nope')", "-1", `unknown pseudo-variable`},
	} {
		v, log := run(t, xlog.New(), c.expr)
		if v.String() != c.ret || !strings.Contains(log, c.logged) {
			t.Errorf("%s = %v, log %q; want %s and %q", c.expr, v, log, c.ret, c.logged)
		}
	}
}

func TestPrefix(t *testing.T) {
	m := xlog.New()
	var notices []string
	s := ksr.NewSetup("", &notices)
	for _, p := range m.Info().Params {
		v := config.Value{Str: "[$rm] "}
		if p.Name == "prefix_mode" {
			v = config.Value{Int: 1, IsInt: true}
		}
		if err := p.Set(s, config.Stmt{Param: p.Name, Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	if _, log := run(t, m, "KSR.xlog.xinfo('hi')"); !strings.Contains(log, `msg="[MESSAGE] hi"`) {
		t.Errorf("log %q", log)
	}
}
