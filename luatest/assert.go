package luatest

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Assertions take the value under test first and the expected one second
// (t.equal(res.code, 200)), as luaunit and Go's got/want do, and an optional
// message last. A failure stops the test and reports the file:line of the
// assert call with both values.

// raise stops the running test with fl, located at the caller of the
// assertion (the Lua function that called t.equal, ...).
func (f *fileRun) raise(L *lua.LState, fl *Failure) {
	if dbg, ok := L.GetStack(1); ok {
		if _, err := L.GetInfo("Sl", dbg, lua.LNil); err == nil && dbg.CurrentLine > 0 {
			fl.File, fl.Line = dbg.Source, dbg.CurrentLine
		}
	}
	ud := L.NewUserData()
	ud.Value = fl
	L.Error(ud, 0)
}

// message is the optional message argument n, or def.
func message(L *lua.LState, n int, def string) string {
	if s, ok := L.Get(n).(lua.LString); ok && s != "" {
		return string(s) + " (" + def + ")"
	}
	return def
}

// twoArgs insists on both values being passed, so that a forgotten one is
// not silently compared with nil.
func twoArgs(L *lua.LState, fn string) {
	if L.GetTop() < 2 {
		L.RaiseError("t.%s(actual, expected [, message]) needs two values", fn)
	}
}

// t.equal(actual, expected [, msg]): primitive equality (==, no
// metamethods, no string/number coercion).
func (f *fileRun) lEqual(L *lua.LState) int {
	twoArgs(L, "equal")
	a, e := L.Get(1), L.Get(2)
	if !rawEqual(a, e) {
		f.raise(L, &Failure{Message: message(L, 3, "t.equal failed"), Expected: show(e), Actual: show(a), HasValues: true})
	}
	return 0
}

// t.not_equal(actual, unexpected [, msg])
func (f *fileRun) lNotEqual(L *lua.LState) int {
	twoArgs(L, "not_equal")
	a, e := L.Get(1), L.Get(2)
	if rawEqual(a, e) {
		f.raise(L, &Failure{Message: message(L, 3, "t.not_equal failed"), Expected: "anything but " + show(e), Actual: show(a), HasValues: true})
	}
	return 0
}

// t.same(actual, expected [, msg]): deep equality of tables (keys and
// values, recursively; metatables ignored).
func (f *fileRun) lSame(L *lua.LState) int {
	twoArgs(L, "same")
	a, e := L.Get(1), L.Get(2)
	if path, ok := deepEqual(a, e, "", 0); !ok {
		def := "t.same failed"
		if path != "" {
			def += ": first difference at " + path
		}
		f.raise(L, &Failure{Message: message(L, 3, def), Expected: show(e), Actual: show(a), HasValues: true})
	}
	return 0
}

// t.truthy(v [, msg]): v is neither nil nor false.
func (f *fileRun) lTruthy(L *lua.LState) int {
	v := L.Get(1)
	if !lua.LVAsBool(v) {
		f.raise(L, &Failure{Message: message(L, 2, "t.truthy failed"), Expected: "a value other than nil and false", Actual: show(v), HasValues: true})
	}
	return 0
}

// t.falsy(v [, msg]): v is nil or false.
func (f *fileRun) lFalsy(L *lua.LState) int {
	v := L.Get(1)
	if lua.LVAsBool(v) {
		f.raise(L, &Failure{Message: message(L, 2, "t.falsy failed"), Expected: "nil or false", Actual: show(v), HasValues: true})
	}
	return 0
}

// t.error(fn [, substring [, msg]]): fn() raises an error (whose message
// contains substring). Returns the error message.
func (f *fileRun) lError(L *lua.LState) int {
	fn := L.CheckFunction(1)
	want := L.OptString(2, "")
	err := L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true})
	if err == nil {
		f.raise(L, &Failure{Message: message(L, 3, "t.error failed: the function raised no error")})
	}
	got := errorMessage(err)
	if want != "" && !strings.Contains(got, want) {
		f.raise(L, &Failure{Message: message(L, 3, "t.error failed: the error message does not contain the text"),
			Expected: "an error containing " + show(lua.LString(want)), Actual: show(lua.LString(got)), HasValues: true})
	}
	L.Push(lua.LString(got))
	return 1
}

// errorMessage is the text of a Lua error (an assertion failure's too).
func errorMessage(err error) string {
	if ae, ok := err.(*lua.ApiError); ok && ae.Object != nil {
		if ud, ok := ae.Object.(*lua.LUserData); ok {
			if fl, ok := ud.Value.(*Failure); ok {
				return fl.Message
			}
		}
		return ae.Object.String()
	}
	return err.Error()
}

