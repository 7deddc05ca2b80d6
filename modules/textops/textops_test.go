package textops_test

import (
	"bytes"
	"strings"
	"testing"

	"kemi/ksr/ksrtest"
	"kemi/modules/sl"
	"kemi/modules/textops"
)

const message = "MESSAGE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKtx1;rport\r\n" +
	"From: <sip:alice@atlanta.com>;tag=ft1\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: tx-1@10.0.0.1\r\n" +
	"CSeq: 1 MESSAGE\r\n" +
	"X-Multi: one\r\n" +
	"X-Multi: two\r\n" +
	"X-Num: 42\r\n" +
	"Content-Type: text/plain\r\n" +
	"Content-Length: 5\r\n\r\nhello"

func TestTextops(t *testing.T) {
	var log bytes.Buffer
	v := ksrtest.NewVM(t, ksrtest.Deps(t, &log, textops.New(), sl.New()))
	m := v.Bind(message)
	for _, c := range []struct{ expr, want string }{
		{`KSR.textops.search("x-num: 4[0-9]")`, "1"},
		{`KSR.textops.search("X-Nope")`, "-1"},
		{`KSR.textops.search_body("ell")`, "1"},
		{`KSR.textops.has_body_type("text/plain")`, "1"},
		{`KSR.textops.has_body_type("application/sdp")`, "-1"},
		{`KSR.textops.is_present_hf("x-multi")`, "1"},
		{`KSR.textops.replace("one", "uno")`, "1"},
		{`KSR.pv.get("$hdr(X-Multi)")`, "uno"},
		{`KSR.textops.subst("/X-Num: ([0-9]+)/X-Num: \\1\\1/")`, "1"},
		{`KSR.pv.get("$hdr(X-Num)")`, "4242"},
		{`KSR.textops.subst("/nomatch/x/")`, "-1"},
		{`KSR.textops.subst_body("/h(el)lo/H\\1/")`, "1"},
		{`KSR.pv.get("$rb") .. "/" .. KSR.pv.get("$cl")`, "Hel/3"},
		{`KSR.textops.remove_hf_re("^X-")`, "1"},
		{`KSR.textops.is_present_hf("X-Num")`, "-1"},
		{`KSR.textops.set_body("new body", "text/html")`, "1"},
		{`KSR.pv.get("$rb") .. "/" .. KSR.pv.get("$cT")`, "new body/text/html"},
		{`KSR.textops.cmp_str("abb", "abc")`, "-2"},
		{`KSR.textops.str_find("abcdef", "cd")`, "3"},
		{`KSR.textops.in_list("b", "a, b ,c", ",")`, "1"},
		{`KSR.textops.set_reply_body("reply body", "text/plain")`, "1"},
		{`KSR.sl.send_reply(200, "OK")`, "1"},
	} {
		if got := v.Eval(c.expr); got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
	if len(v.Replies) != 1 || string(v.Replies[0].Body()) != "reply body" ||
		!strings.Contains(v.Replies[0].String(), "Content-Type: text/plain") {
		t.Errorf("reply %v", v.Replies)
	}
	if got := m.Request().Recipient.String(); got != "sip:bob@example.com" {
		t.Errorf("R-URI %s", got)
	}
}
