package luavm

import (
	"reflect"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
)

// Key interning: a speed-up of every KSR.<module>.<function> lookup.
//
// gopher-lua looks a global or a field up in the table's Go map with the
// string constant of the compiled script ("KSR", "mqueue", "mq_add"). Go's
// string comparison returns at once when both strings share their bytes,
// and compares them byte by byte otherwise. Two steps make them share:
// internAST gives every occurrence of a string in a generation's scripts
// the same bytes (the parser makes a string per token, so each function
// had its own "KSR"), and internKeys re-keys the tables built in Go (KSR
// and its module tables, the standard libraries), whose keys never share
// their bytes with a script's, with the scripts' constants of the same
// content. Strings keep their content, tables their values and iteration
// order: nothing a script can observe changes.

// internAST replaces every string of the syntax tree (names, string
// literals, field names) by the first string of the same content seen in
// canon, so that equal constants of all the functions of all the scripts
// share their bytes. It walks the tree's exported fields by reflection:
// strings it cannot set are left as they are.
func internAST(chunk []ast.Stmt, canon map[string]string) {
	internValue(reflect.ValueOf(chunk), canon)
}

func internValue(v reflect.Value, canon map[string]string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			internValue(v.Elem(), canon)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			internValue(v.Field(i), canon)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			internValue(v.Index(i), canon)
		}
	case reflect.String:
		if !v.CanSet() {
			return
		}
		s := v.String()
		if c, ok := canon[s]; ok {
			v.SetString(c)
		} else {
			canon[s] = s
		}
	}
}

// internDepth is how deep below _G tables are re-keyed: _G's keys (KSR,
// string), their tables' keys (KSR.mqueue, KSR.is_INVITE, string.format)
// and one level more (KSR.mqueue.mq_add).
const internDepth = 2

// constStrings returns the string constants of the scripts, nested
// functions included, by content; the first occurrence of each content wins.
func constStrings(g *Generation) map[string]string {
	out := map[string]string{}
	var walk func(p *lua.FunctionProto)
	walk = func(p *lua.FunctionProto) {
		for _, c := range p.Constants {
			if s, ok := c.(lua.LString); ok {
				if _, dup := out[string(s)]; !dup {
					out[string(s)] = string(s)
				}
			}
		}
		for _, f := range p.FunctionPrototypes {
			walk(f)
		}
	}
	for _, s := range g.Scripts {
		walk(s.Proto)
	}
	return out
}

// internKeys re-keys the string keys of _G and of the tables below it (to
// internDepth) that have a constant of the same content in consts but other
// bytes: the value moves to the constant's key.
func internKeys(L *lua.LState, consts map[string]string) {
	if len(consts) == 0 {
		return
	}
	seen := map[*lua.LTable]bool{}
	type rekey struct {
		key string
		val lua.LValue
	}
	var moves []rekey
	var walk func(t *lua.LTable, depth int)
	walk = func(t *lua.LTable, depth int) {
		if seen[t] {
			return
		}
		seen[t] = true
		moves = moves[:0]
		var sub []*lua.LTable
		t.ForEach(func(k, v lua.LValue) {
			if ks, ok := k.(lua.LString); ok {
				if c, ok := consts[string(ks)]; ok && unsafe.StringData(c) != unsafe.StringData(string(ks)) {
					moves = append(moves, rekey{c, v})
				}
			}
			if vt, ok := v.(*lua.LTable); ok && depth < internDepth {
				sub = append(sub, vt)
			}
		})
		for _, m := range moves {
			// Deleting first makes the map take the constant as its key;
			// the table's iteration order (its keys list) is unchanged.
			t.RawSetString(m.key, lua.LNil)
			t.RawSetString(m.key, m.val)
		}
		for _, s := range sub {
			walk(s, depth+1)
		}
	}
	walk(L.G.Global, 0)
}
