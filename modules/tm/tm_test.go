package tm_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/tm"
)

const invite = "INVITE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKtm1;rport\r\n" +
	"From: <sip:alice@atlanta.com>;tag=ft1\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: tm-1@10.0.0.1\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Content-Length: 0\r\n\r\n"

func newVM(t *testing.T) (*ksrtest.VM, *bytes.Buffer) {
	var log bytes.Buffer
	return ksrtest.NewVM(t, ksrtest.Deps(t, &log, tm.New(), tm.NewTMX())), &log
}

// setParam hands modparam("tm", name, value) to the module.
func setParam(t *testing.T, m ksr.Module, name string, value int) error {
	t.Helper()
	for _, p := range m.Info().Params {
		if p.Name == name {
			var notices []string
			return p.Set(ksr.NewSetup("", &notices), config.Stmt{Kind: config.ModParam, Name: "tm", Param: name,
				Value: config.Value{Int: value, IsInt: true}})
		}
	}
	t.Fatalf("tm has no parameter %q", name)
	return nil
}

func TestTimers(t *testing.T) {
	m := tm.New()
	if s := m.Settings(); s.FrTimer != 30*time.Second || s.FrInvTimer != 120*time.Second {
		t.Fatalf("defaults %+v, want Kamailio's 30 s / 120 s", *s)
	}
	if err := setParam(t, m, "fr_timer", 1500); err != nil {
		t.Fatal(err)
	}
	if err := setParam(t, m, "fr_inv_timer", 90000); err != nil {
		t.Fatal(err)
	}
	if s := m.Settings(); s.FrTimer != 1500*time.Millisecond || s.FrInvTimer != 90*time.Second {
		t.Fatalf("settings %+v", *s)
	}
	if err := setParam(t, m, "fr_timer", 0); err == nil {
		t.Fatal("fr_timer 0 accepted")
	}
	for _, n := range m.Info().Ignored {
		if n == "fr_timer" || n == "fr_inv_timer" {
			t.Errorf("%s both honoured and ignored", n)
		}
	}
}

func TestTransaction(t *testing.T) {
	v, log := newVM(t)
	v.Bind(invite)
	for expr, want := range map[string]string{
		`KSR.tm.t_check_trans()`:     "-1",
		`KSR.tm.t_reply(200, "OK")`:  "-1", // no transaction yet
		`KSR.tm.t_get_status_code()`: "-1",
	} {
		if got := v.Eval(expr); got != want {
			t.Errorf("%s = %s, want %s", expr, got, want)
		}
	}
	if !strings.Contains(log.String(), "no transaction has been established") {
		t.Errorf("t_reply without transaction not logged: %q", log.String())
	}
	steps := []struct{ expr, want string }{
		{`KSR.tm.t_newtran()`, "1"},
		{`KSR.tm.t_newtran()`, "-10"},
		{`KSR.tm.t_check_trans()`, "0"}, // Kamailio: a retransmission (tm.c t_check_trans)
		{`KSR.tm.t_get_status_code()`, "-1"},
		{`KSR.tm.t_check_status("^0$")`, "1"}, // no reply yet: the status is "0"
		{`KSR.tm.t_is_canceled()`, "-1"},
		{`KSR.tm.t_reply(180, "Ringing")`, "1"},
		{`KSR.tm.t_get_status_code()`, "180"},
		{`KSR.tm.t_check_status("1[0-9][0-9]")`, "1"},
		{`KSR.tm.t_check_status("2[0-9][0-9]")`, "-1"},
		{`KSR.tm.t_check_status("8")`, "1"}, // unanchored, as regexec
		{`KSR.tm.t_check_status("(")`, "-1"},
		{`KSR.tm.t_branch_timeout()`, "-1"},
		{`KSR.tm.t_branch_replied()`, "-1"},
	}
	for _, s := range steps {
		if got := v.Eval(s.expr); got != s.want {
			t.Errorf("%s = %s, want %s", s.expr, got, s.want)
		}
	}
	if got := v.Eval(`KSR.tm.t_check_trans()`); got != "0" {
		t.Errorf("t_check_trans after a reply = %s, want 0", got)
	}
	if len(v.Replies) != 2 || v.Replies[1].StatusCode != 180 {
		t.Errorf("replies %v", v.Replies)
	}
}

