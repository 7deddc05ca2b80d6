-- A deliberately failing test file: it shows what `kemi test` prints when
-- tests fail. It is kept out of tests/lua so that `kemi test` passes there;
-- luatest's Go tests check the report format against it.
--
--	kemi test tests/examples/failing_test.lua
--
-- It tests kemi's embedded default script (scripts/default.lua).
local t = require("kemi.test")

t.config("../../scripts/default.cfg")

t.test("OPTIONS is answered 200 OK", function()
	t.equal(t.request{method = "OPTIONS"}.code, 200)
end)

t.test("MESSAGE is accepted", function()
	local res = t.request{method = "MESSAGE", body = "hello"}
	t.equal(res.code, 202, "reply code") -- fails: the default script answers 501
end)

t.test("pings wait in the queue for the report", function()
	t.request{method = "OPTIONS", src = "192.0.2.1:5060"}
	t.advance("10s") -- the report timer runs and drains the queue
	t.same(t.mqueue.items("pings"), {{key = "192.0.2.1", val = ""}}) -- fails: the queue is empty
end)
