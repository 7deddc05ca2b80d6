package ksr

import (
	"fmt"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// This file is Kamailio's format strings (pvapi.c pv_parse_format and
// pv_printf): text in which pseudo-variables ($ru, $(ru), $hdr(From),
// $(hdr(Via)[1]), $var(x), $$ for a dollar sign) are replaced by their
// values, a null one by "<null>". xlog formats its messages with it.

// pvNull is what a null value prints as (Kamailio's pv_str_null).
const pvNull = "<null>"

// fmtItem is one piece of a parsed format: text, then a variable (nil
// spec: text only).
type fmtItem struct {
	text  string
	spec  *pvSpec
	index int  // $(name(inner)[index]): 0 is the first value
	all   bool // [*]: every value, joined by ","
}

// pvFormat is a parsed format string.
type pvFormat struct {
	items []fmtItem
}

// maxFormats bounds the per-VM cache of parsed formats.
const maxFormats = 1024

// Format evaluates the Kamailio format string text for the current
// message, as pv_printf does: each pseudo-variable is replaced by its
// value and a null one by "<null>". The parse is cached per VM. It fails
// as pv_parse_format does: on an unknown pseudo-variable, a '$' without a
// name, an unbalanced bracket, or a transformation ({...}, which kemi
// does not have).
func (e *Env) Format(text string) (string, error) {
	f, err := e.parseFormat(text)
	if err != nil {
		return "", err
	}
	if len(f.items) == 1 && f.items[0].spec == nil {
		return f.items[0].text, nil
	}
	var b strings.Builder
	b.Grow(len(text) + 64)
	for i := range f.items {
		it := &f.items[i]
		b.WriteString(it.text)
		if it.spec != nil {
			b.WriteString(e.formatValue(it))
		}
	}
	return b.String(), nil
}

func (e *Env) parseFormat(text string) (*pvFormat, error) {
	if f, ok := e.fmtCache[text]; ok {
		return f, nil
	}
	f, err := parseFormat(text, e.D.PVs)
	if err != nil {
		return nil, err
	}
	for i := range f.items {
		if sp := f.items[i].spec; sp != nil {
			sp.own = true // this VM's (pvSpec.str)
		}
	}
	if e.fmtCache == nil {
		e.fmtCache = map[string]*pvFormat{}
	}
	if len(e.fmtCache) < maxFormats {
		e.fmtCache[text] = f
	}
	return f, nil
}

func (e *Env) formatValue(it *fmtItem) string {
	if it.spec.name == "$" {
		return "$"
	}
	if it.spec.name == "hdr" && (it.index != 0 || it.all) {
		return e.hdrIndexed(it)
	}
	if it.index != 0 {
		return pvNull // kemi's other variables have one value
	}
	v := it.spec.get(e, it.spec)
	switch x := v.(type) {
	case lua.LString:
		return string(x)
	case lua.LNumber:
		return strconv.FormatInt(int64(x), 10)
	case *lua.LNilType:
		if it.spec.name == "var" || it.spec.name == "shv" {
			return "0" // an unset script or shared variable is 0 in Kamailio
		}
		return pvNull
	}
	return v.String()
}

// hdrIndexed is $(hdr(name)[i]) (i < 0 counts from the last) and
// $(hdr(name)[*]) (every value, joined by ","), as pv_get_hdr_helper.
func (e *Env) hdrIndexed(it *fmtItem) string {
	m := e.Msg.SIP()
	name, ok := e.argName(it.spec)
	if m == nil || !ok {
		return pvNull
	}
	hs := m.GetHeaders(name)
	if len(hs) == 0 {
		return pvNull
	}
	if it.all {
		vals := make([]string, len(hs))
		for i, h := range hs {
			vals[i] = h.Value()
		}
		return strings.Join(vals, ",")
	}
	i := it.index
	if i < 0 {
		i += len(hs)
	}
	if i < 0 || i >= len(hs) {
		return pvNull
	}
	return hs[i].Value()
}

// isPVChar is Kamailio's is_pv_valid_char.
func isPVChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// parseFormat splits text into text and variables, as pv_parse_format
// with pv_parse_spec2 does.
func parseFormat(text string, mods map[string]*PV) (*pvFormat, error) {
	f := &pvFormat{}
	for p := 0; ; {
		i := strings.IndexByte(text[p:], '$')
		if i < 0 {
			if p < len(text) || len(f.items) == 0 {
				f.items = append(f.items, fmtItem{text: text[p:]})
			}
			return f, nil
		}
		it := fmtItem{text: text[p : p+i]}
		n, err := parseFormatPV(text[p+i:], mods, &it)
		if err != nil {
			return nil, err
		}
		f.items = append(f.items, it)
		p += i + n
		if p == len(text) {
			return f, nil
		}
	}
}

// parseFormatPV parses the variable at the start of s (s[0] is '$') into
// it and returns its length.
func parseFormatPV(s string, mods map[string]*PV, it *fmtItem) (int, error) {
	bad := func(why string) (int, error) {
		return 0, fmt.Errorf("invalid pseudo-variable in %q: %s", s, why)
	}
	p := 1
	paren := p < len(s) && s[p] == '('
	if paren {
		p++
	}
	if p < len(s) && s[p] == '$' { // $$ or $($)
		p++
		if paren {
			if p >= len(s) || s[p] != ')' {
				return bad("expected ')' after $($")
			}
			p++
		}
		it.spec = &pvSpec{name: "$"}
		return p, nil
	}
	start := p
	for p < len(s) && isPVChar(s[p]) {
		p++
	}
	class := s[start:p]
	if class == "" {
		return bad("no name after '$'")
	}
	inner := ""
	if p < len(s) && s[p] == '(' {
		q, depth := p+1, 0
		for ; q < len(s); q++ {
			if s[q] == ')' {
				if depth == 0 {
					break
				}
				depth--
			}
			if s[q] == '(' {
				depth++
			}
		}
		if q >= len(s) {
			return bad("missing ')'")
		}
		if q == p+1 {
			return bad("empty inner name")
		}
		inner = s[p+1 : q]
		p = q + 1
	} else if paren && p < len(s) && s[p] != ')' && s[p] != '[' && s[p] != '{' {
		return bad(fmt.Sprintf("invalid char %q", s[p]))
	}
	if paren {
		if p < len(s) && s[p] == '[' {
			q := strings.IndexByte(s[p:], ']')
			if q < 0 {
				return bad("missing ']'")
			}
			idx := s[p+1 : p+q]
			switch n, err := strconv.Atoi(idx); {
			case idx == "*":
				it.all = true
			case err == nil:
				it.index = n
			default:
				return bad("invalid index " + strconv.Quote(idx) + " (kemi takes a number or *)")
			}
			p += q + 1
		}
		if p < len(s) && s[p] == '{' {
			return bad("transformations are not supported in kemi")
		}
		if p >= len(s) || s[p] != ')' {
			return bad("missing ')'")
		}
		p++
	}
	name := "$" + class
	if inner != "" {
		name += "(" + inner + ")"
	}
	spec, err := parsePV(name, mods)
	if err != nil {
		return 0, err
	}
	if class == "var" || class == "shv" {
		// pv_parse_var_name and pv_parse_shvar_name take the inner name
		// as written: $var($var(n)) is the variable named "$var(n)".
		spec.dyn = ""
	}
	it.spec = spec
	return p, nil
}

// PVValue returns the value of the pseudo-variable name (string or
// number), nil when it is null or does not parse.
func (e *Env) PVValue(name string) lua.LValue {
	s, err := e.pvParse(name)
	if err != nil {
		return lua.LNil
	}
	return s.get(e, s)
}

// PVIn returns the value of the pseudo-variable name evaluated on msg
// instead of the current message (tmx's $T_req and $T_rpl).
func (e *Env) PVIn(msg *Msg, name string) lua.LValue {
	saved := e.Msg
	e.Msg = msg
	defer func() { e.Msg = saved }()
	return e.PVValue(name)
}
