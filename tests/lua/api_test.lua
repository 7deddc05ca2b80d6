-- The test API itself (require("kemi.test")): assertions, describe blocks
-- and hooks, request building, and the errors it gives for misuse.
local t = require("kemi.test")

-- engine calls are refused outside a test
local top_ok, top_err = pcall(t.request, {method = "OPTIONS"})

local calls = {}

t.describe("hooks", function()
	t.before_each(function()
		calls[#calls + 1] = "before"
	end)
	t.after_each(function()
		calls[#calls + 1] = "after"
	end)
	t.it("runs before_each before the test", function()
		calls[#calls + 1] = "test 1"
		t.same(calls, {"before", "test 1"})
	end)
	t.describe("nested", function()
		t.before_each(function()
			calls[#calls + 1] = "inner before"
		end)
		t.it("runs outer hooks first, and after_each after every test", function()
			t.same(calls, {"before", "test 1", "after", "before", "inner before"})
		end)
	end)
end)

t.test("tests outside a describe block get no hook of it", function()
	t.equal(calls[#calls], "after")
end)

t.describe("assertions", function()
	t.it("t.equal compares without coercion and reports both values", function()
		t.equal(1, 1.0)
		t.equal(nil, nil)
		local msg = t.error(function()
			t.equal("1", 1)
		end)
		t.equal(msg, "t.equal failed")
		t.error(function()
			t.equal(1)
		end, "needs two values")
	end)

	t.it("a message names the assertion", function()
		t.equal(t.error(function()
			t.equal(1, 2, "the code")
		end), "the code (t.equal failed)")
	end)

	t.it("t.same compares tables deeply and names the first difference", function()
		t.same({1, {a = "x", b = {true}}}, {1, {a = "x", b = {true}}})
		t.match(t.error(function()
			t.same({a = {1, 2}}, {a = {1, 3}})
		end), "first difference at %.a%[2%]")
		t.error(function()
			t.same({1, 2}, {1, 2, 3})
		end, "[3]")
	end)

	t.it("t.truthy, t.falsy, t.not_equal, t.match, t.fail", function()
		t.truthy(0, "0 is true in Lua")
		t.falsy(nil)
		t.not_equal(1, 2)
		t.match("SIP/2.0 200 OK", "^SIP/2%.0 %d+")
		t.error(function() t.truthy(false) end, "t.truthy failed")
		t.error(function() t.falsy(0) end, "t.falsy failed")
		t.error(function() t.not_equal("a", "a") end, "t.not_equal failed")
		t.error(function() t.match("abc", "^b") end, "t.match failed")
		t.error(function() t.fail("stop here") end, "stop here")
	end)

	t.it("t.error fails when nothing is raised, or the message differs", function()
		t.error(function()
			t.error(function() end)
		end, "raised no error")
		t.error(function()
			t.error(function() error("one") end, "two")
		end, "does not contain")
	end)
end)

t.describe("requests", function()
	t.it("engine calls are refused outside a test", function()
		t.falsy(top_ok)
		t.match(top_err, "only inside a test")
	end)

	t.it("a request table with an unknown field is refused", function()
		t.error(function()
			t.request{methd = "OPTIONS"}
		end, "unknown field(s) methd")
	end)

	t.it("headers may be strings, name = value, or name = {values}", function()
		local res = t.request{method = "MESSAGE", headers = {"X-Op: eval", ["X-Multi"] = {"a", "b"}},
			body = "return KSR.hdr.get_idx('X-Multi', 0), KSR.hdr.get_idx('X-Multi', 1)"}
		t.equal(res:header("X-Result"), "a,b")
	end)

	t.it("a header given replaces the default one of that name", function()
		local res = t.request{method = "MESSAGE", headers = {["X-Op"] = "eval", ["Max-Forwards"] = "3"},
			body = "return KSR.hdr.get('Max-Forwards')"}
		t.equal(res:header("X-Result"), "3")
	end)

	t.it("a handle prints its request and replies", function()
		local res = t.request{method = "OPTIONS", uri = "sip:x@example.com"}
		t.equal(tostring(res), "request OPTIONS sip:x@example.com (replies: 200 OK)")
		t.equal(tostring(res.reply), "200 OK")
		t.equal(res.method, "OPTIONS")
	end)

	t.it("t.mqueue names the configured queues for an unknown one", function()
		t.error(function()
			t.mqueue.size("nope")
		end, "configured: events, jobs, oldest, newest")
	end)

	t.it("t.advance refuses a negative duration", function()
		t.error(function()
			t.advance(-1)
		end, "negative duration")
	end)
end)
