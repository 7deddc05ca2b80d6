-- KSR.kx as a script uses it: the getters over the request being routed
-- and the configuration's defines (kx.cfg). eval.lua answers each request
-- with X-Result: <type>:<value> of the expression in X-Eval.
local t = require("kemi.test")

t.config("kx.cfg")

local function kx(expr, req)
	req = req or {}
	req.headers = req.headers or {}
	req.headers["X-Eval"] = expr
	local res = t.request(req)
	t.equal(res.code, 200, expr)
	return res:header("X-Result")
end

t.describe("message getters", function()
	t.it("R-URI, its user and host", function()
		local req = {method = "MESSAGE", uri = "sip:bob@example.com;transport=udp"}
		t.equal(kx("KSR.kx.get_ruri()", req), "string:sip:bob@example.com;transport=udp")
		t.equal(kx("KSR.kx.get_ruser()", req), "string:bob")
		t.equal(kx("KSR.kx.get_rhost()", req), "string:example.com")
	end)
	t.it("a missing user: nil, <null> or empty", function()
		local req = {method = "MESSAGE", uri = "sip:example.com"}
		t.equal(kx("KSR.kx.get_ruser()", req), "nil:nil")
		t.equal(kx("KSR.kx.getw_ruser()", req), "string:<null>")
		t.equal(kx("KSR.kx.gete_ruser()", req), "string:")
	end)
	t.it("From and To", function()
		local req = {method = "MESSAGE", from = "<sip:alice@a.example.com>;tag=9", to = "<sip:bob@b.example.com>"}
		t.equal(kx("KSR.kx.get_furi()", req), "string:sip:alice@a.example.com")
		t.equal(kx("KSR.kx.get_fuser()", req), "string:alice")
		t.equal(kx("KSR.kx.get_thost()", req), "string:b.example.com")
	end)
	t.it("source and receiving socket: ports are numbers", function()
		local req = {method = "OPTIONS", src = "10.0.0.7:5099"}
		t.equal(kx("KSR.kx.get_srcip()", req), "string:10.0.0.7")
		t.equal(kx("KSR.kx.get_srcport()", req), "number:5099")
		t.equal(kx("KSR.kx.get_srcuri()", req), "string:sip:10.0.0.7:5099")
		t.equal(kx("KSR.kx.get_srcaddr_sock()", req), "string:udp:10.0.0.7:5099")
		t.equal(kx("KSR.kx.get_rcvip()", req), "string:127.0.0.1")
		t.equal(kx("KSR.kx.get_rcvport()", req), "number:5060")
		t.equal(kx("KSR.kx.get_rcvaddr_sock()", req), "string:udp:127.0.0.1:5060")
		t.equal(kx("KSR.kx.get_proto()", req), "string:udp")
		t.equal(kx("KSR.kx.get_protoid()", req), "number:1")
	end)
	t.it("method, Call-ID, User-Agent, body", function()
		local req = {method = "MESSAGE", call_id = "kx-1", body = "hello", headers = {["User-Agent"] = "ua/1"}}
		t.equal(kx("KSR.kx.get_method()", req), "string:MESSAGE")
		t.equal(kx("KSR.kx.get_callid()", req), "string:kx-1")
		t.equal(kx("KSR.kx.get_ua()", req), "string:ua/1")
		t.equal(kx("KSR.kx.get_body()", req), "string:hello")
		t.equal(kx("KSR.kx.get_bodylen()", req), "number:5")
		t.equal(kx("KSR.kx.gete_body()", {method = "OPTIONS"}), "string:")
		t.equal(kx("KSR.kx.get_status()", req), "number:-1")
		t.equal(kx("KSR.kx.get_msgtype()", req), "number:1")
	end)
	t.it("$du and the next hop", function()
		t.equal(kx("KSR.kx.get_duri()"), "nil:nil")
		t.equal(kx("(function() KSR.pv.sets('$du', 'sip:10.9.9.9:5080') return KSR.kx.get_nhuri() end)()"),
			"string:sip:10.9.9.9:5080")
	end)
end)

t.describe("defines", function()
	t.it("ifdef and ifndef read the configuration's #!define names", function()
		t.equal(kx("KSR.kx.ifdef('WITH_NAT')"), "boolean:true")
		t.equal(kx("KSR.kx.ifdef('WITH_AUTH')"), "boolean:false")
		t.equal(kx("KSR.kx.ifndef('WITH_AUTH')"), "boolean:true")
		t.equal(kx("KSR.kx.ifdef('MOD_kemix')"), "boolean:true")
		t.equal(kx("KSR.kx.ifdef('KAMAILIO_5_6')"), "boolean:true")
	end)
	t.it("get_def gives the value as written, get_defn a number", function()
		t.equal(kx("KSR.kx.get_def('NEXT_PORT')"), "string:5080")
		t.equal(kx("KSR.kx.get_defn('NEXT_PORT')"), "number:5080")
		t.equal(kx("KSR.kx.get_def('DBURL')"), 'string:"sqlite:///tmp/x.db"')
		t.equal(kx("KSR.kx.get_def('NOPE')"), "string:")
		t.equal(kx("KSR.kx.get_defn('NOPE')"), "number:0")
	end)
end)
