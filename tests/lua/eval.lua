-- The script of the kx, siputils and sanity suites (and of their
-- side-by-side checks against Kamailio 5.6): it evaluates the Lua
-- expression in the request's X-Eval header, adds X-Result: <type>:<value>
-- to the reply and answers 200, unless the expression replied already.
function ksr_request_route()
	local expr = KSR.pv.get("$hdr(X-Eval)")
	if expr == nil then
		KSR.sl.send_reply(200, "OK")
		return
	end
	local f = (loadstring or load)("return " .. expr)
	local v = f()
	if KSR.pv.get("$hdr(X-No-Reply)") ~= nil then
		return
	end
	KSR.hdr.append_to_reply("X-Result: " .. type(v) .. ":" .. tostring(v) .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end
