-- relay (KSR.tm.t_relay, KSR.forward) under kemi test: the network is
-- virtual, res.relayed lists what the script sent to next hops, and the test
-- plays each next hop with b:reply(...) or b:timeout(). The script under
-- test is the stateful proxy example, scripts/proxy.lua: relay to NEXT_HOP,
-- on 408/5xx retry BACKUP_HOP once, MESSAGE with X-Delay-Ms delayed by async.
local t = require("kemi.test")

t.config("../../scripts/proxy.cfg")

local NEXT_HOP = "sip:127.0.0.1:5080"
local BACKUP_HOP = "sip:127.0.0.1:5082"

t.describe("t_relay", function()
	t.it("forwards to $du: one branch with our Via on top and Max-Forwards decremented by the script's process_maxfwd", function()
		local res = t.request{method = "MESSAGE", uri = "sip:bob@example.com", max_forwards = 10, body = "hi"}
		t.equal(#res.relayed, 1)
		local b = res.relayed[1]
		t.equal(b.uri, NEXT_HOP)
		t.equal(b.dst, "udp:127.0.0.1:5080")
		t.equal(b.method, "MESSAGE")
		t.equal(b.ruri, "sip:bob@example.com", "the R-URI is untouched when $du is set")
		t.equal(b.headers["max-forwards"], "9")
		t.equal(#b:header("Via"), 2)
		t.truthy(b:header("Via")[1]:find("^SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK"), b:header("Via")[1])
		t.equal(b.body, "hi")
		t.equal(#res.replies, 0, "nothing upstream before the next hop answers")
	end)

	t.it("relays the next hop's final reply upstream, without our Via", function()
		local res = t.request{method = "MESSAGE"}
		res.relayed[1]:reply(202, "Accepted", {headers = {["X-Hop"] = "first"}})
		t.equal(res.code, 202)
		t.equal(res.reason, "Accepted")
		t.equal(res:header("X-Hop"), "first")
		t.equal(#res.reply:header("Via"), 1, "only the client's Via is left")
		t.equal(#res.relayed, 1, "a 2xx ends the transaction: no retry")
	end)

	t.it("a 503 from the first hop runs the failure route, which retries the backup", function()
		local res = t.request{method = "MESSAGE"}
		res.relayed[1]:reply(503)
		t.equal(#res.replies, 0, "the 503 is not relayed while the backup is tried")
		t.equal(#res.relayed, 2)
		t.equal(res.relayed[2].uri, BACKUP_HOP)
		t.equal(res.relayed[2].dst, "udp:127.0.0.1:5082")
		res.relayed[2]:reply(200)
		t.equal(res.code, 200)
	end)

	t.it("a timeout of the first hop is a 408 for the failure route", function()
		local res = t.request{method = "MESSAGE"}
		t.truthy(res.relayed[1]:timeout())
		t.equal(#res.relayed, 2)
		t.truthy(table.concat(t.logs(), "\n"):find("first hop failed %(408%)"), "the failure route logged the 408")
		res.relayed[2]:reply(486, "Busy Here")
		t.equal(res.code, 486, "the backup's reply goes upstream: the failure route runs once")
		t.falsy(res.relayed[2]:timeout(), "an answered branch cannot time out")
	end)

	t.it("a 4xx other than 408 is relayed upstream without a retry", function()
		local res = t.request{method = "MESSAGE"}
		res.relayed[1]:reply(404)
		t.equal(#res.relayed, 1)
		t.equal(res.code, 404)
		t.equal(res.reason, "Not Found")
	end)
end)

t.describe("INVITE", function()
	t.it("100 Trying at once, 180 and 200 relayed, Record-Route added", function()
		local res = t.request{method = "INVITE"}
		t.equal(res.code, 100)
		local b = res.relayed[1]
		t.truthy(b.headers["record-route"]:find("127.0.0.1:5060;lr"), b.headers["record-route"])
		b:reply(180)
		t.equal(res.code, 180)
		b:reply(200, "OK", {headers = {"Contact: <sip:bob@127.0.0.1:5080>"}, body = "v=0\r\n"})
		t.equal(res.code, 200)
		t.equal(res.reply.body, "v=0\r\n")
		t.truthy(res:header("Record-Route"), "the 2xx carries the route set back")
	end)

	t.it("a retransmitted 200 goes upstream again; a late reply to a MESSAGE is absorbed", function()
		local res = t.request{method = "INVITE"}
		res.relayed[1]:reply(200)
		res.relayed[1]:reply(200)
		t.equal(#res.replies, 3, "100 Trying and the 200 twice")
		t.equal(res.replies[3].code, 200)
		local msg = t.request{method = "MESSAGE"}
		msg.relayed[1]:reply(200)
		msg.relayed[1]:reply(200)
		t.equal(#msg.replies, 1)
	end)

	t.it("a negative reply is ACKed hop by hop", function()
		local res = t.request{method = "INVITE"}
		local b = res.relayed[1]
		b:reply(486)
		t.truthy(b.acked)
		t.same(b.sent, {"INVITE", "ACK"})
		t.equal(res.code, 486)
	end)

	t.it("CANCEL from upstream cancels the branch; the next hop's 487 goes upstream", function()
		local res = t.request{method = "INVITE"}
		local b = res.relayed[1]
		b:reply(180)
		t.truthy(res:cancel())
		t.truthy(b.cancelled, "a CANCEL went to the next hop")
		b:reply(487)
		t.equal(res.code, 487)
		t.equal(#res.relayed, 1, "no failover after a CANCEL")
	end)

	t.it("CANCEL before any provisional reply ends the branch at once with 487", function()
		local res = t.request{method = "INVITE"}
		t.truthy(res:cancel())
		t.equal(res.code, 487)
		t.falsy(res.relayed[1].cancelled, "no CANCEL for a branch that never answered")
	end)
end)

t.describe("async then relay", function()
	t.it("X-Delay-Ms holds a MESSAGE, then it is relayed from the async worker", function()
		local res = t.request{method = "MESSAGE", headers = {["X-Delay-Ms"] = 250}}
		t.truthy(res.suspended)
		t.equal(#res.relayed, 0)
		t.advance(249)
		t.equal(#res.relayed, 0)
		t.advance(1)
		t.equal(#res.relayed, 1)
		res.relayed[1]:reply(200)
		t.equal(res.code, 200)
	end)
end)

t.test("OPTIONS to the proxy itself is answered, nothing relayed", function()
	local res = t.request{method = "OPTIONS", uri = "sip:127.0.0.1:5060"}
	t.equal(res.code, 200)
	t.equal(#res.relayed, 0)
end)
