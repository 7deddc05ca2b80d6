package ksr_test

import (
	"bytes"
	"testing"

	"kemi/ksr/ksrtest"
)

const xavpMsg = "OPTIONS sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKx1\r\n" +
	"From: <sip:alice@atlanta.com>;tag=ft1\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: x-1@10.0.0.1\r\n" +
	"CSeq: 1 OPTIONS\r\n" +
	"Content-Length: 0\r\n\r\n"

// TestXavp follows pv_xavp.c: a set without a root index adds an item on
// top, [i] addresses an item, =>k a field (its newest value), an unset
// removes the newest item or field.
func TestXavp(t *testing.T) {
	var log bytes.Buffer
	v := ksrtest.NewVM(t, ksrtest.Deps(t, &log))
	v.Bind(xavpMsg)
	for _, c := range []struct{ expr, want string }{
		{`KSR.pv.sets("$xavp(x=>a)", "one")`, "true"},
		{`KSR.pv.seti("$xavp(x[0]=>b)", 2)`, "true"},
		{`KSR.pv.sets("$xavp(x[0]=>a)", "uno")`, "true"},
		{`KSR.pv.get("$xavp(x=>a)")`, "uno"},
		{`KSR.pv.get("$xavp(x=>a[1])")`, "one"},
		{`KSR.pv.get("$xavp(x=>b)") + 1`, "3"},
		{`KSR.pv.sets("$xavp(x=>a)", "new item")`, "true"},
		{`KSR.pv.get("$xavp(x[1]=>a)")`, "uno"},
		{`KSR.pv.get("$xavp(x[-1]=>a)")`, "uno"},
		{`KSR.pv.unset("$xavp(x)")`, "true"},
		{`KSR.pv.get("$xavp(x=>a)")`, "uno"},
		{`KSR.pv.unset("$xavp(x[0]=>a)")`, "true"},
		{`KSR.pv.get("$xavp(x=>a)")`, "one"},
		{`KSR.pv.unset("$xavp(x[*])")`, "true"},
		{`KSR.pv.is_null("$xavp(x=>a)")`, "true"},
		{`KSR.pv.sets("$xavp(s)", "v")`, "true"},
		{`KSR.pv.get("$xavp(s)")`, "v"},
		{`KSR.pv.sets("$xavp(s[3])", "v")`, "false"},
	} {
		if got := v.Eval(c.expr); got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
}
