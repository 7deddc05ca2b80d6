-- KSR.corex and the core's branch flags, destination URI and is_myself
-- checks, as a proxy script uses them (corex.cfg).
local t = require("kemi.test")

t.config("corex.cfg")

local function eval(expr, req)
	req = req or {method = "INVITE", uri = "sip:bob@example.com"}
	req.headers = req.headers or {}
	req.headers["X-Eval"] = expr
	local res = t.request(req)
	t.equal(res.code, 200, expr)
	return res:header("X-Result")
end

t.test("a request without a user in the R-URI is not routed to a user", function()
	t.equal(eval("KSR.corex.has_ruri_user()"), "number:1")
	t.equal(eval("KSR.corex.has_ruri_user()", {method = "OPTIONS", uri = "sip:example.com"}), "number:-1")
end)

t.test("local domains: alias= and alias_subdomains", function()
	t.equal(eval("KSR.is_myself_ruri()", {method = "INVITE", uri = "sip:bob@proxy.example.org"}), "boolean:true")
	t.equal(eval("KSR.is_myself_ruri()", {method = "INVITE", uri = "sip:bob@pbx.example.net"}), "boolean:true")
	t.equal(eval("KSR.is_myself_ruri()", {method = "INVITE", uri = "sip:bob@example.net"}), "boolean:true")
	t.equal(eval("KSR.is_myself_ruri()", {method = "INVITE", uri = "sip:bob@badexample.net"}), "boolean:false")
	t.equal(eval("KSR.is_myself_furi()", {method = "INVITE", from = "<sip:alice@a.example.net>;tag=1"}), "boolean:true")
end)

t.test("branch flags mark a call for NAT handling", function()
	t.equal(eval("(function() KSR.setbflag(7) return KSR.isbflagset(7) end)()"), "boolean:true")
	t.equal(eval("KSR.isbflagset(7)"), "boolean:false", "flags are per message")
end)

t.test("the destination URI: set, checked, reset", function()
	t.equal(eval("(function() KSR.setdsturi('sip:10.0.0.5:5080') return KSR.isdsturiset() and KSR.pv.get('$du') end)()"), "string:sip:10.0.0.5:5080")
	t.equal(eval("(function() KSR.setdsturi('sip:10.0.0.5') KSR.resetdsturi() return KSR.isdsturiset() end)()"), "boolean:false")
end)

t.test("force_rport and set_reply_no_connect are true, the reply still comes", function()
	t.equal(eval("KSR.force_rport() and KSR.set_reply_no_connect()"), "boolean:true")
end)
