-- bench/lua/relay.lua: a stateful proxy (bench/relay.sh, bench/relay-dialog.sh).
-- The same script runs in Kamailio 5.6 (tm, sl, rr, pv, app_lua) and in kemi.
--
-- * OPTIONS to the proxy itself -> stateless 200 (readiness probe).
-- * In-dialog requests (To tag): follow the Route headers (loose_route) and relay;
--   an ACK without Route is relayed only when it matches a transaction (tm absorbs it).
-- * Initial requests: INVITE is record-routed; everything is relayed statefully with
--   t_relay to the R-URI (the UAC scenarios put the UAS address in the R-URI); a failure
--   route logs the status, replies from the UAS pass through ksr_reply_route.

function ksr_request_route()
	if KSR.is_OPTIONS() and KSR.is_myself_ruri() then
		KSR.sl.send_reply(200, "OK")
		return
	end
	if KSR.is_CANCEL() then
		if KSR.tm.t_check_trans() > 0 then
			KSR.tm.t_relay()
		end
		return
	end
	if KSR.pv.get("$tt") ~= nil then
		if KSR.rr.loose_route() > 0 then
			if KSR.tm.t_relay() < 0 then
				KSR.sl.sl_reply_error()
			end
			return
		end
		if KSR.is_ACK() then
			if KSR.tm.t_check_trans() > 0 then
				KSR.tm.t_relay()
			end
			return
		end
		KSR.sl.send_reply(404, "Not here")
		return
	end
	if KSR.is_INVITE() then
		KSR.rr.record_route()
	end
	KSR.tm.t_on_failure("ksr_failure")
	if KSR.tm.t_relay() < 0 then
		KSR.sl.sl_reply_error()
	end
end

function ksr_failure()
	if KSR.tm.t_is_canceled() > 0 then
		return
	end
	KSR.notice("relay failure status=" .. KSR.tm.t_get_status_code() .. "\n")
end

function ksr_reply_route()
end
