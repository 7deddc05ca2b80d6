package pike

import (
	"fmt"
	"strings"
	"testing"
)

// run checks ip n times at tick and returns the codes, compressed as
// "code×count" runs ("1x38 -2x1 -1x3").
func run(t *tree, ip []byte, tick int64, n int) string {
	var out []string
	last, cnt := 0, 0
	for range n {
		c, _ := t.check(ip, tick)
		if cnt > 0 && c != last {
			out = append(out, fmt.Sprintf("%dx%d", last, cnt))
			cnt = 0
		}
		last = c
		cnt++
	}
	return strings.Join(append(out, fmt.Sprintf("%dx%d", last, cnt)), " ")
}

var ip1 = []byte{10, 0, 0, 1}

// TestTreeCodes follows mark_node: the prefix nodes of an address grow one
// byte per request once a quarter of the density is reached, then the full
// address counts leaf hits and turns red at the density.
func TestTreeCodes(t *testing.T) {
	cases := []struct {
		name                   string
		density, unit, latency int
		steps                  []struct {
			ip    []byte
			tick  int64
			n     int
			codes string
		}
	}{
		{"default density: the 39th request in a unit is blocked", 30, 2, 120, []struct {
			ip    []byte
			tick  int64
			n     int
			codes string
		}{{ip1, 0, 42, "1x38 -2x1 -1x3"}}},
		{"density 5: 4 requests build the path, 5 leaf hits", 5, 2, 120, []struct {
			ip    []byte
			tick  int64
			n     int
			codes string
		}{{ip1, 0, 10, "1x8 -2x1 -1x1"}}},
		{"red while the previous unit was hot, then unblocked", 5, 2, 120, []struct {
			ip    []byte
			tick  int64
			n     int
			codes string
		}{{ip1, 0, 9, "1x8 -2x1"}, {ip1, 2, 1, "-1x1"}, {ip1, 4, 1, "1x1"}}},
		{"the average of two units counts", 4, 10, 120, []struct {
			ip    []byte
			tick  int64
			n     int
			codes string
		}{{ip1, 0, 7, "1x7"}, {ip1, 10, 1, "1x1"}, {ip1, 10, 3, "1x2 -2x1"}}},
		{"a neighbour shares the hot prefix", 5, 2, 120, []struct {
			ip    []byte
			tick  int64
			n     int
			codes string
		}{{ip1, 0, 9, "1x8 -2x1"}, {[]byte{10, 0, 0, 2}, 0, 6, "1x5 -2x1"}}},
		{"IPv6 has 16 bytes to grow", 5, 2, 120, []struct {
			ip    []byte
			tick  int64
			n     int
			codes string
		}{{[]byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0, 21, "1x20 -2x1"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTree(c.density, c.unit, c.latency)
			for i, s := range c.steps {
				if got := run(tr, s.ip, s.tick, s.n); got != s.codes {
					t.Fatalf("step %d: %d checks of %v at tick %d: %s, want %s", i, s.n, s.ip, s.tick, got, s.codes)
				}
			}
		})
	}
}

// TestTreeRemoval: idle nodes go remove_latency seconds after their last
// hit; a prefix left without kids follows one latency later.
func TestTreeRemoval(t *testing.T) {
	tr := newTree(5, 2, 10)
	run(tr, ip1, 0, 5) // path 10.0.0.1 built: 4 nodes, the leaf in the timer
	if n := tr.nodes(); n != 4 {
		t.Fatalf("%d nodes, want 4", n)
	}
	tr.sweep(9)
	if n := tr.nodes(); n != 4 {
		t.Fatalf("tick 9: %d nodes, want 4", n)
	}
	tr.sweep(10) // the leaf expires at 10; its father (10.0.0) at 20, ...
	if n := tr.nodes(); n != 3 {
		t.Fatalf("tick 10: %d nodes, want 3", n)
	}
	tr.sweep(40)
	if n := tr.nodes(); n != 0 {
		t.Fatalf("tick 40: %d nodes, want 0", n)
	}
	// Rebuilt from scratch: the path must grow again.
	if got := run(tr, ip1, 40, 9); got != "1x8 -2x1" {
		t.Fatalf("after removal: %s", got)
	}
}
