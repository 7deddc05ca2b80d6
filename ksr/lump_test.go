package ksr_test

import (
	"bytes"
	"strings"
	"testing"

	"kemi/ksr/ksrtest"
)

const editMsg = "MESSAGE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKe1\r\n" +
	"From: \"Alice\" <sip:alice@atlanta.com>;tag=ft1\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: e-1@10.0.0.1\r\n" +
	"CSeq: 1 MESSAGE\r\n" +
	"Content-Length: 0\r\n\r\n"

// TestFromToEdits: $fu/$fU/$fd/$fn/$tu/$tn writes are lumps, as in
// Kamailio: the message read in the route keeps the received value, the
// copy ApplyEdits prepares for the next hop has the new one.
func TestFromToEdits(t *testing.T) {
	var log bytes.Buffer
	v := ksrtest.NewVM(t, ksrtest.Deps(t, &log))
	m := v.Bind(editMsg)
	for _, c := range []struct{ expr, want string }{
		{`KSR.pv.sets("$fU", "carol")`, "true"},
		{`KSR.pv.sets("$fd", "example.net")`, "true"},
		{`KSR.pv.sets("$fn", "Carol")`, "true"},
		{`KSR.pv.sets("$tu", "sip:dave@example.org")`, "true"},
		{`KSR.pv.seti("$tU", 5)`, "false"}, // an integer is an error (pv_set_xto_attr)
		{`KSR.pv.unset("$tu")`, "true"},    // the URI cannot be deleted: a warning, success
		{`KSR.pv.get("$fu")`, "sip:alice@atlanta.com"},
		{`KSR.pv.get("$fn")`, `"Alice"`},
	} {
		if got := v.Eval(c.expr); got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
	out := m.Request().Clone()
	m.ApplyEdits(out)
	got := out.String()
	for _, want := range []string{"From: Carol <sip:carol@example.net>;tag=ft1\r\n", "To: <sip:dave@example.org>\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the copy lacks %q:\n%s", want, got)
		}
	}
	if f := out.From(); f == nil || f.Address.User != "carol" {
		t.Errorf("the copy's parsed From %v", f)
	}
	if !strings.Contains(m.Request().String(), "From: \"Alice\" <sip:alice@atlanta.com>;tag=ft1\r\n") {
		t.Errorf("the received message changed:\n%s", m.Request())
	}
}
