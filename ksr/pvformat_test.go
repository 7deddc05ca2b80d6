package ksr_test

import (
	"strings"
	"testing"
)

const fmtInvite = "INVITE sip:bob@example.com:5080 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc\r\n" +
	"From: <sip:alice@atlanta.com>;tag=ft1\r\nTo: <sip:bob@example.com>\r\n" +
	"Call-ID: c1\r\nCSeq: 42 INVITE\r\nX-A: one\r\nX-A: two\r\nContent-Length: 0\r\n\r\n"

func TestFormat(t *testing.T) {
	h := newCoreHarness(t)
	h.bind(fmtInvite)
	h.eval("KSR.pv.sets('$var(v)', 'val')")
	for in, want := range map[string]string{
		"":                                 "",
		"plain":                            "plain",
		"$ru":                              "sip:bob@example.com:5080",
		"to $rU@$rd:$rp.":                  "to bob@example.com:5080.",
		"$(ru)|$(rU)":                      "sip:bob@example.com:5080|bob",
		"$hdr(X-A) $hdr(x-a) $hdr(X-None)": "one one <null>",
		"$(hdr(X-A)[1])$(hdr(X-A)[-1])":    "twotwo",
		"$(hdr(X-A)[2]) $(hdr(X-A)[*])":    "<null> one,two",
		"$var(v) $var(unset) $avp(unset)":  "val 0 <null>",
		"$$ $($) $cs":                      "$ $ 42",
		"$var($var(v))":                    "0",
		"a$rm":                             "aINVITE",
	} {
		got, err := h.env.Format(in)
		if err != nil || got != want {
			t.Errorf("Format(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"5$", "$ x", "$nosuch", "$(ru", "$hdr(X", "$hdr()", "$(ru{s.len})", "$(hdr(X)[x])", "$($x)"} {
		if got, err := h.env.Format(in); err == nil {
			t.Errorf("Format(%q) = %q, want an error", in, got)
		}
	}
}

// TestFormatCached checks that a format is parsed once per VM: evaluating
// it again allocates only what the value getters do ($ru renders the
// URI) and the result, not the parse.
func TestFormatCached(t *testing.T) {
	h := newCoreHarness(t)
	h.bind(fmtInvite)
	const f = "ru=$ru m=$rm"
	if _, err := h.env.Format(f); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() { h.env.Format(f) })
	get := testing.AllocsPerRun(100, func() { h.env.PVValue("$ru"); h.env.PVValue("$rm") })
	if n > get+1 { // the getters' own allocations, plus the result
		t.Errorf("Format allocates %v times per call, the getters %v", n, get)
	}
	if s, _ := h.env.Format("no variables"); !strings.HasPrefix(s, "no") {
		t.Errorf("got %q", s)
	}
}

func BenchmarkFormat(b *testing.B) {
	t := &testing.T{}
	h := newCoreHarness(t)
	h.bind(fmtInvite)
	b.ReportAllocs()
	for b.Loop() {
		h.env.Format("request $rm from $fu to $ru ($hdr(X-A))")
	}
}
