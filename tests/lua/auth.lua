-- auth.lua: challenges a REGISTER without credentials and echoes the
-- Authorization it gets back (kemi has no auth module to check it yet:
-- auth_test.lua checks the digest itself).
function ksr_request_route()
	if not KSR.is_REGISTER() then
		KSR.sl.send_reply(405, "Method Not Allowed")
		return
	end
	local auth = KSR.hdr.get("Authorization")
	if auth == nil then
		KSR.hdr.append_to_reply('WWW-Authenticate: Digest realm="kemi.test", nonce="n0nce-1", qop="auth", algorithm=MD5\r\n')
		KSR.sl.send_reply(401, "Unauthorized")
		return
	end
	KSR.hdr.append_to_reply("X-Auth: " .. auth .. "\r\n")
	KSR.hdr.append_to_reply("X-CSeq: " .. KSR.pv.get("$cs") .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end
