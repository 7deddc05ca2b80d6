-- rtimer (reference §4), on the virtual clock: first tick one interval
-- after start, the callback argument "rtimer", $rtimer_worker, mode=N as N
-- parallel runs per interval, exec routes in reverse definition order,
-- microsecond intervals, and ticks on an exact grid.
local t = require("kemi.test")

t.config("rtimer.cfg")

local function drain()
	for _, q in ipairs({"ticks", "pairs"}) do
		while t.mqueue.fetch(q) do
		end
	end
end

-- pairs returns the pairs queue as sorted "key=value" strings (the two
-- goroutines of the timer run in parallel, in no fixed order).
local function pairs_seen()
	local out = {}
	for _, it in ipairs(t.mqueue.items("pairs")) do
		out[#out + 1] = it.key .. "=" .. it.val
	end
	table.sort(out)
	return out
end

t.test("the first run comes one interval after start", function()
	t.advance(249)
	t.equal(t.mqueue.size("pairs"), 0)
	t.advance(1)
	t.same(pairs_seen(), {"rtimer@0=1767225600.250000", "rtimer@1=1767225600.250000"})
	t.equal(t.mqueue.size("ticks"), 0, "the 1 s timer has not run yet")
end)

t.test("a mode=2 timer runs its exec list on both goroutines every interval", function()
	drain()
	t.advance(500)
	t.same(pairs_seen(), {
		"rtimer@0=1767225600.500000", "rtimer@0=1767225600.750000",
		"rtimer@1=1767225600.500000", "rtimer@1=1767225600.750000",
	})
end)

t.test("mode=0 runs the exec routes in reverse definition order, with \"rtimer\" and worker 0", function()
	drain()
	t.equal(t.now(), 750)
	t.advance(250)
	t.same(t.mqueue.items("ticks"), {
		{key = "second", val = "rtimer@0 at 1767225601"},
		{key = "first", val = "rtimer@0 run 1"},
	})
end)

t.test("ticks fall on an exact grid: 10 virtual seconds give 10 more runs", function()
	drain()
	t.advance("10s")
	local items = t.mqueue.items("ticks")
	t.equal(#items, 20)
	t.same(items[19], {key = "second", val = "rtimer@0 at 1767225611"})
	t.same(items[20], {key = "first", val = "rtimer@0 run 11"}, "one VM keeps its globals across runs")
	t.equal(t.mqueue.size("pairs"), 80, "4 runs a second on each of 2 goroutines")
end)

t.test("requests are routed while timers run", function()
	t.equal(t.request{method = "OPTIONS"}.code, 200)
	t.equal(t.now(), 11000)
end)
