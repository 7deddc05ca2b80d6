-- The proxy of antiflood_test.lua. A banned source gets 403 without being
-- counted; otherwise pike counts the request, and the request that makes
-- pike see a flood bans its source for the table's autoexpire (300 s).
-- Everything else is answered 200.
function ksr_request_route()
	if KSR.pv.get("$sht(ipban=>$si)") ~= nil then
		KSR.sl.send_reply(403, "Banned")
		return
	end
	local verdict = KSR.pike.pike_check_req()
	if verdict < 0 then
		KSR.pv.seti("$sht(ipban=>$si)", 1)
		KSR.sl.send_reply(403, "Flooding")
		return
	end
	KSR.sl.send_reply(200, "OK")
end
