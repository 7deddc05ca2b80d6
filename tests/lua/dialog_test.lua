-- res:in_dialog builds requests inside the dialog a reply established: the
-- R-URI from the reply's Contact, the Route set from its Record-Route, the
-- To tag. scripts/proxy.lua relays them with loose_route.
local t = require("kemi.test")
t.config("../../scripts/proxy.cfg")

t.test("ACK and BYE follow the route set of the 200 OK", function()
	local res = t.request{method = "INVITE", uri = "sip:bob@127.0.0.1:5060", cseq = 1}
	local rr = res.relayed[1]:header("Record-Route")
	t.truthy(rr, "the proxy record-routes the INVITE")
	res.relayed[1]:reply(200, "OK", {headers = {Contact = "<sip:bob@127.0.0.1:5080>", ["Record-Route"] = rr}})
	t.equal(res.code, 200)

	local ack = res:in_dialog("ACK")
	t.equal(ack.relayed[1].method, "ACK")
	t.equal(ack.relayed[1].ruri, "sip:bob@127.0.0.1:5080")
	t.match(ack.relayed[1].raw, "CSeq: 1 ACK")

	local bye = res:in_dialog("BYE")
	t.equal(bye.relayed[1].method, "BYE")
	t.match(bye.relayed[1].raw, "CSeq: 2 BYE")
	t.equal(bye.relayed[1].headers["To"], res.reply.headers["To"])
	bye.relayed[1]:reply(200)
	t.equal(bye.code, 200)
end)

t.test("a re-INVITE carries a body and the next CSeq", function()
	local res = t.request{method = "INVITE", uri = "sip:bob@127.0.0.1:5060"}
	local rr = res.relayed[1]:header("Record-Route")
	res.relayed[1]:reply(200, "OK", {headers = {Contact = "<sip:bob@127.0.0.1:5080>", ["Record-Route"] = rr}})
	res:in_dialog("ACK")
	local re = res:in_dialog("INVITE", {body = "v=0\r\n"})
	t.equal(re.relayed[1].method, "INVITE")
	t.equal(re.relayed[1].body, "v=0\r\n")
	t.match(re.relayed[1].raw, "CSeq: 2 INVITE")
	re.relayed[1]:reply(200, "OK", {headers = {Contact = "<sip:bob@127.0.0.1:5080>"}})
	local bye = re:in_dialog("BYE")
	t.match(bye.relayed[1].raw, "CSeq: 3 BYE")
end)

t.test("no dialog before a final reply", function()
	local res = t.request{method = "INVITE", uri = "sip:bob@127.0.0.1:5060"}
	t.error(function() res:in_dialog("BYE") end, "the last reply is provisional (100)")
end)
