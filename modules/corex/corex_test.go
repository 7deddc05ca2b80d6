package corex_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"kemi/config"
	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/corex"
)

const msg = "MESSAGE sip:bob@a.sub.test:5070 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\r\n" +
	"From: <sip:alice@x.example.com>;tag=1\r\nTo: <sip:bob@sub.test>\r\n" +
	"Call-ID: c1\r\nCSeq: 1 MESSAGE\r\nUser-Agent: ua/1\r\nContent-Length: 0\r\n\r\n"

func withAliases(t *testing.T, vals ...string) (*corex.Module, error) {
	m := corex.New()
	var notices []string
	s := ksr.NewSetup("", &notices)
	for _, v := range vals {
		if err := m.Info().Params[0].Set(s, config.Stmt{Param: "alias_subdomains", Value: config.Value{Str: v}}); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func TestAliasParam(t *testing.T) {
	for _, v := range []string{"sub.test", "sub.test:5070", "udp:sub.test", "TCP:sub.test:5061", "sctp:x.y"} {
		if _, err := withAliases(t, v); err != nil {
			t.Errorf("%q: %v", v, err)
		}
	}
	for _, v := range []string{"", "abc:5060", "foo:bar:1", "udp:", "sub.test:x", "udp:a:b:c"} {
		if _, err := withAliases(t, v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
}

func TestExports(t *testing.T) {
	m, err := withAliases(t, "sub.test:5070")
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	vm := ksrtest.NewVM(t, ksrtest.Deps(t, &log, m))
	vm.Bind(msg)
	file := filepath.Join(t.TempDir(), "f")
	for _, c := range []struct{ expr, want string }{
		{"KSR.corex.has_ruri_user()", "1"},
		{"KSR.corex.has_user_agent()", "1"},
		{"KSR.corex.is_faked_msg()", "-1"},
		{"KSR.corex.is_socket_name('udp')", "-1"},
		{"KSR.corex.file_write('" + file + "', 'x1')", "1"},
		{"KSR.corex.file_read('" + file + "')", "x1"},
		{"KSR.corex.file_read('" + file + ".none')", ""},
		{"KSR.corex.file_write('/nonexistent/dir/f', 'x')", "-1"},
		{"KSR.is_myself_ruri()", "true"},
		{"KSR.is_myself_turi()", "true"},
		{"KSR.is_myself_furi()", "false"},
		{"KSR.is_myself('sip:sub.test:5080')", "false"},
		{"KSR.is_myself('sip:xsub.test')", "false"},
	} {
		if got := vm.Eval(c.expr); got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
	vm.Env.Msg.Faked = true
	if got := vm.Eval("KSR.corex.is_faked_msg()"); got != "1" {
		t.Errorf("faked: %s", got)
	}
	vm.Bind("OPTIONS sip:sub.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: 2\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
	if got := vm.Eval("KSR.corex.has_ruri_user() .. KSR.corex.has_user_agent()"); got != "-1-1" {
		t.Errorf("no user, no UA: %s", got)
	}
}
