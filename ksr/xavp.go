package ksr

import (
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// XAVP is one item of an extended AVP ($xavp): a single value, or a list of
// named fields (Fields non-nil), newest first, as Kamailio's sr_xavp_t.
type XAVP struct {
	Val    any // string or int64, when Fields is nil
	Fields []XField
}

// XField is one field of an XAVP list item.
type XField struct {
	Key string
	Val any // string or int64
}

// xavpName is a parsed $xavp inner name: x, x[i], x=>k, x[i]=>k[j].
type xavpName struct {
	name, key     string
	idx, kidx     int
	hasIdx, all   bool // root index given, or [*]
	hasKIdx, kall bool // field index given, or [*]
}

// parseIndexed splits "name[i]" into the name and its index.
func parseIndexed(s string) (name string, idx int, has, all, ok bool) {
	s = strings.TrimSpace(s)
	i := strings.IndexByte(s, '[')
	if i < 0 {
		return s, 0, false, false, s != ""
	}
	if !strings.HasSuffix(s, "]") || i == 0 {
		return "", 0, false, false, false
	}
	in := s[i+1 : len(s)-1]
	if in == "*" {
		return s[:i], 0, true, true, true
	}
	n, err := strconv.Atoi(in)
	if err != nil {
		return "", 0, false, false, false
	}
	return s[:i], n, true, false, true
}

func parseXavpName(arg string) (xavpName, bool) {
	var x xavpName
	root, field, hasField := strings.Cut(arg, "=>")
	var ok bool
	if x.name, x.idx, x.hasIdx, x.all, ok = parseIndexed(root); !ok {
		return x, false
	}
	if hasField {
		if x.key, x.kidx, x.hasKIdx, x.kall, ok = parseIndexed(field); !ok {
			return x, false
		}
	}
	return x, true
}

// fixIdx turns a negative index into one from the start (Kamailio's
// count + idx + 1 for removal, count + idx for a get).
func fixIdx(i, n int) int {
	if i < 0 {
		return n + i
	}
	return i
}

// pvXavp is $xavp(...) (pv_xavp.c pv_get_xavp): the value of item idx of
// name (0 the newest), or of field key (its kidx-th value) in that item.
// An item that is a field list read without a key gives nil (Kamailio
// prints its address).
func pvXavp(e *Env, s *pvSpec) lua.LValue {
	x, ok := parseXavpName(s.arg)
	if !ok || e.Msg == nil {
		return lua.LNil
	}
	items := e.Msg.XAVPs[x.name]
	i := fixIdx(x.idx, len(items))
	if x.all || i < 0 || i >= len(items) {
		return lua.LNil
	}
	it := items[i]
	if x.key == "" {
		if it.Fields != nil {
			return lua.LNil
		}
		return fromGo(it.Val)
	}
	var vals []any
	for _, f := range it.Fields {
		if f.Key == x.key {
			vals = append(vals, f.Val)
		}
	}
	j := fixIdx(x.kidx, len(vals))
	if x.kall || j < 0 || j >= len(vals) {
		return lua.LNil
	}
	return fromGo(vals[j])
}

// setXavp is pv_set_xavp: see Kamailio's pv module documentation for
// $xavp. Without a root index a value adds a new item on top; with one it
// changes that item; a null value removes the newest (or the indexed, or
// with [*] every) item or field.
func setXavp(e *Env, s *pvSpec, v lua.LValue) bool {
	x, ok := parseXavpName(s.arg)
	if !ok || e.Msg == nil {
		return false
	}
	if e.Msg.XAVPs == nil {
		e.Msg.XAVPs = map[string][]*XAVP{}
	}
	items := e.Msg.XAVPs[x.name]
	g := toGo(v)
	if g == nil {
		if x.key == "" {
			switch i := fixIdx(x.idx, len(items)); {
			case x.all:
				items = nil
			case i >= 0 && i < len(items):
				items = append(items[:i:i], items[i+1:]...)
			}
			e.Msg.XAVPs[x.name] = items
			return true
		}
		for i, it := range items {
			if x.all || i == fixIdx(x.idx, len(items)) {
				it.Fields = removeField(it.Fields, x)
			}
		}
		return true
	}
	if x.key == "" {
		if !x.hasIdx {
			e.Msg.XAVPs[x.name] = append([]*XAVP{{Val: g}}, items...)
			return true
		}
		i := fixIdx(x.idx, len(items))
		if x.all || i < 0 || i >= len(items) {
			return false
		}
		items[i] = &XAVP{Val: g}
		return true
	}
	if !x.hasIdx {
		e.Msg.XAVPs[x.name] = append([]*XAVP{{Fields: []XField{{Key: x.key, Val: g}}}}, items...)
		return true
	}
	i := fixIdx(x.idx, len(items))
	if x.all || i < 0 || i >= len(items) {
		return true // Kamailio: nothing to set, success
	}
	it := items[i]
	if it.Fields == nil {
		return false
	}
	if !x.hasKIdx {
		it.Fields = append([]XField{{Key: x.key, Val: g}}, it.Fields...)
		return true
	}
	if x.kall {
		return true
	}
	n := 0
	for _, f := range it.Fields {
		if f.Key == x.key {
			n++
		}
	}
	j, k := fixIdx(x.kidx, n), 0
	for fi := range it.Fields {
		if it.Fields[fi].Key != x.key {
			continue
		}
		if k == j {
			it.Fields[fi].Val = g
			break
		}
		k++
	}
	return true
}

// removeField removes the newest (or the kidx-th, or with [*] every) field
// named x.key.
func removeField(fs []XField, x xavpName) []XField {
	n := 0
	for _, f := range fs {
		if f.Key == x.key {
			n++
		}
	}
	j := 0
	if x.hasKIdx {
		j = fixIdx(x.kidx, n)
	}
	out := fs[:0:0]
	k := 0
	for _, f := range fs {
		if f.Key == x.key {
			drop := x.kall || k == j
			k++
			if drop {
				continue
			}
		}
		out = append(out, f)
	}
	return out
}

// pvXavu is $xavu(name) and $xavu(name=>key) (pv_xavp.c pv_get_xavu): the
// single value of name, or of its field key; an item holding fields read
// without a key gives nil (Kamailio prints its address).
func pvXavu(e *Env, s *pvSpec) lua.LValue {
	root, key, _ := strings.Cut(s.arg, "=>")
	if e.Msg == nil {
		return lua.LNil
	}
	it := e.Msg.XAVUs[strings.TrimSpace(root)]
	switch {
	case it == nil:
		return lua.LNil
	case key == "":
		if it.Fields != nil {
			return lua.LNil
		}
		return fromGo(it.Val)
	}
	for _, f := range it.Fields {
		if f.Key == strings.TrimSpace(key) {
			return fromGo(f.Val)
		}
	}
	return lua.LNil
}

// setXavu is pv_set_xavu: a value replaces name's (or its field key's,
// name becoming a field list when it was not one); a null value removes
// name, or its field key.
func setXavu(e *Env, s *pvSpec, v lua.LValue) bool {
	root, key, hasKey := strings.Cut(s.arg, "=>")
	root, key = strings.TrimSpace(root), strings.TrimSpace(key)
	if e.Msg == nil || root == "" || (hasKey && key == "") {
		return false
	}
	if e.Msg.XAVUs == nil {
		e.Msg.XAVUs = map[string]*XAVP{}
	}
	g := toGo(v)
	it := e.Msg.XAVUs[root]
	switch {
	case g == nil && !hasKey:
		delete(e.Msg.XAVUs, root)
	case g == nil:
		if it != nil && it.Fields != nil {
			it.Fields = removeField(it.Fields, xavpName{key: key, kall: true})
		}
	case !hasKey:
		e.Msg.XAVUs[root] = &XAVP{Val: g}
	default:
		if it == nil || it.Fields == nil {
			it = &XAVP{Fields: []XField{}}
			e.Msg.XAVUs[root] = it
		}
		it.Fields = removeField(it.Fields, xavpName{key: key, kall: true})
		it.Fields = append([]XField{{Key: key, Val: g}}, it.Fields...)
	}
	return true
}
