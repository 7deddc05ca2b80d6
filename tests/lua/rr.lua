-- The script of the rr suite and of its side-by-side check against
-- Kamailio 5.6: X-Pre holds Lua statements run first (loose_route,
-- record_route, add_rr_param...); with X-Fwd: <uri> the request is then
-- forwarded statelessly there (the next hop reports the Record-Route it
-- got), else the reply carries X-Result: <type>:<value> of X-Eval.
function ksr_request_route()
	if KSR.is_ACK() then
		return
	end
	local pre = KSR.pv.get("$hdr(X-Pre)")
	if pre ~= nil then
		(loadstring or load)(pre)()
	end
	local fwd = KSR.pv.get("$hdr(X-Fwd)")
	if fwd ~= nil then
		KSR.forward_uri(fwd)
		return
	end
	local expr = KSR.pv.get("$hdr(X-Eval)") or "nil"
	local v = (loadstring or load)("return " .. expr)()
	KSR.hdr.append_to_reply("X-Result: " .. type(v) .. ":" .. tostring(v) .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end
