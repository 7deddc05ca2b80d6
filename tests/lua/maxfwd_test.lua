-- maxfwd: the script decrements Max-Forwards and answers 483 at 0;
-- t_relay forwards the header as the script left it (one decrement per hop,
-- as in Kamailio).
local t = require("kemi.test")

t.config("maxfwd.cfg")

t.it("decrements once: by the script, not again by t_relay", function()
	local res = t.request{method = "MESSAGE", max_forwards = 5}
	t.equal(#res.relayed, 1)
	t.equal(res.relayed[1].headers["max-forwards"], "4")
end)

t.it("lowers a value above max_limit to max_limit", function()
	local res = t.request{method = "MESSAGE", max_forwards = 70}
	t.equal(res.relayed[1].headers["max-forwards"], "16")
end)

t.it("answers 483 when Max-Forwards is 0, without relaying", function()
	local res = t.request{method = "MESSAGE", max_forwards = 0}
	t.equal(res.code, 483)
	t.equal(#res.relayed, 0)
end)
