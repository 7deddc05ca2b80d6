-- tmx as a proxy script uses it: which route is running, whether the
-- failure route is armed, the branch index and the request and reply of the
-- transaction (tmx.cfg, tmx.lua). The next hop is played by the test.
local t = require("kemi.test")

t.config("tmx.cfg")

local function eval(expr)
	local res = t.request{method = "MESSAGE", headers = {["X-Eval"] = expr}}
	return res:header("X-Result")
end

t.test("in the request route", function()
	t.equal(eval("KSR.tmx.t_is_request_route()"), "number:1")
	t.equal(eval("KSR.tmx.t_is_failure_route()"), "number:-1")
	t.equal(eval("KSR.tmx.t_precheck_trans()"), "number:-1", "not a retransmission being handled")
	t.equal(eval("KSR.tm.t_is_set('failure_route')"), "number:-1")
	t.equal(eval("KSR.pv.get('$T_branch_idx')"), "number:0")
end)

t.test("branch, reply and failure routes of a relayed INVITE", function()
	local res = t.request{method = "INVITE", uri = "sip:bob@example.com", headers = {["X-Relay"] = "sip:127.0.0.1:5080"}}
	t.equal(#res.relayed, 1)
	local br = res.relayed[1]:header("X-Br")[1]
	t.equal(br, "br:1-1-1,0,-2", "the branch route: its type and index 0")
	res.relayed[1]:reply(486, "Busy Here", {headers = {["X-Br"] = br}})
	t.equal(res.code, 500)
	local want = "req:-1-1-1,111-1,0,-1,1-1-1-1,nil,nil" ..
		" | rp:1-1,0,sip:bob@example.com,sip:127.0.0.1:5080,nil,nil,-2" ..
		" | fl:1-1-1-1,1,486,Busy Here,br:1-1-1,0,-2,nil,-1,-2"
	t.equal(res:header("X-Result"), want)
end)

t.test("a timeout: $T_rpl is null for the local 408", function()
	local res = t.request{method = "INVITE", uri = "sip:bob@example.com", headers = {["X-Relay"] = "sip:127.0.0.1:5080"}}
	t.truthy(res.relayed[1]:timeout())
	t.equal(res.code, 500)
	t.truthy(res:header("X-Result"):find("| none | fl:1-1-1-1,1,nil,nil,nil,nil,-1,-2", 1, true), res:header("X-Result"))
end)
