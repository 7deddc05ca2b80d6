-- Helpers for the flows scripts handle most: answering a digest challenge
-- (res:authorize, t.digest) and requests inside a dialog (res:in_dialog).
local t = require("kemi.test")
t.config("auth.cfg")

t.describe("REGISTER with a digest challenge", function()
	t.it("res:authorize answers the 401 with the same Call-ID and CSeq + 1", function()
		local res = t.request{method = "REGISTER", uri = "sip:kemi.test", cseq = 7}
		t.equal(res.code, 401)
		local ok = res:authorize{username = "alice", password = "secret", cnonce = "c1"}
		t.equal(ok.code, 200)
		t.equal(ok.call_id, res.call_id)
		t.equal(ok:header("X-CSeq"), "8")
		local want = t.digest(res:header("WWW-Authenticate"), {username = "alice", password = "secret", method = "REGISTER", uri = "sip:kemi.test", cnonce = "c1"})
		t.equal(ok:header("X-Auth"), want)
		t.match(want, 'qop=auth, nc=00000001, cnonce="c1"')
	end)

	t.it("t.digest computes RFC 2617's example", function()
		local v = t.digest('Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"',
			{username = "Mufasa", password = "Circle Of Life", method = "GET", uri = "/dir/index.html", cnonce = "0a4f113b"})
		t.match(v, 'response="6629fae49393a05397450978507c4ef1"')
	end)

	t.it("refuses what is not a challenge", function()
		local res = t.request{method = "OPTIONS"}
		t.error(function() res:authorize{username = "alice", password = "x"} end, "the last reply is 405 Method Not Allowed, not a 401 or 407 challenge")
		t.error(function() t.digest("Basic realm=x", {username = "a", method = "GET", uri = "/"}) end, "not a Digest challenge")
	end)
end)
