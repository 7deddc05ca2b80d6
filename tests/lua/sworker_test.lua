-- sworker (reference §3): delegation from the pre-routing callback to an
-- async_workers group, what travels with the message (the message as
-- received, xdata), KSR.sworker.active, and the cases where kemi keeps the
-- message instead of losing it.
local t = require("kemi.test")

-- delegate sends an OPTIONS the pre-routing callback hands to group.
local function delegate(group, extra)
	local headers = {["X-Delegate"] = group}
	for k, v in pairs(extra or {}) do
		headers[k] = v
	end
	return t.request{method = "OPTIONS", headers = headers}
end

t.it("KSR.sworker.task in pre-routing hands the request to the group's worker", function()
	local res = delegate("slow")
	t.equal(res.delegated, "slow")
	t.equal(res.code, 200)
	t.equal(res:header("X-Active"), "1", "KSR.sworker.active() in the delegated worker")
	t.equal(res:header("X-Gname"), "slow")
	t.equal(#res.replies, 1, "KSR.x.drop() stopped the receiving worker")
	t.truthy(res.dropped)
	local routes = res.routes
	t.equal(#routes, 2)
	t.equal(routes[1].group, "receivers")
	t.same({routes[2].group, routes[2].delegated}, {"slow", true})
end)

t.it("the group gets the message as received: pre-routing edits do not travel", function()
	local res = delegate("slow")
	t.equal(res:header("X-Pre-Added"), "no")
end)

t.it("xdata carries the value of $var(xdata) at delegation time", function()
	t.equal(delegate("slow", {["X-Xdata"] = "from pre-routing"}):header("X-Xdata"), "from pre-routing")
	t.equal(delegate("slow"):header("X-Xdata"), "0", "an empty value unsets it (an unset $var reads 0, as in Kamailio)")
end)

t.it("without KSR.x.drop the request is routed in both workers", function()
	local res = delegate("slow", {["X-No-Drop"] = "1"})
	t.equal(res.delegated, "slow")
	t.falsy(res.dropped)
	t.equal(#res.replies, 2)
	local active = {}
	for _, r in ipairs(res.replies) do
		active[#active + 1] = r.headers["X-Active"]
	end
	table.sort(active)
	t.same(active, {"-1", "1"}, "one reply from the receiver, one from the group")
end)

t.it("an unknown group returns -1 and the receiver keeps the message (Kamailio: 1, message lost)", function()
	local res = delegate("nope")
	t.equal(res.delegated, false)
	t.equal(#res.replies, 1)
	t.equal(res:header("X-Task-RC"), "-1")
	t.equal(res:header("X-Active"), "-1")
	t.equal(res:header("X-Pre-Added"), "core:pre-routing", "the receiver routes its edited copy")
end)

t.it("outside the pre-routing callback KSR.sworker.task returns -1", function()
	local res = t.request{method = "MESSAGE", headers = {["X-Op"] = "eval"}, body = "return KSR.sworker.task('slow'), KSR.sworker.active()"}
	t.equal(res:header("X-Result"), "-1,-1")
end)
