-- scripts/proxy.lua: stateful proxy with serial forking and an async delay.
-- Runs on kemi and on Kamailio 5.6 (KEMI) alike; see proxy.cfg.

local NEXT_HOP = "sip:127.0.0.1:5080"
local BACKUP_HOP = "sip:127.0.0.1:5082"

function ksr_request_route()
	-- Max-Forwards is the script's job, as in Kamailio's configurations:
	-- t_relay leaves it as it is
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.send_reply(483, "Too Many Hops")
		return
	end
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_CANCEL() then
		if KSR.tm.t_check_trans() > 0 then KSR.tm.t_relay() end
		return
	end
	-- in-dialog requests follow their route set
	if KSR.pv.get("$tt") ~= nil then
		if KSR.rr.loose_route() > 0 then
			if KSR.tm.t_relay() < 0 then KSR.sl.sl_reply_error() end
			return
		end
		if KSR.is_ACK() then
			if KSR.tm.t_check_trans() > 0 then KSR.tm.t_relay() end
			return
		end
		KSR.sl.send_reply(404, "Not here")
		return
	end
	if KSR.is_INVITE() then KSR.rr.record_route() end

	-- "X-Delay-Ms: 250" holds a MESSAGE that long without holding a worker
	local delay = tonumber(KSR.hdr.get("X-Delay-Ms") or "")
	if KSR.is_MESSAGE() and delay and delay > 0 and delay < 30000 then
		if KSR.async.ms_route("ksr_delayed", delay) >= 0 then
			KSR.x.exit() -- the request continues in ksr_delayed
		end
	end
	relay(NEXT_HOP)
end

-- resumed by KSR.async.ms_route on an async worker (no arguments)
function ksr_delayed()
	relay(NEXT_HOP)
end

function relay(dst)
	KSR.pv.sets("$du", dst)
	KSR.tm.t_on_failure("ksr_failure")
	if KSR.tm.t_relay() < 0 then
		KSR.sl.sl_reply_error()
	end
end

-- a negative reply or a timeout from the first hop: try the backup once
function ksr_failure()
	if KSR.tm.t_is_canceled() > 0 then return end
	if KSR.pv.get("$du") == BACKUP_HOP then return end
	if KSR.tm.t_check_status("408|5[0-9][0-9]") > 0 then
		KSR.info("first hop failed (" .. KSR.tm.t_get_status_code() .. "), trying the backup\n")
		KSR.pv.sets("$du", BACKUP_HOP)
		KSR.tm.t_relay()
	end
end
