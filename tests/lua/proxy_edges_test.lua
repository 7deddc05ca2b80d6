-- The branches of scripts/proxy.lua that relay_test.lua and dialog_test.lua
-- leave unreached, found with `kemi test -cover` (docs/testing.md, "Testing
-- a real script").
local t = require("kemi.test")
t.config("../../scripts/proxy.cfg")

t.test("a CANCEL without a transaction is dropped", function()
	local res = t.request{method = "CANCEL"}
	t.equal(#res.replies, 0)
	t.equal(#res.relayed, 0)
end)

t.test("an ACK inside no dialog of ours is dropped", function()
	local res = t.request{method = "ACK", to = "<sip:bob@127.0.0.1:5060>;tag=elsewhere"}
	t.equal(#res.replies, 0)
	t.equal(#res.relayed, 0)
end)

t.test("an in-dialog request that was not record-routed through us gets 404", function()
	local res = t.request{method = "BYE", to = "<sip:bob@127.0.0.1:5060>;tag=elsewhere"}
	t.equal(res.code, 404)
end)

t.test("a relay that fails is answered with sl_reply_error", function()
	stub(KSR.tm, "t_relay").returns(-1)
	local err = spy.on(KSR.sl, "sl_reply_error")
	local res = t.request{method = "MESSAGE"}
	assert.spy(err).was.called(1)
	t.equal(#res.relayed, 0)
end)
