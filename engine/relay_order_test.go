package engine_test

import (
	"testing"

	"kemi/engine/enginetest"
)

// TestRelayKeepsReplyOrder: a next hop that sends 180 and 486 back to
// back gets both relayed upstream, in that order. The replies of one
// transaction are handled by one receiver in arrival order; on any free
// receiver the 486 could end the transaction before the 180 went out.
func TestRelayKeepsReplyOrder(t *testing.T) {
	k := enginetest.Start(t, proxyConfig(`modparam("tm", "fr_inv_timer", 5000)`), map[string]string{"script.lua": orderScript})
	p := newPeer(t)
	u := enginetest.Dial(t, "udp", k.Addr("udp"))
	for i := 0; i < 30; i++ {
		callID := enginetest.RandomID()
		u.Send(u.Build(enginetest.Req{Method: "INVITE", URI: p.uri(), CallID: callID,
			Headers: []string{"X-Du: sip:" + p.pc.LocalAddr().String(), "Contact: <sip:caller@" + u.LocalAddr() + ">"}}))
		req, src := p.request("INVITE", enginetest.Patience)
		p.reply(req, src, 180, "Ringing", "t1")
		p.reply(req, src, 486, "Busy Here", "t1")
		var got []int
		for len(got) == 0 || got[len(got)-1] < 200 {
			res, err := u.RecvResponse(enginetest.Patience)
			if err != nil {
				t.Fatalf("call %d: replies so far %v: %v", i, got, err)
			}
			if res.CallID().Value() == callID && res.StatusCode > 100 {
				got = append(got, int(res.StatusCode))
			}
		}
		if len(got) != 2 || got[0] != 180 || got[1] != 486 {
			t.Fatalf("call %d: upstream got %v, want [180 486]", i, got)
		}
		p.request("ACK", enginetest.Patience) // the hop-by-hop ACK of the 486
	}
}

// orderScript relays everything to X-Du, with a reply route that takes a
// little Lua time (as real scripts do).
const orderScript = `
function ksr_request_route()
	if KSR.is_ACK() then return end
	KSR.pv.sets("$du", KSR.hdr.get("X-Du"))
	KSR.tm.t_on_reply("ksr_onreply")
	if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
end

function ksr_onreply()
	local s = 0
	for i = 1, 2000 do s = s + i end
end
`
