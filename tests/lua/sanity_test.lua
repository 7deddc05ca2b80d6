-- KSR.sanity as Kamailio's basic KEMI script uses it (sanity.cfg,
-- eval.lua): a failed check replies by itself and returns -1; the script
-- goes on (it decides to exit), and eval.lua's 200 with X-Result follows.
local t = require("kemi.test")

t.config("sanity.cfg")

local function check(expr, headers)
	headers = headers or {}
	headers["X-Eval"] = expr
	return t.request{method = "MESSAGE", headers = headers}
end

t.it("a sane request passes the basic script's checks", function()
	local res = check("KSR.sanity.sanity_check(1511, 7)")
	t.equal(#res.replies, 1)
	t.equal(res:header("X-Result"), "number:1")
end)

t.it("an unknown Proxy-Require extension gets 420 with Unsupported", function()
	local res = check("KSR.sanity.sanity_check_defaults()", {["Proxy-Require"] = "foo, 100rel"})
	t.equal(#res.replies, 2)
	t.equal(res.replies[1].code, 420)
	t.equal(res.replies[1].reason, "Bad Proxy Require Extension")
	t.equal(res.replies[1].headers["Unsupported"], "100rel")
	t.equal(res:header("X-Result"), "number:-1")
end)

t.it("a bad Expires value gets 400", function()
	local res = check("KSR.sanity.sanity_check_defaults()", {Expires = "tomorrow"})
	t.equal(res.replies[1].code, 400)
	t.equal(res.replies[1].reason, "Expires value is illegal")
	t.equal(res:header("X-Result"), "number:-1")
end)

t.it("digest credentials without a response get 400", function()
	local res = check("KSR.sanity.sanity_check_defaults()",
		{Authorization = 'Digest username="a", realm="r", nonce="n", uri="sip:x"'})
	t.equal(res.replies[1].code, 400)
	t.equal(res.replies[1].reason, "Bad Auth Credentials")
end)

t.it("sanity_reply sends nothing without noreply", function()
	local res = check("KSR.sanity.sanity_reply()")
	t.equal(#res.replies, 1)
	t.equal(res:header("X-Result"), "number:1")
end)
