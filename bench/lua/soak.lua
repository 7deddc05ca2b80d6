-- bench/lua/soak.lua: see bench/kamailio/soak.cfg.
local n = 0

function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_MESSAGE() then
		n = n + 1
		KSR.mqueue.mq_add("soak", KSR.pv.get("$ci"), KSR.pv.get("$fU") or "")
		KSR.sl.send_reply(200, "Accepted")
		if n % 50 == 0 then
			error("soak: deliberate error " .. n)
		end
		return
	end
	KSR.sl.send_reply(404, "Not here")
end

function ksr_drain(evname)
	while KSR.mqueue.mq_fetch("soak") == 1 do end
end
