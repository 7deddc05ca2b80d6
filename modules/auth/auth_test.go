package auth

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestNonce(t *testing.T) {
	m := New()
	m.set.NonceExpire = 30
	m.secret = []byte("s3cret")
	n := m.Nonce(1000)
	forged := []byte(n)
	forged[20] ^= 1
	if len(n) != 32 {
		t.Fatalf("nonce %q: want Kamailio's 32 characters", n)
	}
	for _, c := range []struct {
		nonce string
		now   int64
		want  int
	}{
		{n, 1000, 0}, {n, 1030, 0}, {n, 1031, 4}, // expired: stale
		{n, 997, 0}, {n, 996, 4}, // issued in the future beyond the drift
		{string(forged), 1000, 2}, {"not base64!", 1000, 2}, {"", 1000, 2},
	} {
		if got := m.checkNonce(c.nonce, c.now); got != c.want {
			t.Errorf("checkNonce(%q, %d) = %d, want %d", c.nonce, c.now, got, c.want)
		}
	}
	other := New()
	other.secret = []byte("other")
	if other.checkNonce(n, 1000) != 2 {
		t.Error("a nonce of another secret passed")
	}
}

func TestParseCred(t *testing.T) {
	c := ParseCred(sip.NewHeader("Authorization", `Digest username="alice", realm="kemi.test", nonce="n+/=", uri="sip:kemi.test", response="abc", qop=auth, nc=00000001, cnonce="x,y"`))
	want := map[string]string{"username": "alice", "realm": "kemi.test", "nonce": "n+/=", "uri": "sip:kemi.test", "response": "abc", "qop": "auth", "nc": "00000001", "cnonce": "x,y"}
	for k, v := range want {
		if got := credField(c, k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if ParseCred(sip.NewHeader("Authorization", "Basic YWxpY2U6eA==")) != nil {
		t.Error("Basic parsed as Digest")
	}
	if HA1("Mufasa", "testrealm@host.com", "Circle Of Life") != "939e7578ed9e3c518a452acee763bce9" {
		t.Error("HA1 of RFC 2617's example")
	}
}

func credField(c *Cred, k string) string {
	if f := c.field(k); f != nil {
		return *f
	}
	return "?"
}
