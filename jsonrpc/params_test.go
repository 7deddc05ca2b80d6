package jsonrpc

import (
	"encoding/json"
	"strconv"
	"testing"
)

func mustParams(t *testing.T, doc string) Params {
	t.Helper()
	p, err := parseParams(json.RawMessage(doc))
	if err != nil {
		t.Fatalf("parseParams(%s): %v", doc, err)
	}
	return p
}

func TestParamsString(t *testing.T) {
	tests := []struct {
		param string
		want  string
		ok    bool
	}{
		{`"abc"`, "abc", true},
		{`""`, "", true},
		{`"a\"b\u00e9\n"`, "a\"bé\n", true},
		{`123`, "", false},
		{`1.5`, "", false},
		{`true`, "", false},
		{`null`, "", false},
		{`["a"]`, "", false},
		{`{"a":"b"}`, "", false},
	}
	for _, tt := range tests {
		p := mustParams(t, "["+tt.param+"]")
		got, ok := p.String(0)
		if got != tt.want || ok != tt.ok {
			t.Errorf("String(%s) = %q, %v; want %q, %v", tt.param, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParamsInt(t *testing.T) {
	tests := []struct {
		param string
		want  int
		ok    bool
	}{
		{`12`, 12, true},
		{`-12`, -12, true},
		{`0`, 0, true},
		{`-0`, 0, true},
		{`12.0`, 12, true},
		{`1e3`, 1000, true},
		{`1E+2`, 100, true},
		{`9223372036854775807`, 9223372036854775807, true},
		{`-9223372036854775808`, -9223372036854775808, true},
		{`9223372036854775808`, 0, false},
		{`1e19`, 0, false},
		{`-1e19`, 0, false},
		{`12.5`, 0, false},
		{`1e-3`, 0, false},
		{`"12"`, 12, true},
		{`"-3"`, -3, true},
		{`"+3"`, 3, true},
		{`"12.0"`, 0, false},
		{`" 12"`, 0, false},
		{`"x"`, 0, false},
		{`""`, 0, false},
		{`true`, 0, false},
		{`null`, 0, false},
		{`[1]`, 0, false},
	}
	if strconv.IntSize != 64 {
		t.Skip("table assumes 64-bit int")
	}
	for _, tt := range tests {
		p := mustParams(t, "["+tt.param+"]")
		got, ok := p.Int(0)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Int(%s) = %d, %v; want %d, %v", tt.param, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParamsPositions(t *testing.T) {
	p := mustParams(t, ` { "name" : "q" , "n" : 3 , "x" : [ 1 , 2 ] } `)
	if p.Len() != 3 {
		t.Fatalf("Len = %d", p.Len())
	}
	if s, ok := p.String(0); !ok || s != "q" {
		t.Errorf("String(0) = %q %v", s, ok)
	}
	if n, ok := p.Int(1); !ok || n != 3 {
		t.Errorf("Int(1) = %d %v", n, ok)
	}
	var xs []int
	if err := json.Unmarshal(p.Raw(2), &xs); err != nil || len(xs) != 2 {
		t.Errorf("Raw(2) = %s", p.Raw(2))
	}
	for _, i := range []int{-1, 3, 100} {
		if p.Raw(i) != nil {
			t.Errorf("Raw(%d) not nil", i)
		}
		if _, ok := p.String(i); ok {
			t.Errorf("String(%d) ok", i)
		}
		if _, ok := p.Int(i); ok {
			t.Errorf("Int(%d) ok", i)
		}
	}
	var zero Params
	if zero.Len() != 0 || zero.Raw(0) != nil {
		t.Error("zero Params not empty")
	}
	for _, bad := range []string{`null`, `"a"`, `1`, `true`, ``, `  `} {
		if _, err := parseParams(json.RawMessage(bad)); err == nil {
			t.Errorf("parseParams(%q) accepted", bad)
		}
	}
}

func TestNewParams(t *testing.T) {
	p, err := NewParams("a", 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := p.String(0); !ok || s != "a" {
		t.Errorf("String(0) = %q", s)
	}
	if n, ok := p.Int(1); !ok || n != 5 {
		t.Errorf("Int(1) = %d", n)
	}
	if string(p.Raw(2)) != "null" {
		t.Errorf("Raw(2) = %s", p.Raw(2))
	}
	if _, err := NewParams(func() {}); err == nil {
		t.Error("func param accepted")
	}
}
