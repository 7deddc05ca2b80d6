-- The proxy of antiflood_test.lua. A banned source gets 403 without being
-- counted; otherwise pike counts the request, and the request that makes
-- pike see a flood bans its source for the table's autoexpire (300 s).
-- Everything else is answered 200. The ban is looked up with $sht, or,
-- when the request has "X-Ban-Check: match", with sht_match_name (which,
-- as in Kamailio, still sees an expired item until the htable timer has
-- swept it).
local function banned()
	if KSR.hdr.get("X-Ban-Check") == "match" then
		return KSR.htable.sht_match_name("ipban", "eq", KSR.pv.get("$si")) > 0
	end
	return KSR.pv.get("$sht(ipban=>$si)") ~= nil
end

function ksr_request_route()
	if banned() then
		KSR.sl.send_reply(403, "Banned")
		return
	end
	if KSR.pike.pike_check_req() < 0 then
		KSR.htable.sht_seti("ipban", KSR.pv.get("$si"), 1)
		KSR.sl.send_reply(403, "Flooding")
		return
	end
	KSR.sl.send_reply(200, "OK")
end
