package tm_test

import (
	"testing"

	"kemi/ksr"
)

func TestTMXRouteChecks(t *testing.T) {
	vm, _ := newVM(t)
	m := vm.Bind(invite)
	for _, c := range []struct {
		route      ksr.RouteType
		tm         bool
		req, rpl   string
		fail, bran string
		idx        string
	}{
		{ksr.RouteRequest, false, "1", "-1", "-1", "-1", "0"},
		{ksr.RouteBranch, false, "-1", "-1", "-1", "1", "0"},
		{ksr.RouteFailure, true, "-1", "-1", "1", "-1", "3"},
		{ksr.RouteFailure, false, "-1", "-1", "-1", "-1", "nil"}, // an async resume
		{ksr.RouteEvent, false, "-1", "-1", "-1", "-1", "-1"},
	} {
		m.Route, m.TM = c.route, nil
		if c.tm {
			m.TM = &ksr.TMReply{Code: 408, Branches: 3}
		}
		got := []string{vm.Eval("KSR.tmx.t_is_request_route()"), vm.Eval("KSR.tmx.t_is_reply_route()"),
			vm.Eval("KSR.tmx.t_is_failure_route()"), vm.Eval("KSR.tmx.t_is_branch_route()"), vm.Eval("KSR.pv.get('$T_branch_idx')")}
		want := []string{c.req, c.rpl, c.fail, c.bran, c.idx}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("route %d: got %v, want %v", c.route, got, want)
				break
			}
		}
	}
	m.Route, m.TM = ksr.RouteRequest, nil
	if got := vm.Eval("KSR.tmx.t_precheck_trans()"); got != "-1" {
		t.Errorf("t_precheck_trans = %s, want -1", got)
	}
	vm.Bind("ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK9\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: 9\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n")
	if got := vm.Eval("KSR.tmx.t_precheck_trans()"); got != "-2" {
		t.Errorf("t_precheck_trans for ACK = %s, want -2", got)
	}
}

func TestTIsSet(t *testing.T) {
	vm, _ := newVM(t)
	vm.Bind(invite)
	for _, c := range []struct{ expr, want string }{
		{"KSR.tm.t_is_set('branch_route')", "-1"},
		{"KSR.tm.t_on_branch('b')", "1"},
		{"KSR.tm.t_is_set('branch_route')", "1"},
		{"KSR.tm.t_is_set('failure_route')", "-1"},
		{"KSR.tm.t_on_reply('r')", "1"},
		{"KSR.tm.t_is_set('onreply_route')", "1"},
		{"KSR.tm.t_is_set('x')", "-1"},
		{"KSR.tm.t_is_set('')", "-1"},
		{"KSR.pv.get('$T_req($ru)')", "nil"},
		{"KSR.pv.get('$T_rpl($rs)')", "nil"},
	} {
		if got := vm.Eval(c.expr); got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
}