// t.match(s, pattern [, msg]): string.find(s, pattern) finds a match (a Lua
// pattern).
func (f *fileRun) lMatch(L *lua.LState) int {
	twoArgs(L, "match")
	s, pat := L.Get(1), L.CheckString(2)
	ok := false
	if str, isStr := s.(lua.LString); isStr {
		find := L.GetField(L.GetGlobal("string"), "find")
		if err := L.CallByParam(lua.P{Fn: find, NRet: 1, Protect: true}, str, lua.LString(pat)); err != nil {
			L.RaiseError("t.match: bad pattern %q: %s", pat, errorMessage(err))
		}
		ok = L.Get(-1) != lua.LNil
		L.Pop(1)
	}
	if !ok {
		f.raise(L, &Failure{Message: message(L, 3, "t.match failed"), Expected: "a string matching " + show(lua.LString(pat)), Actual: show(s), HasValues: true})
	}
	return 0
}

// t.fail(msg): fail the test here.
func (f *fileRun) lFail(L *lua.LState) int {
	f.raise(L, &Failure{Message: L.OptString(1, "t.fail")})
	return 0
}

// t.skip(reason): stop the test and count it as skipped.
func (f *fileRun) lSkip(L *lua.LState) int {
	ud := L.NewUserData()
	ud.Value = &skipSignal{reason: L.OptString(1, "")}
	L.Error(ud, 0)
	return 0
}

// rawEqual is Lua's primitive equality (no __eq).
func rawEqual(a, b lua.LValue) bool {
	if a.Type() != b.Type() {
		return false
	}
	return a == b
}

// deepEqual compares recursively; it returns the path of the first
// difference ("" for the values themselves).
func deepEqual(a, b lua.LValue, path string, depth int) (string, bool) {
	ta, okA := a.(*lua.LTable)
	tb, okB := b.(*lua.LTable)
	if !okA || !okB {
		if rawEqual(a, b) {
			return "", true
		}
		return path, false
	}
	if ta == tb {
		return "", true
	}
	if depth > 64 {
		return path + " (too deep)", false
	}
	for _, k := range sortedKeys(ta, tb) {
		if p, ok := deepEqual(ta.RawGet(k), tb.RawGet(k), path+keyPath(k), depth+1); !ok {
			return p, false
		}
	}
	return "", true
}

func keyPath(k lua.LValue) string {
	if s, ok := k.(lua.LString); ok && isIdent(string(s)) {
		return "." + string(s)
	}
	return "[" + show(k) + "]"
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// sortedKeys returns the keys of the tables, numbers first (ascending),
// then strings, then the rest, without duplicates.
func sortedKeys(ts ...*lua.LTable) []lua.LValue {
	seen := map[lua.LValue]bool{}
	var keys []lua.LValue
	for _, t := range ts {
		t.ForEach(func(k, _ lua.LValue) {
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		})
	}
	rank := func(v lua.LValue) int {
		switch v.(type) {
		case lua.LNumber:
			return 0
		case lua.LString:
			return 1
		}
		return 2
	}
	sort.SliceStable(keys, func(i, j int) bool {
		ri, rj := rank(keys[i]), rank(keys[j])
		if ri != rj {
			return ri < rj
		}
		switch x := keys[i].(type) {
		case lua.LNumber:
			return x < keys[j].(lua.LNumber)
		case lua.LString:
			return x < keys[j].(lua.LString)
		}
		return false
	})
	return keys
}

// show formats a Lua value for a failure report: strings quoted, integral
// numbers without a fraction, tables as constructors with sorted keys.
func show(v lua.LValue) string {
	var b strings.Builder
	writeValue(&b, v, 0, map[*lua.LTable]bool{})
	return b.String()
}

func writeValue(b *strings.Builder, v lua.LValue, depth int, seen map[*lua.LTable]bool) {
	switch x := v.(type) {
	case lua.LString:
		b.WriteString(strconv.Quote(string(x)))
	case lua.LNumber:
		f := float64(x)
		if f == math.Trunc(f) && math.Abs(f) < 1e15 {
			b.WriteString(strconv.FormatInt(int64(f), 10))
		} else {
			b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
		}
	case *lua.LTable:
		if seen[x] {
			b.WriteString("<cycle>")
			return
		}
		if depth > 8 {
			b.WriteString("{...}")
			return
		}
		seen[x] = true
		defer delete(seen, x)
		keys := sortedKeys(x)
		if len(keys) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{")
		n := x.Len()
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			if i >= 50 {
				fmt.Fprintf(b, "... (%d more)", len(keys)-i)
				break
			}
			if num, ok := k.(lua.LNumber); ok && float64(num) == float64(i+1) && i < n {
				// array part: no key
			} else if s, ok := k.(lua.LString); ok && isIdent(string(s)) {
				b.WriteString(string(s) + " = ")
			} else {
				b.WriteString("[")
				writeValue(b, k, depth+1, seen)
				b.WriteString("] = ")
			}
			writeValue(b, x.RawGet(k), depth+1, seen)
		}
		b.WriteString("}")
	case *lua.LFunction:
		b.WriteString("<function>")
	case *lua.LUserData:
		b.WriteString("<userdata>")
	default:
		b.WriteString(v.String())
	}
}
