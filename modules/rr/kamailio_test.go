package rr_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
	"kemi/modules/internal/kamtest"
)

// nextHop answers every request but ACK on a loopback UDP socket with 200
// and X-Result: the Record-Route headers it got, with the proxy's loopback
// address and the From tag normalised (they differ between the servers).
func nextHop(t *testing.T) string {
	addr := regexp.MustCompile(`sip:127\.0\.0\.1:[0-9]+`)
	return "sip:" + enginetest.UAS(t, func(req *sip.Request, reply func(*sip.Response)) {
		var rr []string
		for _, h := range req.GetHeaders("Record-Route") {
			rr = append(rr, addr.ReplaceAllString(h.Value(), "sip:PROXY"))
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.AppendHeader(sip.NewHeader("X-Result", "rr:"+strings.Join(rr, " , ")))
		reply(res)
	})
}

// fixTag sets the From tag to "ft1", so that a Route's ftag can match it.
func fixTag(s string) string {
	return regexp.MustCompile(`(From: <sip:alice@example\.com>;tag=)[0-9a-z]+`).ReplaceAllString(s, "${1}ft1")
}

// TestMoreAgainstKamailio compares add_rr_param, check_route_param,
// is_direction and record_route_advertised_address with Kamailio 5.6
// (tests/lua/rr.lua).
func TestMoreAgainstKamailio(t *testing.T) {
	script, err := os.ReadFile("../../tests/lua/rr.lua")
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "rr.so", "app_lua.so"}, `
alias=proxy.test
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "rr.so"
loadmodule "app_lua.so"
modparam("app_lua", "load", "%DIR%/rr.lua")
`, map[string]string{"rr.lua": string(script)})
	hop := nextHop(t)
	var cases []kamtest.Case
	eval := func(pre, expr string, headers ...string) {
		c := kamtest.Eval("MESSAGE", "sip:bob@example.com", expr, append([]string{"X-Pre: " + pre}, headers...)...)
		c.Mangle = fixTag
		cases = append(cases, c)
	}
	fwd := func(pre string, headers ...string) {
		c := kamtest.Eval("MESSAGE", "sip:bob@example.com", "nil", append([]string{"X-Pre: " + pre, "X-Fwd: " + hop}, headers...)...)
		c.Mangle = fixTag
		cases = append(cases, c)
	}
	down := "Route: <sip:proxy.test;lr;ftag=ft1;nat=yes>"
	up := "Route: <sip:proxy.test;lr;ftag=other;nat=yes>"
	foreign := "Route: <sip:elsewhere.test;lr;ftag=other>"
	for _, h := range []string{down, up, foreign} {
		for _, pre := range []string{"", "KSR.rr.loose_route()"} {
			for _, expr := range []string{
				"KSR.rr.check_route_param('nat=yes')", "KSR.rr.check_route_param('^;lr;ftag=')",
				"KSR.rr.check_route_param('NAT=YES$')", "KSR.rr.check_route_param('nat=no')",
				"KSR.rr.is_direction('downstream')", "KSR.rr.is_direction('upstream')", "KSR.rr.is_direction('sideways')",
			} {
				eval(pre, expr, h)
			}
		}
	}
	eval("", "KSR.rr.check_route_param('lr')")
	eval("", "KSR.rr.is_direction('downstream')")
	eval("", "KSR.rr.is_direction('upstream')")
	eval("", "KSR.rr.add_rr_param(';a=b')")
	eval("KSR.rr.record_route()", "KSR.rr.record_route_advertised_address('proxy.test:5999')")
	eval("", "KSR.rr.record_route_advertised_address('proxy.test:5999')")
	fwd("KSR.rr.record_route(); KSR.rr.add_rr_param(';nat=yes')")
	fwd("KSR.rr.add_rr_param(';nat=yes'); KSR.rr.add_rr_param(';x=1'); KSR.rr.record_route()")
	fwd("KSR.rr.record_route_params(';p=1'); KSR.rr.add_rr_param(';nat=yes')")
	fwd("KSR.rr.record_route_advertised_address('proxy.test:5999')")
	fwd("KSR.rr.add_rr_param(';nat=yes'); KSR.rr.record_route_advertised_address('10.1.2.3')")
	fwd("KSR.rr.loose_route(); KSR.rr.record_route_advertised_address('proxy.test')", up)
	p.Compare(t, cases)
}

// TestParamsAgainstKamailio: with append_fromtag 0 and enable_full_lr 1
// (as Kamailio's example configuration sets them) the Record-Routes of
// record_route, record_route_params, record_route_preset and add_rr_param
// are Kamailio's: no ftag, ";lr=on".
func TestParamsAgainstKamailio(t *testing.T) {
	script, err := os.ReadFile("../../tests/lua/rr.lua")
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "rr.so", "app_lua.so"}, `
alias=proxy.test
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "rr.so"
loadmodule "app_lua.so"
modparam("rr", "append_fromtag", 0)
modparam("rr", "enable_full_lr", 1)
modparam("app_lua", "load", "%DIR%/rr.lua")
`, map[string]string{"rr.lua": string(script)})
	hop := nextHop(t)
	var cases []kamtest.Case
	for _, pre := range []string{
		"KSR.rr.record_route()",
		"KSR.rr.record_route(); KSR.rr.add_rr_param(';nat=yes')",
		"KSR.rr.record_route_params(';p=1')",
		"KSR.rr.record_route_preset('proxy.test:5999', '')",
		"KSR.rr.record_route_preset('proxy.test:5999', '10.1.2.3:5060')",
	} {
		c := kamtest.Eval("MESSAGE", "sip:bob@example.com", "nil", "X-Pre: "+pre, "X-Fwd: "+hop)
		c.Mangle = fixTag
		cases = append(cases, c)
	}
	p.Compare(t, cases)
}
