-- bench/lua/htable.lua: KSR.htable hot-loop micro-benchmark (bench/htable-loop.sh).
-- OPTIONS -> 200 (readiness probe). MESSAGE -> time N sht_inc, N sht_get and N
-- KSR.pv.get("$sht(bench=>g)") plus an empty loop, log one "htbench ..." line,
-- reply 200. os.clock() is process CPU time in Kamailio (one process per
-- worker); in kemi it is the CPU time of the whole process.

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

	-- sanity check outside the timed loops
	KSR.htable.sht_seti("bench", "g", 7)
	local before = KSR.htable.sht_inc("bench", "k")
	if before < 1 or KSR.htable.sht_get("bench", "g") ~= 7 then
		KSR.err("htbench error inc=" .. tostring(before) .. "\n")
		KSR.sl.send_reply(500, "htable broken")
		return
	end

	local clock = os.clock
	local H = KSR.htable
	local t0, dt_empty, dt_inc, dt_get, dt_pvget

	t0 = clock()
	for _ = 1, N do
	end
	dt_empty = clock() - t0

	t0 = clock()
	for _ = 1, N do
		H.sht_inc("bench", "k")
	end
	dt_inc = clock() - t0

	t0 = clock()
	for _ = 1, N do
		H.sht_get("bench", "g")
	end
	dt_get = clock() - t0

	t0 = clock()
	for _ = 1, N do
		KSR.pv.get("$sht(bench=>g)")
	end
	dt_pvget = clock() - t0

	local after = H.sht_get("bench", "k")
	KSR.info("htbench inc_ns=" .. ns_per(dt_inc)
		.. " get_ns=" .. ns_per(dt_get)
		.. " pv_get_ns=" .. ns_per(dt_pvget)
		.. " empty_loop_ns=" .. ns_per(dt_empty)
		.. " n=" .. N .. " counted=" .. tostring(after - before) .. "\n")
	KSR.sl.send_reply(200, "OK")
end
