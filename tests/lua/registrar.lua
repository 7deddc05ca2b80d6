-- registrar_test.lua's routing: REGISTER is saved in "location", any
-- other request is routed to the contact lookup finds.
function ksr_request_route()
	if KSR.is_REGISTER() then
		local rc = KSR.registrar.save("location", 0)
		KSR.info("save rc=" .. rc .. "\n")
		return
	end
	local rc = KSR.registrar.lookup("location")
	if rc < 0 then
		KSR.sl.send_reply(404, "Not Found (" .. rc .. ")")
		return
	end
	KSR.tm.t_relay()
end
