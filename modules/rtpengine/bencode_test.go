package rtpengine

import (
	"strings"
	"testing"
)

func TestBencodeRoundTrip(t *testing.T) {
	d := &dict{}
	d.add("supports", []string{"load limit"})
	d.add("TOS", 184)
	codec := &dict{}
	l := []string{"8"}
	codec.add("strip", &l)
	d.add("codec", codec)
	d.add("command", "offer")
	got := string(d.encode(nil))
	want := "d8:supportsl10:load limite3:TOSi184e5:codecd5:stripl1:8ee7:command5:offere"
	if got != want {
		t.Fatalf("encode: %q, want %q", got, want)
	}
	v, err := decodeDict([]byte(got))
	if err != nil || v["command"] != "offer" || v["TOS"] != int64(184) {
		t.Fatalf("decode: %v %v", v, err)
	}
}

// TestBencodeBadInput: a relay's reply that is not bencode is an error,
// never a panic.
func TestBencodeBadInput(t *testing.T) {
	for _, in := range []string{"", "d", "l", "i", "ie", "i12", "5:ab", "-1:", "d3:abce", "d1:ai1e", "di1ei2ee",
		"x", "99999999999999999999:", "l" + strings.Repeat("l", 100), "d6:result"} {
		if _, err := decodeDict([]byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

// TestFlags checks parse_flags' corner cases: an empty via-branch is an
// error, force-answer outside an offer is an error, delete-delay is both
// an integer and a generic entry.
func TestFlags(t *testing.T) {
	op := opAnswer
	f := &ngFlags{d: &dict{}, codec: &dict{}, codecLists: map[string]*[]string{}}
	if err := f.parse("force-answer", &op); err == nil {
		t.Error("force-answer in an answer accepted")
	}
	if err := f.parse("via-branch=", &op); err == nil {
		t.Error("empty via-branch accepted")
	}
	f = &ngFlags{d: &dict{}}
	op = opDelete
	if err := f.parse("delete-delay=5  replace-origin  foo=bar baz", &op); err != nil {
		t.Fatal(err)
	}
	if got := string(f.d.encode(nil)); got != "d12:delete delayi5e12:delete-delay1:53:foo3:bare" {
		t.Errorf("dict %q", got)
	}
	if strings.Join(f.flags, ",") != "baz" || len(f.replace) != 1 {
		t.Errorf("flags %q replace %q", f.flags, f.replace)
	}
	op = opOffer
	if err := f.parse("force-answer", &op); err != nil || op != opAnswer {
		t.Errorf("force-answer: %v %s", err, op)
	}
}
