-- bench/lua/async.lua: async suspend/resume capacity (bench/async-capacity.sh).
-- MESSAGE (or INVITE) -> KSR.async.route("ksr_resume", d) with d from the
-- "X-Delay" header (seconds, default 1), then KSR.x.exit(); ksr_resume replies
-- 200 through tm. OPTIONS -> stateless 200 (readiness probe).

function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_MESSAGE() or KSR.is_INVITE() then
		local d = tonumber(KSR.hdr.get("X-Delay")) or 1
		if KSR.async.route("ksr_resume", d) < 0 then
			KSR.sl.send_reply(500, "async.route failed")
		end
		KSR.x.exit()
	end
	KSR.sl.send_reply(404, "Not here")
end

function ksr_resume()
	KSR.tm.t_reply(200, "OK")
end
