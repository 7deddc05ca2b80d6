-- reload (reference §5.5): a new script version is compiled, proven and
-- published at once, every worker switches before its next event; a script
-- that fails is refused with file:line and the running one stays. kemi
-- differs from Kamailio on purpose in one point: each worker starts the new
-- version in a fresh Lua state, so globals do not survive a reload.
local t = require("kemi.test")

-- one receiver worker, so that its Lua globals are observable
t.config("kemi.cfg", {"ONE_CHILD"})

local counting = [[
count = 0

function ksr_pre_routing(evname)
end

function ksr_request_route()
	count = count + 1
	KSR.hdr.append_to_reply("X-Count: " .. count .. "\r\n")
	KSR.sl.send_reply(200, "Counting")
end
]]

-- back to the script on disk after each test
t.after_each(function()
	t.truthy(t.reload("kemi.lua"))
end)

t.test("t.reload(source) replaces the script: the next request runs the new code", function()
	t.equal(t.request{method = "OPTIONS"}.reason, "OK")
	t.equal(t.reload(counting), true)
	local res = t.request{method = "OPTIONS"}
	t.equal(res.reason, "Counting")
	t.equal(res:header("X-Count"), "1")
	t.equal(t.request{method = "OPTIONS"}:header("X-Count"), "2", "globals live on between events")
end)

t.test("globals do not survive a reload (a fresh Lua state per worker)", function()
	t.truthy(t.reload(counting))
	t.equal(t.request{method = "OPTIONS"}:header("X-Count"), "1")
	t.equal(t.request{method = "OPTIONS"}:header("X-Count"), "2")
	t.truthy(t.reload(counting))
	t.equal(t.request{method = "OPTIONS"}:header("X-Count"), "1")
end)

t.test("a script that does not compile is refused with file:line; the old one keeps running", function()
	local ok, err = t.reload("function ksr_request_route()\n\tKSR.sl.send_reply(200, \"Broken\"\nend\n")
	t.equal(ok, false)
	t.match(err, "kemi%.lua:3:")
	t.equal(t.request{method = "OPTIONS"}.reason, "OK")
end)

t.test("a script lacking a function the configuration names is refused", function()
	local ok, err = t.reload("function ksr_request_route()\n\tKSR.sl.send_reply(200, \"No Pre-Routing\")\nend\n")
	t.falsy(ok)
	t.match(err, "ksr_pre_routing")
	t.equal(t.request{method = "OPTIONS"}.reason, "OK")
end)

t.test("a script whose top level fails is refused", function()
	local ok, err = t.reload("error(\"boom at load\")\n")
	t.falsy(ok)
	t.match(err, "boom at load")
	t.equal(t.request{method = "OPTIONS"}.reason, "OK")
end)

t.test("the app_lua.reload RPC reloads too", function()
	t.truthy(t.reload(counting))
	t.equal(t.request{method = "OPTIONS"}:header("X-Count"), "1")
	local res, fault = t.rpc("app_lua.reload")
	t.equal(fault, nil)
	t.equal(t.request{method = "OPTIONS"}:header("X-Count"), "1", "a fresh state again")
end)
