-- KSR.siputils as a routing script uses it (siputils.cfg, eval.lua: the
-- reply carries X-Result: <type>:<value> of the expression in X-Eval).
local t = require("kemi.test")

t.config("siputils.cfg")

local function eval(expr, req)
	req = req or {}
	req.headers = req.headers or {}
	req.headers["X-Eval"] = expr
	local res = t.request(req)
	t.equal(res.code, 200, expr)
	return res:header("X-Result")
end

t.describe("checks", function()
	t.it("has_totag tells an initial request from an in-dialog one", function()
		t.equal(eval("KSR.siputils.has_totag()", {method = "MESSAGE"}), "number:-1")
		t.equal(eval("KSR.siputils.has_totag()", {method = "MESSAGE", to = "<sip:bob@example.com>;tag=b1"}), "number:1")
	end)
	t.it("is_request, is_reply, is_first_hop", function()
		t.equal(eval("KSR.siputils.is_request()"), "number:1")
		t.equal(eval("KSR.siputils.is_reply()"), "number:-1")
		t.equal(eval("KSR.siputils.is_first_hop()"), "number:1")
	end)
	t.it("R-URI parameters", function()
		local req = {method = "MESSAGE", uri = "sip:bob@example.com;lr;transport=tcp;gr"}
		t.equal(eval("KSR.siputils.uri_param('lr')", req), "number:1")
		t.equal(eval("KSR.siputils.uri_param_value('transport', 'tcp')", req), "number:1")
		t.equal(eval("KSR.siputils.uri_param_any('TRANSPORT')", req), "number:1")
		t.equal(eval("KSR.siputils.uri_param('maddr')", req), "number:-1")
		t.equal(eval("KSR.siputils.is_gruu()", req), "number:2")
	end)
	t.it("add_uri_param and uri_param_rm rewrite the R-URI", function()
		t.equal(eval("KSR.siputils.add_uri_param('x=1') .. ' ' .. KSR.pv.get('$ru')", {uri = "sip:bob@example.com"}),
			"string:1 sip:bob@example.com;x=1")
		t.equal(eval("KSR.siputils.uri_param_rm('lr') .. ' ' .. KSR.pv.get('$ru')", {uri = "sip:bob@example.com;lr;x=1"}),
			"string:1 sip:bob@example.com;x=1")
	end)
	t.it("string checks and comparisons", function()
		t.equal(eval("KSR.siputils.is_tel_number('+4930123')"), "number:1")
		t.equal(eval("KSR.siputils.is_numeric('12a')"), "number:-2")
		t.equal(eval("KSR.siputils.is_alphanumex('a-b', '-')"), "number:1")
		t.equal(eval("KSR.siputils.cmp_uri('sip:a@B.example.com', 'sip:a@b.example.com')"), "number:1")
		t.equal(eval("KSR.siputils.cmp_aor('sip:a@b.example.com:5070', 'sip:a@b.example.com')"), "number:-1")
		t.equal(eval("KSR.siputils.cmp_hdr_name('Call-ID', 'i')"), "number:1")
	end)
end)

t.describe("contact encoding", function()
	t.it("encode_contact hides the contact behind a public address, decode_contact restores it", function()
		t.equal(eval("KSR.siputils.encode_contact('nat', '203.0.113.1') .. ' ' .. KSR.pv.get('$ct')",
			{method = "MESSAGE", headers = {Contact = "<sip:alice@10.0.0.5:5062>"}}),
			"string:1 <sip:nat*alice**10.0.0.5*5062*@203.0.113.1>")
		t.equal(eval("KSR.siputils.decode_contact() .. ' ' .. KSR.pv.get('$ru')",
			{method = "MESSAGE", uri = "sip:nat*alice**10.0.0.5*5062*@203.0.113.1"}),
			"string:1 sip:alice@10.0.0.5:5062")
	end)
	t.it("contact_param_encode and contact_param_decode_ruri round-trip a contact", function()
		local r = eval("KSR.siputils.contact_param_encode('alias', 'sip:203.0.113.1') .. ' ' .. KSR.pv.get('$ct')",
			{method = "MESSAGE", headers = {Contact = "<sip:alice@10.0.0.5:5062>"}})
		local b64 = r:match("alias=([%w_-]+)")
		t.equal(r, "string:1 <sip:203.0.113.1;alias=" .. b64 .. ">")
		t.equal(eval("KSR.siputils.contact_param_decode_ruri('alias') .. ' ' .. KSR.pv.get('$ru')",
			{method = "MESSAGE", uri = "sip:203.0.113.1;alias=" .. b64}),
			"string:1 sip:alice@10.0.0.5:5062")
	end)
end)

t.describe("options_reply", function()
	t.it("answers an OPTIONS to the server with the modparams' headers", function()
		local res = t.request{method = "OPTIONS", uri = "sip:127.0.0.1:5060",
			headers = {["X-Eval"] = "KSR.siputils.options_reply()", ["X-No-Reply"] = "1"}}
		t.equal(res.code, 200)
		t.equal(#res.replies, 1)
		t.equal(res:header("Accept"), "application/sdp")
		t.equal(res:header("Accept-Language"), "en")
		t.equal(res:header("Supported"), "100rel")
	end)
	t.it("refuses an OPTIONS for a user, and other methods", function()
		t.equal(eval("KSR.siputils.options_reply()", {method = "OPTIONS", uri = "sip:bob@127.0.0.1"}), "number:-1")
		t.equal(eval("KSR.siputils.options_reply()", {method = "MESSAGE", uri = "sip:127.0.0.1"}), "number:-1")
	end)
end)
