package htable_test

import (
	"strings"
	"testing"

	"kemi/modules/htable"
)

// TestParseSpec parses table definitions as ht_table_spec does.
func TestParseSpec(t *testing.T) {
	cases := []struct {
		in   string
		want htable.Spec
		err  string
	}{
		{"ipban=>size=8;autoexpire=300;", htable.Spec{Name: "ipban", Size: 256, AutoExpire: 300, UpdateExpire: true}, ""},
		{"  t =>  size=4", htable.Spec{Name: "t", Size: 16, UpdateExpire: true}, ""},
		{"t=>", htable.Spec{Name: "t", Size: 16, UpdateExpire: true}, ""},
		{"t=>size=1", htable.Spec{Name: "t", Size: 8, UpdateExpire: true}, ""},
		{"t=>size=0", htable.Spec{Name: "t", Size: 8, UpdateExpire: true}, ""},
		{"t=>size=40", htable.Spec{Name: "t", Size: 1 << 14, UpdateExpire: true}, ""},
		{"t=>initval=-3;updateexpire=0", htable.Spec{Name: "t", Size: 16, HasInit: true, InitVal: -3}, ""},
		{"t=>dbtable=htable;dbmode=1", htable.Spec{Name: "t", Size: 16, UpdateExpire: true, DBTable: "htable", DBMode: 1}, ""},
		{"t=>dmqreplicate=1", htable.Spec{Name: "t", Size: 16, UpdateExpire: true, DMQReplicate: 1}, ""},
		{"", htable.Spec{}, "missing table name"},
		{"t", htable.Spec{}, "missing table name"},
		{"t=size=4", htable.Spec{}, `missing "=>"`},
		{"t=>size=x", htable.Spec{}, "not an unsigned integer"},
		{"t=>autoexpire=-1", htable.Spec{}, "not an unsigned integer"},
		{"t=>initval=a", htable.Spec{}, "not an integer"},
		{"t=>color=red", htable.Spec{}, `unknown parameter "color"`},
		{"t=>size", htable.Spec{}, "invalid parameter"},
		{"t=>cols='a,b'", htable.Spec{}, "not supported"},
		{"t=>size=24", htable.Spec{}, "too many"},
	}
	for _, c := range cases {
		got, err := htable.ParseSpec(c.in)
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParseSpec(%q) error = %v, want %q", c.in, err, c.err)
		case c.err == "" && err != nil:
			t.Errorf("ParseSpec(%q): %v", c.in, err)
		case c.err == "" && got != c.want:
			t.Errorf("ParseSpec(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
}
