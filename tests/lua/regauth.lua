-- regauth_test.lua's routing, after Kamailio's basic KEMI example:
-- REGISTERs and INVITEs from local users are authenticated, REGISTERs
-- saved, everything else routed to the contact lookup finds.
function ksr_request_route()
	local rc = KSR.auth_db.auth_check(KSR.pv.get("$fd"), "subscriber", 1)
	if rc < 0 then
		KSR.hdr.append_to_reply("X-Auth-Check: " .. rc .. "\r\n")
		KSR.auth.auth_challenge(KSR.pv.get("$fd"), 0)
		return
	end
	KSR.auth.consume_credentials()
	if KSR.is_REGISTER() then
		KSR.registrar.save("location", 0)
		return
	end
	rc = KSR.registrar.lookup("location")
	if rc < 0 then
		KSR.sl.send_reply(404, "Not Found")
		return
	end
	KSR.tm.t_relay()
end
