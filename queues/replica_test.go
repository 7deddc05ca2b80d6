package queues

import (
	"testing"
)

func TestReplicaKeyEncoding(t *testing.T) {
	for _, k := range []string{"", "a", "Alice-1", "sip:alice@example.com;tag=1", "_", "_5F", "a.b", "*", ">", "ü", "\x00\xff", " "} {
		e := encodeKey(k)
		if e == "" || e[0] == '.' || e[len(e)-1] == '.' {
			t.Errorf("encodeKey(%q) = %q: not a valid key", k, e)
		}
		for i := 0; i < len(e); i++ {
			c := e[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				t.Errorf("encodeKey(%q) = %q: byte %q", k, e, c)
			}
		}
		if d, ok := decodeKey(e); !ok || d != k {
			t.Errorf("decodeKey(encodeKey(%q)) = %q, %v", k, d, ok)
		}
	}
	for _, bad := range []string{"_4", "_ZZ", "a_"} {
		if _, ok := decodeKey(bad); ok {
			t.Errorf("decodeKey(%q) accepted", bad)
		}
	}
	if encodeKey("_") == encodeKey("") {
		t.Error(`"_" and "" encode the same`)
	}
}
