-- bench/lua/mqueue.lua: KSR.mqueue hot-loop micro-benchmark (bench/mqueue-loop.sh).
-- OPTIONS -> 200 (readiness probe). MESSAGE -> time N mq_add+mq_fetch pairs plus
-- baselines, log one "mqbench ..." line, reply 200.
-- os.clock() is process CPU time in Kamailio (one process per worker, single
-- threaded); on a Go engine it may be CPU time of the whole process or wall time.

local N = 100000

local function ns_per(dt)
	return string.format("%.1f", dt * 1e9 / N)
end

function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if not KSR.is_MESSAGE() then
		KSR.sl.send_reply(404, "Not here")
		return
	end

	-- sanity check outside the timed loops: one pair must work
	local add_rc = KSR.mqueue.mq_add("bench", "k", "v")
	local fetch_rc = KSR.mqueue.mq_fetch("bench")
	if add_rc ~= 1 or fetch_rc ~= 1 then
		KSR.err("mqbench error add_rc=" .. tostring(add_rc) .. " fetch_rc=" .. tostring(fetch_rc) .. "\n")
		KSR.sl.send_reply(500, "mqueue broken")
		return
	end

	local clock = os.clock
	local t0, dt_empty, dt_ismsg, dt_pvget, dt_pair

	t0 = clock()
	for _ = 1, N do
	end
	dt_empty = clock() - t0

	t0 = clock()
	for _ = 1, N do
		KSR.is_MESSAGE()
	end
	dt_ismsg = clock() - t0

	t0 = clock()
	for _ = 1, N do
		KSR.pv.get("$ci")
	end
	dt_pvget = clock() - t0

	t0 = clock()
	for _ = 1, N do
		KSR.mqueue.mq_add("bench", "k", "v")
		KSR.mqueue.mq_fetch("bench")
	end
	dt_pair = clock() - t0

	-- the queue must be empty again (every add was fetched)
	local left = KSR.mqueue.mq_size("bench")

	KSR.info("mqbench ns_per_pair=" .. ns_per(dt_pair)
		.. " is_message_ns=" .. ns_per(dt_ismsg)
		.. " pv_get_ns=" .. ns_per(dt_pvget)
		.. " empty_loop_ns=" .. ns_per(dt_empty)
		.. " n=" .. N .. " left=" .. tostring(left) .. "\n")
	KSR.sl.send_reply(200, "OK")
end
