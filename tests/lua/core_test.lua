-- KEMI core (reference §0, §5): KSR.x.exit and drop, runtime errors, the
-- message a request route sees ($pr, $si/$sp, $Ri/$Rp, headers), stateless
-- and stateful replies.
local t = require("kemi.test")
local h = require("helpers")

t.test("OPTIONS is answered 200 OK, statelessly", function()
	local res = t.request{method = "OPTIONS"}
	t.equal(res.code, 200)
	t.equal(res.reason, "OK")
	t.equal(#res.replies, 1)
	t.falsy(res.suspended)
	t.falsy(res.dropped)
	t.equal(res.delegated, false)
end)

t.test("the route sees where the request came from", function()
	local res = t.request{method = "OPTIONS", src = "192.0.2.7:5099", proto = "tcp"}
	t.equal(res:header("X-Proto"), "tcp")
	t.equal(res:header("X-Src"), "192.0.2.7:5099")
	t.equal(h.ksr("return KSR.pv.get('$Ri'), KSR.pv.get('$Rp'), KSR.pv.get('$pr')"), "127.0.0.1,5060,udp",
		"the receiving socket is the first listen= of the protocol")
end)

t.test("the listen= addresses are the engine's own (is_myself)", function()
	t.equal(h.ksr("return KSR.is_myself_ruri(), KSR.is_myself('sip:x@127.0.0.1:5060'), KSR.is_myself('sip:x@192.0.2.1')"),
		"true,true,false")
end)

t.test("a reply carries the request's Via, From, To (with a tag), Call-ID and CSeq", function()
	local res = t.request{method = "OPTIONS", call_id = "abc@host", cseq = 7}
	local r = res:last_reply()
	t.equal(r.headers["Call-ID"], "abc@host")
	t.equal(r.headers["cseq"], "7 OPTIONS", "header names are case-insensitive")
	t.match(r.headers.to, ";tag=")
	t.match(r.headers.via, "received=127%.0%.0%.1")
	t.same(r:header("X-Nope"), {})
end)

t.test("a raw request is routed as written", function()
	local res = t.request([[
		MESSAGE sip:bob@example.com SIP/2.0
		Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-raw-1
		From: <sip:alice@example.com>;tag=a1
		To: <sip:bob@example.com>
		Call-ID: raw-1@example.com
		CSeq: 1 MESSAGE
		X-Op: eval

		return KSR.pv.get("$rU"), KSR.pv.get("$fU"), KSR.pv.get("$ci")
	]], {src = "10.0.0.1:5060"})
	t.equal(res.code, 200)
	t.equal(res:header("X-Result"), "bob,alice,raw-1@example.com")
end)

t.test("KSR.x.exit ends the callback: nothing after it runs", function()
	local res = t.request{method = "MESSAGE", headers = {["X-Op"] = "exit"}}
	t.equal(#res.replies, 0)
	t.falsy(res.dropped)
end)

t.test("KSR.x.drop in the request route ends it and marks the message dropped", function()
	local res = t.request{method = "MESSAGE", headers = {["X-Op"] = "drop"}}
	t.equal(#res.replies, 0)
	t.truthy(res.dropped)
end)

t.test("a runtime error ends the handling without a reply and is logged with file:line", function()
	local res = t.request{method = "MESSAGE", headers = {["X-Op"] = "error"}}
	t.equal(#res.replies, 0)
	local logged = false
	for _, line in ipairs(t.logs()) do
		if line:find("kemi.lua:", 1, true) and line:find("attempt to index", 1, true) then
			logged = true
		end
	end
	t.truthy(logged, "the Lua error is in the log")
	t.equal(t.request{method = "OPTIONS"}.code, 200, "the engine keeps answering")
end)

t.test("every number is truthy in Lua: scripts compare return codes", function()
	t.equal(h.ksr("return KSR.mqueue.mq_size('nope') and 'truthy' or 'falsy'"), "truthy")
end)

t.test("t_reply needs a transaction; after t_newtran it replies through it", function()
	local got = h.ksr([[
		local before = KSR.tm.t_reply(180, "Ringing")
		local created = KSR.tm.t_newtran()
		return before, created, KSR.tm.t_newtran(), KSR.tm.t_check_trans()
	]])
	t.equal(got, "-1,1,-10,0") -- t_check_trans: 0, a retransmission for Kamailio (tm.c)
end)

t.test("t_relay goes to the virtual network: res.relayed shows the branch", function()
	local res = t.request{method = "MESSAGE", headers = {["X-Op"] = "eval"},
		body = "return KSR.tm.t_relay_to_proto_addr('udp', '10.0.0.7', 5090)"}
	t.equal(res:header("X-Result"), "1")
	t.equal(#res.relayed, 1)
	t.equal(res.relayed[1].dst, "udp:10.0.0.7:5090")
	t.equal(h.ksr("return KSR.tm.t_relay_to_proto_addr('sctp', '10.0.0.7', 5090)"), "-1", "an unsupported transport")
end)

t.test("other methods get 405", function()
	t.equal(t.request{method = "SUBSCRIBE"}.code, 405)
end)
