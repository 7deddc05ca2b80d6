package rtprelay

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAdd(t *testing.T) {
	var s Sets
	if _, err := s.Add("udp:127.0.0.1:7722=2 udp6:[::1]:9 unix:/run/rtp.sock udp:10.0.0.1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(" 1 ==  udp:127.0.0.1:7723 ", false); err != nil {
		t.Fatal(err)
	}
	var got []string
	s.Each(func(set *Set, n *Node) {
		got = append(got, strings.Join([]string{n.URL, n.Network, n.Addr}, " ")+" "+string(rune('0'+set.ID))+string(rune('0'+n.Weight))+string(rune('0'+n.Index)))
	})
	want := []string{
		"udp:127.0.0.1:7722 udp4 127.0.0.1:7722 020",
		"udp6:[::1]:9 udp6 [::1]:9 011",
		"unix:/run/rtp.sock unix /run/rtp.sock 012",
		"udp:10.0.0.1 udp4 10.0.0.1:22222 013",
		"udp:127.0.0.1:7723 udp4 127.0.0.1:7723 114",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("sets:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, bad := range []string{"== udp:1.2.3.4:5", "x == udp:1.2.3.4:5", "1 == "} {
		if _, err := (&Sets{}).Add(bad, false); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	var r Sets
	if warn, err := r.Add("tcp:1.2.3.4:5 udp:1.2.3.4:6", true); err != nil || warn == "" || len(r.List[0].Nodes) != 1 {
		t.Errorf("strict: %q %v %d", warn, err, len(r.List[0].Nodes))
	}
}

// TestSelect: the Call-ID's byte sum modulo the weights of the enabled
// relays picks one; a disabled relay is left out until its recheck time,
// then tested again.
func TestSelect(t *testing.T) {
	now := time.Unix(1000, 0)
	failing := map[string]bool{}
	s := &Sets{Now: func() time.Time { return now }, DisableTout: time.Minute, Aggressive: true,
		Test: func(_ context.Context, n *Node) error {
			if failing[n.URL] {
				return errors.New("down")
			}
			return nil
		}}
	s.Add("udp:127.0.0.1:1=2 udp:127.0.0.1:2", false)
	set := s.ByID(0)
	a, b := set.Nodes[0], set.Nodes[1]
	pick := func(sum int) *Node { return s.Select(context.Background(), set, string(rune(sum)), nil) }
	if pick(0) != a || pick(1) != a || pick(2) != b || pick(3) != a || pick(5) != b {
		t.Fatal("weights not applied")
	}
	failing[a.URL] = true
	s.Disable(a)
	if pick(0) != b || pick(1) != b {
		t.Fatal("disabled relay chosen")
	}
	now = now.Add(2 * time.Minute) // recheck due, still failing
	if pick(0) != b || a.Enabled() {
		t.Fatal("failing relay enabled")
	}
	failing[a.URL] = false
	now = now.Add(2 * time.Minute)
	if pick(0) != a {
		t.Fatal("recovered relay not chosen again")
	}
	a.SetEnabled(false) // rpc: disabled for ever, never tested
	b.SetEnabled(false)
	if n := pick(0); n != nil {
		t.Fatalf("relay %v chosen with every relay disabled by rpc", n.URL)
	}
	if n := s.Select(context.Background(), set, "x", []*Node{a}); n != nil {
		t.Fatal("skipped relay chosen")
	}
}
