package ksr

import "testing"

func TestParseQ(t *testing.T) {
	for _, tc := range []struct {
		in string
		q  int
		ok bool
	}{
		{"0", 0, true}, {"1", 1000, true}, {"1.0", 1000, true}, {"1.000", 1000, true},
		{"0.5", 500, true}, {".25", 250, true}, {" 0.1", 100, true}, {"0.12345", 123, true},
		{"0.9999", 999, true}, {"001", 1000, true}, {"00.7", 700, true},
		{"", 0, false}, {" ", 0, false}, {"2", 0, false}, {"1.5", 0, false}, {"1.", 0, false},
		{"0.", 0, false}, {".", 0, false}, {"0.5x", 0, false}, {"1e-1", 0, false}, {"+0.5", 0, false},
		{"-1", 0, false}, {"10", 0, false},
	} {
		q, ok := ParseQ(tc.in)
		if ok != tc.ok || (ok && q != tc.q) {
			t.Errorf("ParseQ(%q) = %d, %v; want %d, %v", tc.in, q, ok, tc.q, tc.ok)
		}
	}
}

func TestQString(t *testing.T) {
	for q, want := range map[int]string{1000: "1", 0: "0", 500: "0.5", 250: "0.25", 1: "0.001", 120: "0.12", -1: "0"} {
		if got := QString(q); got != want {
			t.Errorf("QString(%d) = %q, want %q", q, got, want)
		}
	}
}

func TestMethodSet(t *testing.T) {
	bits, ok := MethodSet("INVITE, ack,BYE ,CANCEL,MESSAGE,FOO")
	if want := MethodInvite | MethodAck | MethodBye | MethodCancel | MethodMessage | MethodOther; !ok || bits != want {
		t.Errorf("MethodSet = %b, %v; want %b", bits, ok, want)
	}
	if _, ok := MethodSet("INVITE,,BYE"); ok {
		t.Error("an empty item was accepted")
	}
	if MethodBit("PUBLISH") != 8192 || MethodBit("OPTIONS") != 512 || MethodBit("DELETE") != 262144 {
		t.Error("method bits differ from Kamailio's enum request_method")
	}
}
