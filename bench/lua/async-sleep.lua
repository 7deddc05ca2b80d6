-- bench/lua/async-sleep.lua: kemi's KSR.async.sleep (bench/async-capacity.sh MODE=sleep;
-- Kamailio's KEMI has no sleep). MESSAGE (or INVITE): pause the handler for X-Delay
-- seconds (default 1), then 200 from the same handler, through the transaction the
-- pause created. The handler ends with `return`, not KSR.x.exit(): a handler that
-- returns normally gives its coroutine thread back for reuse (docs/async.md).
-- OPTIONS -> stateless 200 (readiness probe).

function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_MESSAGE() or KSR.is_INVITE() then
		local d = tonumber(KSR.hdr.get("X-Delay")) or 1
		if KSR.async.sleep(d) < 0 then
			KSR.sl.send_reply(500, "async.sleep failed")
			return
		end
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.sl.send_reply(404, "Not here")
end
