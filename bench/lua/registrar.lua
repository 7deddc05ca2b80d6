-- bench/lua/registrar.lua: registrar lookup and auth_db auth_check hot loops
-- (bench/registrar-loop.sh, bench/sipp/registrar-loop.xml).
-- OPTIONS -> 200 (readiness probe). REGISTER -> save("location") (no auth).
-- MESSAGE without credentials -> 407 challenge. MESSAGE with credentials ->
-- time N auth_check, N lookup("location") (each after restoring the R-URI,
-- which lookup rewrites), N of the R-URI restore alone and an empty loop, log
-- one "regbench ..." line, reply 200. os.clock() is process CPU time in
-- Kamailio (one process per worker); in kemi it is the whole process's.

local N = 20000
local REALM = "bench.example"

local function ns_per(dt)
	return string.format("%.1f", dt * 1e9 / N)
end

function ksr_request_route()
	if KSR.is_OPTIONS() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_REGISTER() then
		if KSR.registrar.save("location", 0) < 0 then
			KSR.sl.send_reply(500, "save failed")
		end
		return
	end
	if not KSR.is_MESSAGE() then
		KSR.sl.send_reply(404, "Not here")
		return
	end
	if KSR.hdr.is_present("Proxy-Authorization") < 0 then
		KSR.auth.auth_challenge(REALM, 1)
		return
	end

	-- sanity checks outside the timed loops: the credentials are good and
	-- the R-URI's user has a contact
	local ruri = KSR.pv.get("$ru")
	local auth_rc = KSR.auth_db.auth_check(REALM, "subscriber", 0)
	local lookup_rc = KSR.registrar.lookup("location")
	if auth_rc ~= 1 or lookup_rc ~= 1 then
		KSR.err("regbench error auth_rc=" .. tostring(auth_rc) .. " lookup_rc=" .. tostring(lookup_rc) .. "\n")
		KSR.sl.send_reply(500, "auth or lookup broken")
		return
	end

	local clock = os.clock
	local A, R, PV = KSR.auth_db, KSR.registrar, KSR.pv
	local t0, dt_empty, dt_auth, dt_lookup, dt_reset
	local found = 0

	t0 = clock()
	for _ = 1, N do
	end
	dt_empty = clock() - t0

	t0 = clock()
	for _ = 1, N do
		A.auth_check(REALM, "subscriber", 0)
	end
	dt_auth = clock() - t0

	t0 = clock()
	for _ = 1, N do
		PV.sets("$ru", ruri)
	end
	dt_reset = clock() - t0

	t0 = clock()
	for _ = 1, N do
		PV.sets("$ru", ruri)
		if R.lookup("location") == 1 then
			found = found + 1
		end
	end
	dt_lookup = clock() - t0 - dt_reset

	KSR.info("regbench auth_check_ns=" .. ns_per(dt_auth)
		.. " lookup_ns=" .. ns_per(dt_lookup)
		.. " ru_set_ns=" .. ns_per(dt_reset)
		.. " empty_loop_ns=" .. ns_per(dt_empty)
		.. " n=" .. N .. " found=" .. tostring(found) .. "\n")
	KSR.sl.send_reply(200, "OK")
end
