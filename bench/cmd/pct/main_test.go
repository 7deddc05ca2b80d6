package main

import "testing"

func TestRank(t *testing.T) {
	vals := make([]float64, 1000)
	for i := range vals {
		vals[i] = float64(i + 1)
	}
	for _, c := range []struct{ p, want float64 }{{50, 500}, {90, 900}, {99, 990}, {99.9, 999}, {100, 1000}, {0, 1}} {
		if got := rank(vals, c.p); got != c.want {
			t.Errorf("rank(1..1000, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := rank([]float64{7}, 99); got != 7 {
		t.Errorf("rank([7], 99) = %v, want 7", got)
	}
}
