-- Spies, stubs and mocks (luassert's names) on the KSR functions the script
-- under test calls, and on the test's own tables. Each is reverted after
-- its test. The script is scripts/proxy.lua (relays to 127.0.0.1:5080).
local t = require("kemi.test")
t.config("../../scripts/proxy.cfg")

t.describe("spy.on a KSR function", function()
	t.it("records the calls and lets them through", function()
		local s = spy.on(KSR.tm, "t_relay")
		local res = t.request{method = "MESSAGE"}
		assert.spy(s).was.called()
		assert.spy(s).was.called(1)
		assert.spy(s).was.called_with()
		t.equal(#res.relayed, 1) -- the real t_relay ran
		t.equal(#s.calls, 1)
	end)

	t.it("compares the arguments deeply; match._ is any value", function()
		local sets = spy.on(KSR.pv, "sets")
		t.request{method = "MESSAGE"}
		assert.spy(sets).was.called_with("$du", "sip:127.0.0.1:5080")
		assert.spy(sets).was.called_with("$du", match._)
		assert.spy(sets).was_not.called_with("$du", "sip:127.0.0.1:5082")
		t.same(sets.calls[1].vals, {"$du", "sip:127.0.0.1:5080"})
	end)

	t.it("sees calls from every worker VM (children=4)", function()
		local s = spy.on(KSR, "is_OPTIONS")
		for _ = 1, 6 do
			t.request{method = "OPTIONS"}
		end
		assert.spy(s).was.called(6)
		assert.spy(s).was.called_at_least(6)
		assert.spy(s).was.called_at_most(6)
	end)

	t.it("starts with no calls, and s:clear() forgets them", function()
		local s = spy.on(KSR.tm, "t_relay")
		assert.spy(s).was_not.called()
		assert.spy(s).was.not_called()
		t.request{method = "MESSAGE"}
		s:clear()
		assert.spy(s).was.not_called()
	end)
end)

t.describe("stub", function()
	t.it("replaces a KSR function: it does not run, it returns what it is told", function()
		stub(KSR.tm, "t_relay").returns(-1)
		local err = spy.on(KSR.sl, "sl_reply_error")
		local res = t.request{method = "MESSAGE"}
		t.equal(#res.relayed, 0) -- nothing went to the next hop
		assert.spy(err).was.called(1)
		t.truthy(res.code >= 500)
	end)

	t.it("takes its return values as arguments too", function()
		local s = stub(KSR, "is_OPTIONS", false)
		stub(KSR, "is_MESSAGE", true)
		local res = t.request{method = "OPTIONS"} -- routed as a MESSAGE
		assert.stub(s).was.called()
		t.equal(res.relayed[1].method, "OPTIONS")
	end)

	t.it("was reverted after the previous tests", function()
		local res = t.request{method = "OPTIONS"}
		t.equal(res.code, 200)
		res = t.request{method = "MESSAGE"}
		t.equal(#res.relayed, 1)
	end)

	t.it("of a KSR function that does not exist is an error naming it", function()
		t.error(function() stub(KSR.tm, "t_relayy") end, "stub(KSR.tm.t_relayy): no such KSR function in kemi (did you mean KSR.tm.t_relay")
		t.error(function() spy.on(KSR.nosuch, "fn") end, "KSR.nosuch: no such KSR function in kemi")
		t.error(function() return KSR.nosuch end, "KSR.nosuch: no such KSR function in kemi")
		t.error(function() return KSR.tm.t_relay end, "KSR.tm.t_relay runs in the engine's workers")
		local tm = mock(KSR.tm) -- every function of KSR.tm, none other
		t.error(function() return tm.t_relayy end, "KSR.tm.t_relayy: no such KSR function in kemi")
	end)
end)

t.describe("mock", function()
	t.it("spies on every function of a KSR module", function()
		local tm = mock(KSR.tm)
		local res = t.request{method = "MESSAGE"}
		assert.spy(tm.t_on_failure).was.called_with("ksr_failure")
		assert.spy(tm.t_relay).was.called(1)
		res.relayed[1]:reply(503)
		assert.spy(tm.t_check_status).was.called_with("408|5[0-9][0-9]")
		assert.spy(tm.t_relay).was.called(2) -- the failover
	end)

	t.it("stubs every function with mock(tbl, true)", function()
		local sl = mock(KSR.sl, true)
		local res = t.request{method = "OPTIONS"}
		assert.stub(sl.send_reply).was.called_with(200, "OK")
		t.equal(res.code, nil) -- no reply was sent
	end)
end)

t.describe("spies on the test's own tables", function()
	local helpers = {double = function(x) return 2 * x end}

	t.it("spy.new and spy.on call through; stubs return", function()
		local s = spy.new(function(a, b) return a + b end)
		t.equal(s(1, 2), 3)
		assert.spy(s).was.called_with(1, 2)
		local d = spy.on(helpers, "double")
		t.equal(helpers.double(4), 8)
		assert.spy(d).was.called(1)
		stub(helpers, "double").returns(0)
		t.equal(helpers.double(4), 0)
	end)

	t.it("are reverted after the test", function()
		t.equal(helpers.double(4), 8)
		t.falsy(spy.is_spy(helpers.double))
	end)
end)

t.describe("failing spy assertions", function()
	t.it("say what was expected and what the calls were", function()
		local s = spy.on(KSR.tm, "t_relay")
		t.error(function() assert.spy(s).was.called() end, "expected KSR.tm.t_relay to be called")
		t.request{method = "MESSAGE"}
		t.error(function() assert.spy(s).was.called(2) end, "expected KSR.tm.t_relay to be called 2 times")
		t.error(function() assert.spy(s).was_not.called() end, "expected KSR.tm.t_relay not to be called")
		t.error(function() assert.spy(s).was.called_with("sip:x") end, "expected KSR.tm.t_relay to be called with (\"sip:x\")")
		t.error(function() assert.spy({}) end, "assert.spy(s): s is table, not a spy or a stub")
		t.error(function() spy.on({}, "nothing") end, "tbl.nothing is nil, not a function")
	end)

	t.it("plain assert still works", function()
		t.equal(assert(1, "fine"), 1)
		t.error(function() assert(false, "boom") end, "boom")
	end)
end)
