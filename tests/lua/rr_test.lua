-- rr's parameters as a NAT-aware proxy uses them: mark the dialog with
-- add_rr_param when record-routing, find the mark again in the Route of
-- in-dialog requests and tell their direction (rr.cfg, rr.lua).
local t = require("kemi.test")

t.config("rr.cfg")

local function eval(pre, expr, headers)
	headers = headers or {}
	headers["X-Pre"] = pre
	headers["X-Eval"] = expr
	local res = t.request{method = "BYE", from = "<sip:alice@example.com>;tag=a1", headers = headers}
	t.equal(res.code, 200)
	return res:header("X-Result")
end

t.test("the initial request: record-routed with a nat=yes mark", function()
	local res = t.request{method = "INVITE", from = "<sip:alice@example.com>;tag=a1",
		headers = {["X-Pre"] = "KSR.rr.record_route() KSR.rr.add_rr_param(';nat=yes')", ["X-Fwd"] = "sip:127.0.0.1:5080"}}
	t.equal(#res.relayed, 1)
	t.equal(res.relayed[1]:header("Record-Route")[1], "<sip:127.0.0.1:5060;lr;ftag=a1;nat=yes>")
end)

t.test("an advertised address for the Record-Route", function()
	local res = t.request{method = "INVITE", from = "<sip:alice@example.com>;tag=a1",
		headers = {["X-Pre"] = "KSR.rr.record_route_advertised_address('sip.example.com:5999')", ["X-Fwd"] = "sip:127.0.0.1:5080"}}
	t.equal(res.relayed[1]:header("Record-Route")[1], "<sip:sip.example.com:5999;ftag=a1;lr>")
end)

t.test("in-dialog requests find the mark and their direction", function()
	local caller = {Route = "<sip:proxy.test;lr;ftag=a1;nat=yes>"}
	t.equal(eval("KSR.rr.loose_route()", "KSR.rr.check_route_param('nat=yes')", caller), "number:1")
	t.equal(eval("KSR.rr.loose_route()", "KSR.rr.is_direction('downstream')", caller), "number:1")
	local callee = {Route = "<sip:proxy.test;lr;ftag=b2>"}
	t.equal(eval("KSR.rr.loose_route()", "KSR.rr.is_direction('upstream')", callee), "number:1")
	t.equal(eval("KSR.rr.loose_route()", "KSR.rr.check_route_param('nat=yes')", callee), "number:-1")
end)
