package engine_test

import (
	"strings"
	"testing"

	"kemi/engine/enginetest"
)

// forkScript registers (with branch flag 6 when X-NAT is set, as nat_bflag
// would be) and forks requests to example.com to every contact: lookup
// makes the best contact the R-URI and appends the others
// (append_branches); the branch route tells each branch its flags.
const forkScript = `
function ksr_request_route()
	if KSR.is_REGISTER() then
		if KSR.hdr.get("X-NAT") then KSR.setbflag(6) end
		KSR.registrar.save("location", 0)
		return
	end
	if KSR.is_CANCEL() or KSR.is_ACK() then
		KSR.tm.t_relay()
		return
	end
	local rc = KSR.registrar.lookup("location")
	if rc < 0 then
		KSR.sl.send_reply(404, "Not Found")
		return
	end
	KSR.tm.t_on_branch("ksr_branch")
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end

function ksr_branch()
	KSR.hdr.append("X-Branch: " .. KSR.pv.get("$T_branch_idx") .. " nat=" .. tostring(KSR.isbflagset(6)) .. "\r\n")
end
`

// TestParallelForkingToRegisteredContacts: an AOR with two contacts (q
// 0.9 and 0.3, one flagged NATed) gets a MESSAGE and an INVITE forked to
// both; each branch carries its own branch flags into the branch route;
// the MESSAGE's 200 from one contact wins over the other's 480, and the
// INVITE's 200 from one cancels the other branch.
func TestParallelForkingToRegisteredContacts(t *testing.T) {
	k := enginetest.Start(t, proxyConfig(`loadmodule "tmx.so"`, `loadmodule "usrloc.so"`, `loadmodule "registrar.so"`, `modparam("usrloc", "preload", "location")`),
		map[string]string{"script.lua": forkScript})
	a, b := newPeer(t), newPeer(t)
	u := enginetest.Dial(t, "udp", k.Addr("udp"))
	reg := func(contact string, extra ...string) {
		t.Helper()
		res := u.Do(enginetest.Req{Method: "REGISTER", URI: "sip:alice@example.com",
			Headers: append([]string{"Contact: " + contact}, extra...)}, enginetest.Patience)
		if res.StatusCode != 200 {
			t.Fatalf("REGISTER %s: %d", contact, res.StatusCode)
		}
	}
	reg("<sip:alice@"+a.pc.LocalAddr().String()+">;q=0.3", "X-NAT: yes")
	reg("<sip:alice@" + b.pc.LocalAddr().String() + ">;q=0.9")

	// MESSAGE: both branches; the 200 wins over the 480.
	callID := enginetest.RandomID()
	u.Send(u.Build(enginetest.Req{Method: "MESSAGE", URI: "sip:alice@example.com", CallID: callID, Body: "hi"}))
	ra, sa := a.request("MESSAGE", enginetest.Patience)
	rb, sb := b.request("MESSAGE", enginetest.Patience)
	if got := relayHdr(rb, "X-Branch"); got != "0 nat=false" {
		t.Errorf("best contact's branch: X-Branch %q, want the R-URI's branch 0 without the NAT flag", got)
	}
	if got := relayHdr(ra, "X-Branch"); got != "1 nat=true" {
		t.Errorf("appended contact's branch: X-Branch %q, want branch 1 with its NAT flag", got)
	}
	if !strings.Contains(rb.Recipient.String(), b.pc.LocalAddr().String()) || !strings.Contains(ra.Recipient.String(), a.pc.LocalAddr().String()) {
		t.Errorf("R-URIs: %s and %s", rb.Recipient.String(), ra.Recipient.String())
	}
	a.reply(ra, sa, 480, "Temporarily Unavailable", "a1")
	b.reply(rb, sb, 200, "OK", "b1")
	if res, err := u.RecvResponse(enginetest.Patience); err != nil || res.StatusCode != 200 || res.CallID().Value() != callID {
		t.Fatalf("MESSAGE: upstream got %v %v, want the 200", res, err)
	}

	// INVITE: the 200 from one contact cancels the other branch.
	callID = enginetest.RandomID()
	u.Send(u.Build(enginetest.Req{Method: "INVITE", URI: "sip:alice@example.com", CallID: callID,
		Headers: []string{"Contact: <sip:caller@" + u.LocalAddr() + ">"}}))
	ia, isa := a.request("INVITE", enginetest.Patience)
	ib, isb := b.request("INVITE", enginetest.Patience)
	a.reply(ia, isa, 180, "Ringing", "a2")
	b.reply(ib, isb, 200, "OK", "b2", "Contact: <sip:alice@"+b.pc.LocalAddr().String()+">")
	cancel, csrc := a.request("CANCEL", enginetest.Patience)
	if cancel.CallID().Value() != callID {
		t.Errorf("CANCEL for another call: %s", cancel.CallID().Value())
	}
	a.reply(cancel, csrc, 200, "OK", "a2")
	a.reply(ia, isa, 487, "Request Terminated", "a2")
	for {
		res, err := u.RecvResponse(enginetest.Patience)
		if err != nil {
			t.Fatalf("INVITE: no final reply upstream: %v", err)
		}
		if res.StatusCode >= 200 {
			if res.StatusCode != 200 {
				t.Fatalf("INVITE: upstream got %d, want the 200", res.StatusCode)
			}
			break
		}
	}
}
