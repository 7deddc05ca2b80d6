-- registrar and usrloc: save, the 200 OK's Contact list, expiry on the
-- virtual clock, lookup routing to the saved contact, the ul.* RPC.
local t = require("kemi.test")
t.config("registrar.cfg")

local function register(user, contact, extra)
	local h = {Contact = contact}
	for k, v in pairs(extra or {}) do h[k] = v end
	return t.request{method = "REGISTER", uri = "sip:kemi.test", from = "<sip:" .. user .. "@kemi.test>;tag=r1",
		to = "<sip:" .. user .. "@kemi.test>", headers = h}
end

t.describe("registrar", function()
	t.it("saves a contact, replies with its expires and routes to it", function()
		local res = register("bob", "<sip:bob@127.0.0.1:5090>;expires=120")
		t.equal(res.code, 200)
		t.equal(res:header("Contact"), "<sip:bob@127.0.0.1:5090>;expires=120")
		local inv = t.request{method = "INVITE", uri = "sip:bob@kemi.test"}
		t.equal(#inv.relayed, 1)
		t.match(inv.relayed[1].raw, "^INVITE sip:bob@127.0.0.1:5090 SIP/2.0")
		inv.relayed[1]:reply(486, "Busy Here")
	end)

	t.it("refuses an unknown user and expires contacts on the clock", function()
		t.equal(t.request{method = "INVITE", uri = "sip:nobody@kemi.test"}.code, 404)
		t.equal(register("carol", "<sip:carol@127.0.0.1:5091>", {Expires = "60"}).code, 200)
		t.advance("61s")
		local res = t.request{method = "INVITE", uri = "sip:carol@kemi.test"}
		t.equal(res.code, 404)
		t.equal(res.reason, "Not Found (-1)")
	end)

	t.it("caps expires, orders by q, refuses too many contacts", function()
		local res = register("dave", "<sip:d1@127.0.0.1:5092>;q=0.5, <sip:d2@127.0.0.1:5093>;q=1", {Expires = "7200"})
		t.equal(res:header("Contact"), "<sip:d2@127.0.0.1:5093>;q=1;expires=600, <sip:d1@127.0.0.1:5092>;q=0.5;expires=600")
		res = register("dave", "<sip:d3@127.0.0.1:5094>")
		t.equal(res.code, 503)
		t.equal(res:header("P-Registrar-Error"), "Too many registered contacts")
		local r = t.rpc("ul.lookup", "location", "dave")
		t.equal(r.AoR, "dave")
		t.equal(#r.Contacts, 2)
		t.equal(r.Contacts[1].Contact.Address, "sip:d2@127.0.0.1:5093")
		t.equal(r.Contacts[1].Contact.Expires, 600)
		res = register("dave", "*", {Expires = "0"})
		t.equal(res.code, 200)
		t.equal(res:header("Contact"), nil)
		local _, err = t.rpc("ul.lookup", "location", "dave")
		t.equal(err.message, "AOR not found in location table")
	end)
end)
