package queues_test

import (
	"testing"

	"kemi/queues"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec string
		want queues.Options
	}{
		{"name=q", queues.Options{Name: "q"}},
		{"name=q;", queues.Options{Name: "q"}},
		{"name=myq;size=20;", queues.Options{Name: "myq", Size: 20}},
		{"NAME=MyQ;SIZE=10;DbMode=1;AddMode=2", queues.Options{Name: "MyQ", Size: 10, DBMode: 1, AddMode: 2}},
		{" name = q ; size = 3 ; ", queues.Options{Name: "q", Size: 3}},
		{"size=5;name=q;dbmode=4;addmode=1", queues.Options{Name: "q", Size: 5, DBMode: 4, AddMode: 1}},
		{"name=q;size=0", queues.Options{Name: "q"}},
		{"name=q;size=-1", queues.Options{Name: "q", Size: -1}},
		{"name=q;size=+7", queues.Options{Name: "q", Size: 7}},
		{"name=q;dbmode=0;addmode=0", queues.Options{Name: "q"}},
		{"name=q;dbmode=3", queues.Options{Name: "q", DBMode: 3}},
		{"name=a=b", queues.Options{Name: "a=b"}},
		{"name=odd \"name\".x", queues.Options{Name: `odd "name".x`}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := queues.ParseSpec(tt.spec)
			if err != nil || got != tt.want {
				t.Fatalf("ParseSpec(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
			}
		})
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct{ spec, msg string }{
		{"", `empty attribute in ""`},
		{";", `empty attribute in ";"`},
		{"name=q;;size=1", `empty attribute in "name=q;;size=1"`},
		{"size=1", "name is missing"},
		{"name=", "name is missing"},
		{"name=q;name=r", `name "r": key given twice`},
		{"name=q;Size=1;SIZE=2", `size "2": key given twice`},
		{"name=q;size", `attribute "size": missing '='`},
		{"name=q;foo=1", `unknown key "foo" (value "1")`},
		{"name=q;size=abc", `size "abc": not a number`},
		{"name=q;size=", `size "": not a number`},
		{"name=q;size=1.5", `size "1.5": not a number`},
		{"name=q;size=99999999999999999999", `size "99999999999999999999": out of range`},
		{"name=q;dbmode=x", `dbmode "x": not a number`},
		{"name=q;dbmode=5", "dbmode 5: must be 0..4"},
		{"name=q;dbmode=-1", "dbmode -1: must be 0..4"},
		{"name=q;addmode=3", "addmode 3: must be 0..2"},
		{"name=q;addmode=-1", "addmode -1: must be 0..2"},
		{"name=q;addmode=1x", `addmode "1x": not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := queues.ParseSpec(tt.spec)
			if err == nil {
				t.Fatalf("ParseSpec(%q) = %+v, want error %q", tt.spec, got, tt.msg)
			}
			if err.Error() != tt.msg {
				t.Fatalf("ParseSpec(%q) error %q, want %q", tt.spec, err, tt.msg)
			}
		})
	}
}
