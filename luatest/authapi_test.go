package luatest_test

import (
	"strings"
	"testing"

	"kemi/luatest"
)

// The digest helpers reproduce the RFCs' worked examples.
func TestAuthorizationVectors(t *testing.T) {
	tests := []struct {
		name, challenge string
		cr              luatest.Credentials
		response        string
	}{
		{"RFC 2617 3.5 (MD5, qop=auth)",
			`Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
			luatest.Credentials{Username: "Mufasa", Password: "Circle Of Life", Method: "GET", URI: "/dir/index.html", CNonce: "0a4f113b"},
			"6629fae49393a05397450978507c4ef1"},
		{"RFC 7616 3.9.1 (SHA-256)",
			`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`,
			luatest.Credentials{Username: "Mufasa", Password: "Circle of Life", Method: "GET", URI: "/dir/index.html", CNonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"},
			"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
	}
	for _, tc := range tests {
		c, err := luatest.ParseChallenge(tc.challenge)
		if err != nil {
			t.Fatal(err)
		}
		v, err := luatest.Authorization(c, tc.cr)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(v, `response="`+tc.response+`"`) || !strings.Contains(v, `qop=auth, nc=00000001`) || !strings.Contains(v, `opaque="`+c.Opaque+`"`) {
			t.Errorf("%s: %s", tc.name, v)
		}
	}
	if _, err := luatest.ParseChallenge(`Digest realm="r"`); err == nil {
		t.Error("a challenge without nonce was accepted")
	}
}
