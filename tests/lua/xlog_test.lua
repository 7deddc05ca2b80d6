-- KSR.xlog as a script uses it: log lines built from the request's
-- pseudo-variables (xlog.cfg sets a prefix evaluated per message).
local t = require("kemi.test")

t.config("xlog.cfg")

local function eval(expr, req)
	req = req or {method = "MESSAGE", uri = "sip:bob@example.com:5070"}
	req.headers = req.headers or {}
	req.headers["X-Eval"] = expr
	local res = t.request(req)
	t.equal(res.code, 200, expr)
	return res:header("X-Result")
end

local function logged(text)
	for _, line in ipairs(t.logs()) do
		if line:find(text, 1, true) then
			return true
		end
	end
	return false
end

t.test("the R-URI, a header and a variable in one line", function()
	local req = {method = "MESSAGE", uri = "sip:bob@example.com:5070", headers = {["X-Who"] = "carol"}}
	t.equal(eval("(function() KSR.pv.sets('$var(n)', 'v1') return KSR.xlog.xinfo('to $rU@$rd:$rp who=$hdr(X-Who) n=$var(n)\\n') end)()", req), "number:1")
	t.truthy(logged("[MESSAGE] to bob@example.com:5070 who=carol n=v1"), "the formatted line is logged with the prefix")
end)

t.test("missing values print <null>, $$ a dollar", function()
	t.equal(eval("KSR.xlog.xnotice('ua=$ua x=$hdr(X-None) cost=5$$')"), "number:1")
	t.truthy(logged("ua=<null> x=<null> cost=5$"))
end)

t.test("every level, and xlog with a level name", function()
	for _, f in ipairs({"xdbg", "xinfo", "xnotice", "xwarn", "xerr", "xcrit", "xalert"}) do
		t.equal(eval("KSR.xlog." .. f .. "('lvl " .. f .. " $rm')"), "number:1")
		t.truthy(logged("lvl " .. f .. " MESSAGE"), f)
	end
	t.equal(eval("KSR.xlog.xlog('L_WARN', 'named $rm')"), "number:1")
	t.truthy(logged("named MESSAGE"))
end)

t.test("a format that does not parse gives -1 and logs nothing of it", function()
	t.equal(eval("KSR.xlog.xerr('unknown $nosuchvar here')"), "number:-1")
	t.falsy(logged("unknown $nosuchvar here"))
	t.equal(eval("KSR.xlog.xinfo('trailing $')"), "number:-1")
end)
