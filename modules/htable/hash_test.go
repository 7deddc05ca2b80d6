package htable

import "testing"

// TestHash compares hash with Kamailio's core_case_hash, compiled from
// core/hashes.h at 5.6.3 with gcc on x86-64 (signed char).
func TestHash(t *testing.T) {
	cases := []struct {
		in   string
		want uint32
	}{
		{"", 0},
		{"a", 109},
		{"k", 102},
		{"127.0.0.1", 1834056471},
		{"Alice", 1834153949},
		{"alice", 1834153949},
		{"ipban", 1684938264},
		{"k1", 26214},
		{"k20", 6710386},
		{"\xc3\xa9t\xc3\xa9-caf\xc3\xa9", 2542162491},
	}
	for _, c := range cases {
		if got := hash(c.in); got != c.want {
			t.Errorf("hash(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}
