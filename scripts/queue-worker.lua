-- scripts/queue-worker.lua: see queue-worker.cfg.

-- Every received message passes here first ("core:pre-routing").
function ksr_pre_routing(evname)
	if KSR.is_REGISTER() then
		KSR.pv.sets("$var(xdata)", KSR.pv.get("$si") or "")
		if KSR.sworker.task("reg") > 0 then
			KSR.x.drop() -- the "reg" group routes it; only drop stops this worker
		end
		-- -1: the group is full; kemi keeps the message here (Kamailio would lose it)
	end
end

function ksr_request_route()
	if KSR.is_REGISTER() then
		local from = KSR.pv.get("$var(xdata)") or "here"
		KSR.hdr.append_to_reply("X-Handled-By: " .. (KSR.sworker.active() > 0 and "reg group" or "receiver") .. "\r\n")
		KSR.sl.send_reply(200, "OK (from " .. from .. ")")
		return
	end
	if KSR.is_MESSAGE() then
		if KSR.mqueue.mq_add("jobs", KSR.pv.get("$ci"), KSR.pv.get("$rb") or "") == 1 then
			KSR.sl.send_reply(202, "Queued")
		else
			KSR.sl.send_reply(500, "Queue unavailable")
		end
		return
	end
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.sl.send_reply(405, "Method Not Allowed")
end

-- Every 100 ms on the timer's own goroutine and VM; evname is "rtimer".
function ksr_drain(evname)
	local n = 0
	while n < 500 and KSR.mqueue.mq_fetch("jobs") == 1 do
		n = n + 1
		KSR.dbg("job " .. KSR.mqueue.mqk_get("jobs") .. ": " .. (KSR.mqueue.mqv_get("jobs") or "") .. "\n")
	end
	if n > 0 then
		KSR.info("drained " .. n .. " jobs, " .. KSR.mqueue.mq_size("jobs") .. " left\n")
	end
end
