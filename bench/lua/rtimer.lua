-- bench/lua/rtimer.lua: rtimer jitter probe (bench/rtimer-jitter.sh).
-- Each timer route logs "jit <tag> <sec.usec>" from $TV(Sn); bench/cmd/jitter
-- parses those lines wherever they appear in the engine's log line.
-- ksr_request_route answers OPTIONS so the same instance can be loaded by sipp.

function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.sl.send_reply(404, "Not here")
end

function rt_t100(evname)
	KSR.info("jit t100 " .. KSR.pv.get("$TV(Sn)") .. "\n")
end

function rt_t10(evname)
	KSR.info("jit t10 " .. KSR.pv.get("$TV(Sn)") .. "\n")
end
