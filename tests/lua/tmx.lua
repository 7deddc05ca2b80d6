-- The script of the tmx suite and of its side-by-side check against
-- Kamailio 5.6: a request with X-Relay: <uri> is relayed there with branch,
-- reply and failure routes armed; the failure route answers 500 with
-- X-Result listing what tmx says in each route. Other requests are
-- answered as eval.lua does (X-Eval).
local function b(v)
	return tostring(v)
end

function ksr_request_route()
	if KSR.is_ACK() then
		return
	end
	local relay = KSR.pv.get("$hdr(X-Relay)")
	if relay == nil then
		local expr = KSR.pv.get("$hdr(X-Eval)")
		if expr == nil then
			KSR.sl.send_reply(200, "OK")
			return
		end
		local v = (loadstring or load)("return " .. expr)()
		KSR.hdr.append_to_reply("X-Result: " .. type(v) .. ":" .. tostring(v) .. "\r\n")
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.pv.sets("$shv(rp)", "none")
	local r = "req:" .. b(KSR.tm.t_is_set("b")) .. b(KSR.tm.t_is_set("f")) .. b(KSR.tm.t_is_set("o"))
	KSR.tm.t_on_branch("ksr_tmx_branch")
	KSR.tm.t_on_failure("ksr_tmx_failure")
	KSR.tm.t_on_reply("ksr_tmx_onreply")
	r = r .. "," .. b(KSR.tm.t_is_set("b")) .. b(KSR.tm.t_is_set("f")) .. b(KSR.tm.t_is_set("o")) .. b(KSR.tm.t_is_set("x"))
	r = r .. "," .. b(KSR.pv.get("$T_branch_idx")) .. "," .. b(KSR.tmx.t_precheck_trans())
	r = r .. "," .. b(KSR.tmx.t_is_request_route()) .. b(KSR.tmx.t_is_branch_route()) .. b(KSR.tmx.t_is_failure_route()) .. b(KSR.tmx.t_is_reply_route())
	r = r .. "," .. b(KSR.pv.get("$T_req($ru)")) .. "," .. b(KSR.pv.get("$T_rpl($rs)"))
	KSR.pv.sets("$avp(r)", r)
	KSR.pv.sets("$du", relay)
	KSR.tm.t_relay()
end

function ksr_tmx_branch()
	local r = "br:" .. b(KSR.tmx.t_is_branch_route()) .. b(KSR.tmx.t_is_request_route()) .. b(KSR.tmx.t_is_failure_route()) ..
		"," .. b(KSR.pv.get("$T_branch_idx")) .. "," .. b(KSR.tmx.t_precheck_trans())
	KSR.hdr.append("X-Br: " .. r .. "\r\n")
end

function ksr_tmx_onreply()
	KSR.pv.sets("$shv(rp)", "rp:" .. b(KSR.tmx.t_is_reply_route()) .. b(KSR.tmx.t_is_failure_route()) ..
		"," .. b(KSR.pv.get("$T_branch_idx")) .. "," .. b(KSR.pv.get("$T_req($ru)")) .. "," .. b(KSR.pv.get("$T_req($hdr(X-Relay))")) ..
		"," .. b(KSR.pv.get("$T_req($rs)")) .. "," .. b(KSR.pv.get("$T_rpl($rs)")) .. "," .. b(KSR.tmx.t_precheck_trans()))
end

function ksr_tmx_failure()
	local r = "fl:" .. b(KSR.tmx.t_is_failure_route()) .. b(KSR.tmx.t_is_reply_route()) .. b(KSR.tmx.t_is_branch_route()) .. b(KSR.tmx.t_is_request_route()) ..
		"," .. b(KSR.pv.get("$T_branch_idx")) .. "," .. b(KSR.pv.get("$T_rpl($rs)")) .. "," .. b(KSR.pv.get("$T_rpl($rr)")) ..
		"," .. b(KSR.pv.get("$T_rpl($hdr(X-Br))")) .. "," .. b(KSR.pv.get("$T_req($ru)")) .. "," .. b(KSR.tm.t_is_set("f")) ..
		"," .. b(KSR.tmx.t_precheck_trans())
	KSR.hdr.append_to_reply("X-Result: " .. KSR.pv.get("$avp(r)") .. " | " .. KSR.pv.get("$shv(rp)") .. " | " .. r .. "\r\n")
	KSR.tm.t_reply(500, "Done")
end
