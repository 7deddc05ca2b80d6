-- mqueue (reference §1): add modes and eviction, the KEMI return codes of
-- mq_fetch and mq_size, the fetched item and its PVs, the RPC commands.
local t = require("kemi.test")
local h = require("helpers")

t.before_each(h.drain)

t.describe("mq_add", function()
	t.it("appends at the tail; a full queue drops its oldest item, silently", function()
		for i = 1, 5 do
			local res = t.request{method = "MESSAGE", call_id = "call-" .. i, body = "m" .. i}
			t.equal(res.code, 202)
			t.equal(res:header("X-RC"), "1", "mq_add returns 1 even when it evicts")
		end
		t.same(t.mqueue.items("events"), {
			{key = "call-3", val = "m3"},
			{key = "call-4", val = "m4"},
			{key = "call-5", val = "m5"},
		})
	end)

	t.it("returns -1 for an unknown queue", function()
		local res = t.request{method = "MESSAGE", headers = {["X-Queue"] = "nope"}, body = "x"}
		t.equal(res.code, 500)
		t.equal(res:header("X-RC"), "-1")
	end)

	t.it("addmode=1 keeps the oldest item of a key and still returns 1", function()
		t.equal(h.ksr("return KSR.mqueue.mq_add('oldest', 'k', '1'), KSR.mqueue.mq_add('oldest', 'k', '2')"), "1,1")
		t.same(t.mqueue.items("oldest"), {{key = "k", val = "1"}})
	end)

	t.it("addmode=2 removes the older item of a key and appends the new one", function()
		h.ksr("KSR.mqueue.mq_add('newest', 'a', '1'); KSR.mqueue.mq_add('newest', 'b', '2'); KSR.mqueue.mq_add('newest', 'a', '3')")
		t.same(t.mqueue.items("newest"), {{key = "b", val = "2"}, {key = "a", val = "3"}})
	end)

	t.it("accepts empty keys and values", function()
		t.equal(h.ksr("return KSR.mqueue.mq_add('jobs', '', '')"), "1")
		t.same(t.mqueue.items("jobs"), {{key = "", val = ""}})
	end)
end)

t.describe("mq_fetch", function()
	t.it("returns 1 and sets the worker's fetched item", function()
		t.mqueue.add("jobs", "k1", "v1")
		t.mqueue.add("jobs", "k2", "v2")
		local got = h.ksr([[
			local rc = KSR.mqueue.mq_fetch("jobs")
			return rc, KSR.mqueue.mqk_get("jobs"), KSR.mqueue.mqv_get("jobs"), KSR.pv.get("$mqk(jobs)")
		]])
		t.equal(got, "1,k1,v1,k1")
		t.same(t.mqueue.items("jobs"), {{key = "k2", val = "v2"}}, "the oldest item is taken")
	end)

	t.it("returns -2 on an empty queue, after freeing the previous item", function()
		t.mqueue.add("jobs", "k1", "v1")
		local got = h.ksr([[
			local a = KSR.mqueue.mq_fetch("jobs")
			local b = KSR.mqueue.mq_fetch("jobs")
			return a, b, KSR.mqueue.mqk_get("jobs"), KSR.mqueue.mqv_get("jobs")
		]])
		t.equal(got, "1,-2,nil,nil")
	end)

	t.it("returns -1 for an unknown queue", function()
		t.equal(h.ksr("return KSR.mqueue.mq_fetch('nope')"), "-1")
	end)

	t.it("gives \"\" for an empty key where $mqk is null", function()
		t.mqueue.add("jobs", "", "v")
		local got = h.ksr([[
			KSR.mqueue.mq_fetch("jobs")
			return KSR.mqueue.mqk_get("jobs") == "", KSR.pv.get("$mqk(jobs)"), KSR.pv.get("$mqv(jobs)")
		]])
		t.equal(got, "true,nil,v")
	end)

	t.it("mq_pv_free forgets the item and returns 1, even for an unknown queue", function()
		t.mqueue.add("jobs", "k", "v")
		local got = h.ksr([[
			KSR.mqueue.mq_fetch("jobs")
			return KSR.mqueue.mq_pv_free("jobs"), KSR.mqueue.mqk_get("jobs"), KSR.mqueue.mq_pv_free("nope")
		]])
		t.equal(got, "1,nil,1")
	end)

	t.it("the e/w getters also return nil when nothing is fetched (Kamailio's bug kept)", function()
		local got = h.ksr([[
			KSR.mqueue.mq_pv_free("jobs")
			return KSR.mqueue.mqk_gete("jobs"), KSR.mqueue.mqk_getw("jobs"), KSR.mqueue.mqv_gete("jobs"), KSR.mqueue.mqv_getw("jobs")
		]])
		t.equal(got, "nil,nil,nil,nil")
	end)
end)

t.describe("mq_size", function()
	t.it("is 0 for an empty queue, the count otherwise, -1 for an unknown queue (KEMI codes)", function()
		t.equal(h.ksr("return KSR.mqueue.mq_size('jobs')"), "0")
		t.mqueue.add("jobs", "a", "1")
		t.mqueue.add("jobs", "b", "2")
		t.equal(h.ksr("return KSR.mqueue.mq_size('jobs'), KSR.pv.get('$mq_size(jobs)')"), "2,2")
		t.equal(h.ksr("return KSR.mqueue.mq_size('nope'), KSR.pv.get('$mq_size(nope)')"), "-1,nil")
		t.equal(t.mqueue.size("jobs"), 2)
	end)
end)

t.describe("rpc", function()
	t.it("mqueue.get_size and mqueue.get_sizes (reverse definition order)", function()
		t.mqueue.add("jobs", "a", "1")
		t.same(t.rpc("mqueue.get_size", "jobs"), {name = "jobs", size = 1})
		local res, fault = t.rpc("mqueue.get_size", "nope")
		t.equal(res, nil)
		t.same(fault, {code = 404, message = "No such queue"})
		local names = {}
		for _, q in ipairs(t.rpc("mqueue.get_sizes")) do
			names[#names + 1] = q.name
		end
		t.same(names, {"newest", "oldest", "jobs", "events"})
	end)

	t.it("mqueue.fetch takes the oldest item; faults 404 Empty queue, 500 No such queue", function()
		t.mqueue.add("jobs", "k", "v")
		t.same(t.rpc("mqueue.fetch", "jobs"), {key = "k", val = "v"})
		local _, fault = t.rpc("mqueue.fetch", "jobs")
		t.same(fault, {code = 404, message = "Empty queue"})
		_, fault = t.rpc("mqueue.fetch", "nope")
		t.same(fault, {code = 500, message = "No such queue"})
	end)
end)
