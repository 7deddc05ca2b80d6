package permissions

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

func TestParseIP(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1": "127.0.0.1", "300.0.0.1": "44.0.0.1", "1..2.3": "1.0.2.3",
		"2001:db8::1": "2001:db8::1", "[::1]": "::1", "1:2:3:4:5:6:7:8": "1:2:3:4:5:6:7:8",
		"::ffff:1.2.3.4": "", "1.2.3": "", "1.2.3.4.5": "", "example.com": "", "": "", "1:2": "", "[::1": "", ":::": "",
	} {
		a, ok := parseIP(in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != want {
			t.Errorf("parseIP(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMatchNet(t *testing.T) {
	n := netip.MustParseAddr("192.168.1.0")
	for _, c := range []struct {
		a    string
		mask int
		want bool
	}{{"192.168.1.9", 24, true}, {"192.168.2.9", 24, false}, {"192.168.1.129", 25, false}, {"192.168.1.127", 25, true}, {"2001:db8::1", 24, false}} {
		if got := matchNet(netip.MustParseAddr(c.a), n, c.mask); got != c.want {
			t.Errorf("%s/%d: %v", c.a, c.mask, got)
		}
	}
}

// TestAddressFile loads address_file as Kamailio's parser reads it:
// comments, optional mask, port and tag; a bad mask fails the load.
func TestAddressFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "address.list")
	os.WriteFile(f, []byte("# comment\n\n1 10.0.0.1\n2 10.1.0.0 16 5060 tagged # c\n3 example.org 0 0\n  4 ::1 128\n"), 0o644)
	m := New()
	m.set.AddressFile = f
	tb, err := m.load()
	if err != nil {
		t.Fatal(err)
	}
	if x := tb.matchAddr(false, 1, netip.MustParseAddr("10.0.0.1"), 9); x == nil || x.hasTag {
		t.Errorf("10.0.0.1: %+v", x)
	}
	if x := tb.matchSubnet(false, 2, netip.MustParseAddr("10.1.2.3"), 5060); x == nil || x.tag != "tagged" {
		t.Errorf("10.1.2.3: %+v", x)
	}
	if x := tb.matchSubnet(false, 2, netip.MustParseAddr("10.1.2.3"), 5061); x != nil {
		t.Errorf("port 5061 matched %+v", x)
	}
	if x := tb.matchDomain(true, 0, "example.org", 1); x == nil || x.grp != 3 {
		t.Errorf("example.org: %+v", x)
	}
	if x := tb.matchAddr(true, 0, netip.MustParseAddr("::1"), 1); x == nil || x.grp != 4 {
		t.Errorf("::1: %+v", x)
	}
	os.WriteFile(f, []byte("1 10.0.0.1 33\n"), 0o644)
	if _, err := m.load(); err == nil {
		t.Error("mask 33 loaded")
	}
	m.set.AddressFile = f + ".missing"
	if _, err := m.load(); err == nil {
		t.Error("a missing file loaded")
	}
}

// TestMaxSubnets drops subnets past max_subnets, as Kamailio does.
func TestMaxSubnets(t *testing.T) {
	tb := &tables{}
	full := 0
	for i := 0; i < 3; i++ {
		if err := tb.insert(uint32(3-i), "10.0.0.0", 8, 0, nil, 2, func() { full++ }); err != nil {
			t.Fatal(err)
		}
	}
	if len(tb.subnets) != 2 || full != 1 || tb.subnets[0].grp != 2 {
		t.Fatalf("subnets %d full %d first %d", len(tb.subnets), full, tb.subnets[0].grp)
	}
}

func TestBREToRE2(t *testing.T) {
	for _, c := range []struct{ bre, s string }{
		{`^sip:x+y@`, "sip:x+y@a"}, {`a\|b`, "b"}, {`\(ab\)\{2\}`, "abab"}, {`(g)`, "(g)"}, {`*a`, "*a"},
		{`a^b`, "a^b"}, {`a$b`, "a$b"}, {`[[:digit:]]\{3\}`, "123"}, {`[\]`, `\`}, {`x?`, "x?"}, {`a{2}`, "a{2}"},
	} {
		var rc regexCache
		if !rc.match(c.bre, c.s) {
			t.Errorf("%q (as %q) does not match %q", c.bre, breToRE2(c.bre), c.s)
		}
	}
	var rc regexCache
	if rc.match(`x+y`, "xxy") || rc.match(`[unterminated`, "[unterminated") {
		t.Error("matched")
	}
}

// FuzzParseIP: no input panics the address parser or the BRE translation.
func FuzzParseIP(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::1", "[::1]", "1::2::3", "a:b:c:d:e:f:0:1", "[", "*a\\(", "[[:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parseIP(s)
		var rc regexCache
		rc.match(s, s)
	})
}
