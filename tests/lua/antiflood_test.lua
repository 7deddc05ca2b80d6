-- Anti-flood with pike and htable, on the virtual clock: pike allows a
-- source until its requests reach the density (5 per 2 s unit here, after
-- the 4 requests pike needs to track a new address), the script bans the
-- source in the ipban htable (autoexpire 300 s), and its requests are
-- refused until the ban expires, even once pike has forgotten it.
local t = require("kemi.test")

t.config("antiflood.cfg")

-- Each test uses its own first byte of address: pike's tree shares the
-- prefix nodes of neighbouring addresses, so a neighbour of an address that
-- was already tracked is found flooding after fewer requests (see below).

local banned_at -- virtual ms when 11.0.0.1 was banned

-- send sends n requests from src and returns their reply codes, joined;
-- check = "match" has the script look the ban up with sht_match_name.
local function send(src, n, check)
	local codes = {}
	for i = 1, n do
		local headers = check and {"X-Ban-Check: " .. check} or nil
		codes[i] = tostring(t.request{method = "OPTIONS", src = src, headers = headers}.code)
	end
	return table.concat(codes, " ")
end

t.it("serves a source below the flood threshold", function()
	t.equal(send("10.0.0.1:5060", 8), "200 200 200 200 200 200 200 200")
end)

t.it("spreading requests over units stays below the threshold", function()
	for _ = 1, 5 do
		t.equal(send("12.0.0.1:5060", 4), "200 200 200 200")
		t.advance("4s")
	end
end)

t.it("bans the source at the flooding request", function()
	-- 4 requests grow pike's path to the address (11, 11.0, 11.0.0,
	-- 11.0.0.1), then its own hits count: the 5th in a unit
	-- (reqs_density_per_unit) is the flood; the 10th is refused as banned.
	t.equal(send("11.0.0.1:5060", 10), "200 200 200 200 200 200 200 200 403 403")
	banned_at = t.now()
	local res = t.request{method = "OPTIONS", src = "11.0.0.1:5060"}
	t.equal(res.code, 403)
	t.equal(res.reason, "Banned")
end)

t.it("a neighbour of a tracked address is found sooner", function()
	-- 11.0.0 is already a hot prefix: one request adds the leaf, then 4
	-- hits are allowed and the 5th is the flood.
	t.equal(send("11.0.0.2:5060", 7), "200 200 200 200 200 403 403")
end)

t.it("other sources are not affected", function()
	t.equal(send("13.0.0.1:5060", 3), "200 200 200")
end)

t.it("the ban outlives pike's memory of the flood", function()
	t.advance("10s") -- pike: two units without requests, nodes removed
	t.equal(send("11.0.0.1:5060", 2), "403 403")
end)

t.it("the ban ends when the htable item expires", function()
	-- autoexpire=300: an item set at second s is there at s+300, gone at s+301.
	t.advance(banned_at + 300000 - t.now())
	t.equal(send("11.0.0.1:5060", 1), "403")
	t.equal(send("11.0.0.1:5060", 1, "match"), "403")
	t.advance("1s")
	t.equal(send("11.0.0.1:5060", 1), "200")
end)

t.it("sht_match_name sees the expired ban until the htable timer sweeps it", function()
	-- The timer runs every timer_interval (20 s) from start: until the next
	-- run, the expired item still matches, as in Kamailio.
	local sweep = (math.floor((banned_at + 301000) / 20000) + 1) * 20000
	if sweep - t.now() > 1000 then
		t.equal(send("11.0.0.2:5060", 1, "match"), "403", "the expired ban of 11.0.0.2 still matches")
		t.advance(sweep - 1000 - t.now())
		t.equal(send("11.0.0.2:5060", 1, "match"), "403", "one second before the sweep")
	end
	t.advance(sweep - t.now())
	t.equal(send("11.0.0.2:5060", 1, "match"), "200", "after the sweep")
end)