func TestArmAndRelay(t *testing.T) {
	v, _ := newVM(t)
	m := v.Bind(invite)
	for _, expr := range []string{`KSR.tm.t_on_failure("f")`, `KSR.tm.t_on_reply("r")`, `KSR.tm.t_on_branch("b")`} {
		if got := v.Eval(expr); got != "1" {
			t.Errorf("%s = %s", expr, got)
		}
	}
	if m.OnFailure != "f" || m.OnReply != "r" || m.OnBranch != "b" {
		t.Errorf("armed %q %q %q", m.OnFailure, m.OnReply, m.OnBranch)
	}
	// no Relay in the deps: -1, logged
	for expr, want := range map[string]string{
		`KSR.tm.t_relay()`: "-1",
		`KSR.tm.t_relay_to_proto_addr("udp", "10.0.0.7", 5090)`:  "-1",
		`KSR.tm.t_relay_to_proto_addr("sctp", "10.0.0.7", 5090)`: "-1",
		`KSR.tm.t_relay_to_proto_addr("udp", "10.0.0.7")`:        "false", // too few
	} {
		if got := v.Eval(expr); got != want {
			t.Errorf("%s = %s, want %s", expr, got, want)
		}
	}
}

func TestTMXReplyPVs(t *testing.T) {
	v, _ := newVM(t)
	v.Bind(invite)
	got := v.Eval(`tostring(KSR.pv.get("$T_reply_code")) .. "/" .. tostring(KSR.pv.get("$T_reply_reason")) .. "/" .. tostring(KSR.pv.get("$T(reply_type)"))`)
	if got != "0//nil" {
		t.Fatalf("without transaction: %s, want 0//nil", got)
	}
	v.Eval(`KSR.tm.t_newtran()`)
	v.Eval(`KSR.tm.t_reply(183, "Progress")`)
	got = v.Eval(`tostring(KSR.pv.get("$T_reply_code")) .. "/" .. tostring(KSR.pv.get("$T_reply_reason")) .. "/" .. tostring(KSR.pv.get("$T(reply_type)"))`)
	if got != "183/nil/0" {
		t.Fatalf("with a transaction: %s, want 183/nil/0", got)
	}
}

func TestInfo(t *testing.T) {
	if n := len(tm.New().Info().Ignored); n != 51 {
		t.Errorf("tm ignores %d modparams, want Kamailio 5.6.3's 54 less fr_timer, fr_inv_timer and auto_inv_100_reason", n)
	}
	if r := tm.New().Settings().Inv100Reason; r != "trying -- your call is important to us" {
		t.Errorf("default auto_inv_100_reason %q", r)
	}
	m := tm.New()
	for _, p := range m.Info().Params {
		if p.Name == "auto_inv_100_reason" {
			var notices []string
			st := config.Stmt{Kind: config.ModParam, Name: "tm", Param: p.Name, Value: config.Value{Str: "Trying"}}
			if err := p.Set(ksr.NewSetup("", &notices), st); err != nil || m.Settings().Inv100Reason != "Trying" {
				t.Errorf("auto_inv_100_reason: %v, %q", err, m.Settings().Inv100Reason)
			}
			st.Value.Str = ""
			if err := p.Set(ksr.NewSetup("", &notices), st); err == nil {
				t.Errorf("auto_inv_100_reason accepts an empty reason")
			}
		}
	}
	x := tm.NewTMX().Info()
	if x.Name != "tmx" || len(x.PVs) != 6 || len(x.Ignored) != 1 || len(x.Exports[0].Funcs) != 5 {
		t.Errorf("tmx %+v", x)
	}
}
