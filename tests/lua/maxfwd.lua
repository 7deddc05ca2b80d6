-- The proxy of maxfwd_test.lua: Max-Forwards checked and decremented by
-- the script, then relayed to 127.0.0.1:5080.
function ksr_request_route()
	if KSR.maxfwd.process_maxfwd(10) < 0 then
		KSR.sl.send_reply(483, "Too Many Hops")
		return
	end
	KSR.pv.sets("$du", "sip:127.0.0.1:5080")
	KSR.tm.t_relay()
end
