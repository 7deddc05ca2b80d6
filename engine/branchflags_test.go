package engine_test

import (
	"strings"
	"testing"

	"kemi/engine/enginetest"
)

// branchFlagsScript record-routes, marks branch flag 6 (as the upstream
// example does for a NATed callee), and adds ;nat=yes to the
// Record-Route in the branch route; the reply route reports the flag it
// sees, as the example's reply route decides on set_contact_alias by it.
const branchFlagsScript = `
function ksr_request_route()
	KSR.rr.record_route()
	if KSR.hdr.get("X-NAT") then KSR.setbflag(6) end
	KSR.pv.sets("$du", KSR.hdr.get("X-Du"))
	KSR.tm.t_on_branch("ksr_branch")
	KSR.tm.t_on_reply("ksr_reply")
	KSR.tm.t_on_failure("ksr_failure")
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end

function ksr_branch()
	if KSR.isbflagset(6) then KSR.rr.add_rr_param(";nat=yes") end
end

function ksr_reply()
	KSR.hdr.append("X-Reply-BF: " .. tostring(KSR.isbflagset(6)) .. "\r\n")
end

function ksr_failure()
	KSR.hdr.append_to_reply("X-Failure-BF: " .. tostring(KSR.isbflagset(6)) .. "\r\n")
	KSR.tm.t_reply(480, "Gone")
end
`

// TestBranchFlagsReachReplyAndFailureRoutes: a branch's flags are what
// its branch route, its reply route and the failure route see (Kamailio's
// t_reply.c sets them from the branch), and add_rr_param in the branch
// route extends that branch's Record-Route.
func TestBranchFlagsReachReplyAndFailureRoutes(t *testing.T) {
	k := enginetest.Start(t, proxyConfig(), map[string]string{"script.lua": branchFlagsScript})
	p := newPeer(t)
	u := enginetest.Dial(t, "udp", k.Addr("udp"))
	for _, nat := range []bool{true, false} {
		hdrs := []string{"X-Du: sip:" + p.pc.LocalAddr().String()}
		if nat {
			hdrs = append(hdrs, "X-NAT: yes")
		}
		callID := enginetest.RandomID()
		u.Send(u.Build(enginetest.Req{Method: "MESSAGE", URI: p.uri(), CallID: callID, Headers: hdrs}))
		req, src := p.request("MESSAGE", enginetest.Patience)
		if rr := relayHdr(req, "Record-Route"); strings.Contains(rr, "nat=yes") != nat {
			t.Errorf("nat=%v: Record-Route at the next hop %q", nat, rr)
		}
		p.reply(req, src, 404, "Not Found", "p1")
		res, err := u.RecvResponse(enginetest.Patience)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := relayHdr(res, "X-Failure-BF"), map[bool]string{true: "true", false: "false"}[nat]; res.StatusCode != 480 || got != want {
			t.Errorf("nat=%v: %d, X-Failure-BF %q, want 480 and %q", nat, res.StatusCode, got, want)
		}
		callID = enginetest.RandomID()
		u.Send(u.Build(enginetest.Req{Method: "MESSAGE", URI: p.uri(), CallID: callID, Headers: hdrs}))
		req, src = p.request("MESSAGE", enginetest.Patience)
		p.reply(req, src, 200, "OK", "p2")
		res, err = u.RecvResponse(enginetest.Patience)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := relayHdr(res, "X-Reply-BF"), map[bool]string{true: "true", false: "false"}[nat]; got != want {
			t.Errorf("nat=%v: X-Reply-BF %q, want %q", nat, got, want)
		}
	}
}
