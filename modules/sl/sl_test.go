package sl_test

import (
	"bytes"
	"strings"
	"testing"

	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/sl"
)

const invite = "INVITE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKsl1;rport\r\n" +
	"From: <sip:alice@atlanta.com>;tag=ft1\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: sl-1@10.0.0.1\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Content-Length: 0\r\n\r\n"

func newVM(t *testing.T) (*ksrtest.VM, *bytes.Buffer) {
	var log bytes.Buffer
	return ksrtest.NewVM(t, ksrtest.Deps(t, &log, sl.New())), &log
}

func TestSendReply(t *testing.T) {
	v, _ := newVM(t)
	v.Bind(invite)
	if got := v.Eval(`KSR.sl.send_reply(404, "Not Here")`); got != "1" {
		t.Fatalf("send_reply = %s", got)
	}
	if got := v.Eval(`KSR.sl.sl_reply_error()`); got != "1" {
		t.Fatalf("sl_reply_error = %s", got)
	}
	if len(v.Replies) != 2 || v.Replies[0].StatusCode != 404 || v.Replies[1].StatusCode != 500 ||
		v.Replies[1].Reason != "I'm terribly sorry, server error occurred (1/SL)" {
		t.Fatalf("replies %v", v.Replies)
	}
	for _, bad := range []string{`KSR.sl.send_reply(200, "")`, `KSR.sl.sl_send_reply(99, "x")`, `KSR.sl.send_reply("abc", "X")`} {
		if got := v.Eval(bad); got != "-1" {
			t.Errorf("%s = %s, want -1", bad, got)
		}
	}
}

// send_reply goes through the transaction when there is one; sl_send_reply
// never does (Kamailio's sl.c: sl_send_reply_str vs send_reply).
func TestStatefulOrNot(t *testing.T) {
	v, _ := newVM(t)
	m := v.Bind(invite)
	tx, err := m.Req.NewTx()
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Eval(`KSR.sl.send_reply(180, "Ringing")`); got != "1" || tx.LastStatus() != 180 {
		t.Fatalf("send_reply = %s, transaction status %d", got, tx.LastStatus())
	}
	if got := v.Eval(`KSR.sl.sl_send_reply(486, "Busy")`); got != "1" || tx.LastStatus() != 180 {
		t.Fatalf("sl_send_reply = %s, transaction status %d (want it untouched)", got, tx.LastStatus())
	}
	if len(v.Replies) != 2 {
		t.Fatalf("%d replies", len(v.Replies))
	}
}

// Too few arguments: logged, false, as app_lua's sr_kemi_lua_exec_func_ex.
func TestArguments(t *testing.T) {
	v, log := newVM(t)
	v.Bind(invite)
	if got := v.Eval(`KSR.sl.send_reply(200)`); got != "false" {
		t.Fatalf("send_reply(200) = %s", got)
	}
	if !strings.Contains(log.String(), "KSR.sl.send_reply") {
		t.Errorf("log %q does not name the function", log.String())
	}
	if len(v.Replies) != 0 {
		t.Errorf("replied: %v", v.Replies)
	}
}

func TestInfo(t *testing.T) {
	info := sl.New().Info()
	if info.Name != "sl" || len(info.Ignored) != 6 {
		t.Fatalf("info %+v", info)
	}
	if _, err := ksr.NewTable(sl.New()); err != nil {
		t.Fatal(err)
	}
}
