-- Registration with digest authentication (auth, auth_db on a
-- subscriber table in SQLite), then a call routed by lookup.
local t = require("kemi.test")
t.config("regauth.cfg")

local function register(user, contact)
	return t.request{method = "REGISTER", uri = "sip:kemi.test", from = "<sip:" .. user .. "@kemi.test>;tag=a1",
		to = "<sip:" .. user .. "@kemi.test>", headers = {Contact = contact}}
end

t.describe("REGISTER with digest authentication", function()
	t.it("challenges, accepts the answer, and routes a call to the contact", function()
		local res = register("bob", "<sip:bob@127.0.0.1:5092>")
		t.equal(res.code, 401)
		t.equal(res:header("X-Auth-Check"), "-5")
		t.match(res:header("WWW-Authenticate"), '^Digest realm="kemi.test", nonce="[A-Za-z0-9+/=]+"$')
		local ok = res:authorize{username = "bob", password = "bob-secret"}
		t.equal(ok.code, 200)
		t.equal(ok:header("Contact"), "<sip:bob@127.0.0.1:5092>;expires=3600")

		local inv = t.request{method = "INVITE", uri = "sip:bob@kemi.test", from = "<sip:alice@kemi.test>;tag=c1"}
		t.equal(inv.code, 407)
		local authed = inv:authorize{username = "alice", password = "alice-secret"}
		t.equal(#authed.relayed, 1)
		t.match(authed.relayed[1].raw, "^INVITE sip:bob@127.0.0.1:5092 SIP/2.0")
		t.equal(authed.relayed[1].raw:find("Proxy%-Authorization"), nil)
		authed.relayed[1]:reply(200, "OK", {headers = {Contact = "<sip:bob@127.0.0.1:5092>"}})
	end)

	t.it("tells a wrong password, an unknown user and a stale nonce apart", function()
		local res = register("alice", "<sip:alice@127.0.0.1:5091>")
		t.equal(res:authorize{username = "alice", password = "wrong"}:header("X-Auth-Check"), "-2")
		res = register("mallory", "<sip:m@127.0.0.1:5099>")
		t.equal(res:authorize{username = "mallory", password = "x"}:header("X-Auth-Check"), "-3")
		res = register("alice", "<sip:alice@127.0.0.1:5091>")
		t.advance("61s")
		t.equal(res:authorize{username = "alice", password = "alice-secret"}:header("X-Auth-Check"), "-4")
		res = register("bob", "<sip:bob@127.0.0.1:5092>")
		t.equal(res:authorize{username = "alice", password = "alice-secret"}:header("X-Auth-Check"), "-8")
	end)

	t.it("a call to a user without contacts gets 404", function()
		local inv = t.request{method = "INVITE", uri = "sip:carol@kemi.test", from = "<sip:alice@kemi.test>;tag=c2"}
		t.equal(inv:authorize{username = "alice", password = "alice-secret"}.code, 404)
	end)
end)
