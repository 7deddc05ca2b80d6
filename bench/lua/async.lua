-- bench/lua/async.lua: async suspend/resume capacity (bench/async-capacity.sh).
-- MESSAGE (or INVITE), delay d from the "X-Delay" header (seconds, default 1), mode
-- from "X-Mode" (default route):
--   route:  KSR.async.route("ksr_resume", d), then KSR.x.exit(); ksr_resume replies
--           200 through tm.
--   ms:     KSR.async.ms_route("ksr_resume", d * 1000) (Kamailio: needs ms_timer and
--           async_workers, see kamailio/async.cfg BENCH_MS).
-- MODE=sleep uses lua/async-sleep.lua instead: a script that names KSR.async.sleep
-- runs its request handlers as coroutines in kemi, which this one must not measure.
-- OPTIONS -> stateless 200 (readiness probe).

function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_MESSAGE() or KSR.is_INVITE() then
		local d = tonumber(KSR.hdr.get("X-Delay")) or 1
		local rc
		if KSR.hdr.get("X-Mode") == "ms" then
			rc = KSR.async.ms_route("ksr_resume", d * 1000)
		else
			rc = KSR.async.route("ksr_resume", d)
		end
		if rc < 0 then
			KSR.sl.send_reply(500, "async.route failed")
		end
		KSR.x.exit()
	end
	KSR.sl.send_reply(404, "Not here")
end

function ksr_resume()
	KSR.tm.t_reply(200, "OK")
end
