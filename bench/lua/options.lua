-- bench/lua/options.lua: OPTIONS responder for the throughput benchmark
-- (bench/sipp-options.sh). Loaded by bench/kamailio/options.cfg on both engines.
function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	KSR.sl.send_reply(404, "Not here")
end
