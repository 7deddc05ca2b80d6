package rr_test

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"kemi/ksr/ksrtest"
	"kemi/modules/rr"
	"kemi/sipnet"
)

const invite = "INVITE sip:bob@example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKrr1;rport\r\n" +
	"Record-Route: <sip:10.0.0.9;lr>\r\n" +
	"From: <sip:alice@atlanta.com>;tag=ft1\r\n" +
	"To: <sip:bob@example.com>\r\n" +
	"Call-ID: rr-1@10.0.0.1\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Content-Length: 0\r\n\r\n"

func newVM(t *testing.T) *ksrtest.VM {
	var log bytes.Buffer
	d := ksrtest.Deps(t, &log, rr.New())
	d.Myself = func() []netip.AddrPort { return []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:5060")} }
	return ksrtest.NewVM(t, d)
}

// recordRoutes lists the request's Record-Route values, top first.
func recordRoutes(v *ksrtest.VM) string {
	var out []string
	for _, h := range v.Env.Msg.Request().GetHeaders("Record-Route") {
		out = append(out, h.Value())
	}
	return strings.Join(out, " | ")
}

func TestRecordRoute(t *testing.T) {
	v := newVM(t)
	m := v.Bind(invite)
	m.Req.Listener = &sipnet.Listener{Proto: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:5060")}
	if got := v.Eval(`KSR.rr.record_route_params("x=1")`); got != "1" {
		t.Fatalf("record_route_params = %s", got)
	}
	if got, want := recordRoutes(v), "<sip:127.0.0.1:5060;lr;ftag=ft1;x=1> | <sip:10.0.0.9;lr>"; got != want {
		t.Fatalf("Record-Route %q, want %q", got, want)
	}
	if got := v.Eval(`KSR.rr.record_route()`); got != "-1" {
		t.Errorf("second record_route = %s, want -1", got)
	}
}

// record_route_preset takes two addresses, record_route_preset_one one
// (rr_mod.c sr_kemi_rr_exports at 5.6.3); each is host[:port] and gets
// "sip:", the From tag and ";lr" (record.c record_route_preset).
func TestRecordRoutePreset(t *testing.T) {
	v := newVM(t)
	v.Bind(invite)
	if got := v.Eval(`KSR.rr.record_route_preset("sip:a.example")`); got != "false" {
		t.Errorf("record_route_preset with one argument = %s, want false (too few)", got)
	}
	if got := v.Eval(`KSR.rr.record_route_preset("a.example", "b.example:5070")`); got != "1" {
		t.Fatalf("record_route_preset = %s", got)
	}
	if got, want := recordRoutes(v), "<sip:a.example;ftag=ft1;lr> | <sip:b.example:5070;ftag=ft1;lr> | <sip:10.0.0.9;lr>"; got != want {
		t.Fatalf("Record-Route %q, want %q", got, want)
	}
	v.Bind(invite)
	if got := v.Eval(`KSR.rr.record_route_preset_one("c.example")`); got != "1" {
		t.Fatalf("record_route_preset_one = %s", got)
	}
	if got, want := recordRoutes(v), "<sip:c.example;ftag=ft1;lr> | <sip:10.0.0.9;lr>"; got != want {
		t.Fatalf("Record-Route %q, want %q", got, want)
	}
	if got := v.Eval(`KSR.rr.record_route_preset("d.example", "")`); got != "-1" {
		t.Fatalf("a second record-route = %s, want -1 (FL_RR_ADDED)", got)
	}
	v.Bind(invite)
	if got := v.Eval(`KSR.rr.record_route_preset("d.example", "")`); got != "1" {
		t.Fatalf("record_route_preset with empty addr2 = %s", got)
	}
}

func TestLooseRoute(t *testing.T) {
	v := newVM(t)
	v.Bind(invite)
	if got := v.Eval(`KSR.rr.loose_route()`); got != "-1" {
		t.Fatalf("loose_route without Route = %s", got)
	}
	m := v.Bind(strings.Replace(invite, "Record-Route: <sip:10.0.0.9;lr>\r\n",
		"Route: <sip:127.0.0.1:5060;lr>\r\nRoute: <sip:10.0.0.9;lr>\r\n", 1))
	if got := v.Eval(`KSR.rr.loose_route()`); got != "1" {
		t.Fatalf("loose_route = %s", got)
	}
	if m.DstURI != "sip:10.0.0.9;lr" || len(m.Request().GetHeaders("Route")) != 1 {
		t.Fatalf("$du %q, Route %v", m.DstURI, m.Request().GetHeaders("Route"))
	}
	// An initial request routed only to this proxy: RR_PRELOADED.
	v.Bind(strings.Replace(invite, "Record-Route: <sip:10.0.0.9;lr>\r\n", "Route: <sip:127.0.0.1:5060;lr>\r\n", 1))
	if got := v.Eval(`KSR.rr.loose_route()`); got != "-3" {
		t.Fatalf("loose_route, preloaded route to self = %s, want -3", got)
	}
}
