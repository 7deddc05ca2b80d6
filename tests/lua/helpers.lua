-- helpers.lua: shared by the suites (require("helpers")); not a test file.
local t = require("kemi.test")

local M = {}

-- ksr runs src (Lua) in one of the engine's worker VMs, as the routing
-- script's eval operation, and returns its results as one comma-separated
-- string ("nil" for nil).
function M.ksr(src)
	local res = t.request{method = "MESSAGE", headers = {["X-Op"] = "eval"}, body = src}
	if res.code ~= 200 then
		t.fail("eval failed: " .. tostring(res.code) .. " " .. tostring(res:header("X-Error")))
	end
	return res:header("X-Result")
end

-- drain empties the queues of kemi.cfg.
function M.drain()
	for _, q in ipairs({"events", "jobs", "oldest", "newest"}) do
		while t.mqueue.fetch(q) do
		end
	end
end

-- keys returns the keys of a queue's items, oldest first.
function M.keys(q)
	local out = {}
	for _, it in ipairs(t.mqueue.items(q)) do
		out[#out + 1] = it.key
	end
	return out
end

return M
