package rr_test

import (
	"net/netip"
	"strings"
	"testing"

	"kemi/sipnet"
)

func routed(route string) string {
	return strings.Replace(invite, "Record-Route: <sip:10.0.0.9;lr>\r\n", route, 1)
}

func TestRouteParams(t *testing.T) {
	for _, c := range []struct {
		route, pre, expr, want string
	}{
		{"Route: <sip:127.0.0.1:5060;lr;ftag=ft1;nat=yes>\r\n", "", "KSR.rr.check_route_param('nat=yes')", "1"},
		{"Route: <sip:127.0.0.1:5060;lr;ftag=ft1;nat=yes>\r\n", "", "KSR.rr.check_route_param('^;lr;ftag=ft1')", "1"},
		{"Route: <sip:127.0.0.1:5060;lr;ftag=ft1;nat=yes>\r\n", "KSR.rr.loose_route()", "KSR.rr.check_route_param('NAT=yes$')", "1"},
		{"Route: <sip:127.0.0.1:5060;lr;ftag=ft1>\r\n", "", "KSR.rr.check_route_param('nat')", "-1"},
		{"Route: <sip:127.0.0.1:5060;lr;ftag=ft1>\r\n", "", "KSR.rr.check_route_param('(')", "-1"},
		{"Route: <sip:10.9.9.9;lr;nat=yes>\r\n", "", "KSR.rr.check_route_param('nat')", "-1"},
		{"", "", "KSR.rr.check_route_param('.')", "-1"},
		{"Route: <sip:127.0.0.1:5060;lr;ftag=ft1>\r\n", "", "KSR.rr.is_direction('downstream')", "1"},
		{"Route: <sip:127.0.0.1:5060;lr;ftag=xx>\r\n", "KSR.rr.loose_route()", "KSR.rr.is_direction('upstream')", "1"},
		{"Route: <sip:127.0.0.1:5060;lr;ftag=xx>\r\n", "", "KSR.rr.is_direction('downstream')", "-1"},
		{"Route: <sip:127.0.0.1:5060;lr>\r\n", "", "KSR.rr.is_direction('downstream')", "1"},
		{"", "", "KSR.rr.is_direction('Upstream')", "-1"},
		{"", "", "KSR.rr.is_direction('up')", "-6"},
	} {
		v := newVM(t)
		v.Bind(routed(c.route))
		if c.pre != "" {
			v.Eval(c.pre)
		}
		if got := v.Eval(c.expr); got != c.want {
			t.Errorf("%q after %q: %s = %s, want %s", c.route, c.pre, c.expr, got, c.want)
		}
	}
}

func TestAddRRParam(t *testing.T) {
	v := newVM(t)
	m := v.Bind(invite)
	m.Req.Listener = &sipnet.Listener{Proto: "udp", Addr: netip.MustParseAddrPort("127.0.0.1:5060")}
	if v.Eval("KSR.rr.add_rr_param(';a=1')") != "1" || v.Eval("KSR.rr.record_route()") != "1" || v.Eval("KSR.rr.add_rr_param(';b=2')") != "1" {
		t.Fatal("add_rr_param or record_route failed")
	}
	if got, want := recordRoutes(v), "<sip:127.0.0.1:5060;lr;ftag=ft1;a=1;b=2> | <sip:10.0.0.9;lr>"; got != want {
		t.Errorf("Record-Route %q, want %q", got, want)
	}
	if got := v.Eval("KSR.rr.record_route_advertised_address('p.example')"); got != "-1" {
		t.Errorf("a second record-route = %s", got)
	}
	v.Bind(invite)
	if v.Eval("KSR.rr.add_rr_param(';nat=yes')") != "1" || v.Eval("KSR.rr.record_route_advertised_address('p.example:5999')") != "1" {
		t.Fatal("record_route_advertised_address failed")
	}
	if got, want := recordRoutes(v), "<sip:p.example:5999;ftag=ft1;lr;nat=yes> | <sip:10.0.0.9;lr>"; got != want {
		t.Errorf("Record-Route %q, want %q", got, want)
	}
	v.Bind(invite)
	if got := v.Eval("KSR.rr.record_route_advertised_address('')"); got != "-1" {
		t.Errorf("empty address = %s", got)
	}
}
