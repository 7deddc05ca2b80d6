-- kemi's embedded default script (see default.cfg).

-- Every SIP request comes here.
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.mqueue.mq_add("pings", KSR.pv.get("$si") or "?", KSR.pv.get("$ua") or "")
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_ACK() then
		return
	end
	KSR.sl.send_reply(501, "Not Implemented")
end

-- rtimer "report" calls this every 10 seconds with evname "rtimer".
function ksr_report(evname)
	local n, last = 0, nil
	while KSR.mqueue.mq_fetch("pings") == 1 do
		n = n + 1
		last = KSR.mqueue.mqk_get("pings")
	end
	if n > 0 then
		KSR.info("OPTIONS pings in the last 10s: " .. n .. " (last from " .. last .. ")\n")
	end
end
