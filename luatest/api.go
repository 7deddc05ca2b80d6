package luatest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/jsonrpc"
	"kemi/queues"
)

// setupVM prepares the test VM: the test file's directory on package.path,
// print captured into the test output, and require("kemi.test").
func (f *fileRun) setupVM() {
	L := f.L
	if pkg, ok := L.GetGlobal("package").(*lua.LTable); ok {
		path := lua.LVAsString(pkg.RawGetString("path"))
		pkg.RawSetString("path", lua.LString(filepath.Join(f.dir, "?.lua")+";"+path))
	}
	L.SetGlobal("print", L.NewFunction(func(L *lua.LState) int {
		parts := make([]string, L.GetTop())
		for i := range parts {
			parts[i] = L.ToStringMeta(L.Get(i + 1)).String()
		}
		f.out.add(strings.Join(parts, "\t"))
		return 0
	}))
	f.spyVals = f.setupSpies(L)
	L.PreloadModule("kemi.test", f.loader)
}

// loader builds the kemi.test module table.
func (f *fileRun) loader(L *lua.LState) int {
	t := L.NewTable()
	set := func(tab *lua.LTable, funcs map[string]lua.LGFunction) {
		for name, fn := range funcs {
			tab.RawSetString(name, L.NewFunction(fn))
		}
	}
	set(t, map[string]lua.LGFunction{
		// registration
		"test":        f.lTest,
		"it":          f.lTest,
		"describe":    f.lDescribe,
		"before_each": f.lHook(false),
		"after_each":  f.lHook(true),
		"config":      f.lConfig,
		// assertions
		"equal":     f.lEqual,
		"not_equal": f.lNotEqual,
		"same":      f.lSame,
		"truthy":    f.lTruthy,
		"falsy":     f.lFalsy,
		"error":     f.lError,
		"match":     f.lMatch,
		"fail":      f.lFail,
		"skip":      f.lSkip,
		// the engine
		"request": f.lRequest,
		"advance": f.lAdvance,
		"now":     f.lNow,
		"reload":  f.lReload,
		"rpc":     f.lRPC,
		"logs":    f.lLogs,
		"digest":  f.lDigest,
	})
	mq := L.NewTable()
	set(mq, map[string]lua.LGFunction{
		"add":   f.lMqAdd,
		"items": f.lMqItems,
		"size":  f.lMqSize,
		"fetch": f.lMqFetch,
	})
	t.RawSetString("mqueue", mq)
	for k, v := range f.spyVals {
		if k != "match" { // t.match is the pattern assertion; match._ is the global's
			t.RawSetString(k, v)
		}
	}
	L.Push(t)
	return 1
}

// registering fails unless the file's top level (or a describe block) runs.
func (f *fileRun) registering(L *lua.LState, fn string) {
	if f.cur == nil {
		L.RaiseError("t.%s: only at the top of the test file or inside t.describe, not inside a test", fn)
	}
}

// running fails unless a test runs, and returns its engine's context.
func (f *fileRun) running(L *lua.LState, fn string) {
	if f.active == nil || f.eng == nil {
		L.RaiseError("t.%s: only inside a test (t.test, t.it or their hooks)", fn)
	}
}

// t.test(name, fn) / t.it(name, fn)
func (f *fileRun) lTest(L *lua.LState) int {
	f.registering(L, "test")
	name := L.CheckString(1)
	fn := L.CheckFunction(2)
	f.tests = append(f.tests, &testCase{name: name, s: f.cur, fn: fn})
	return 0
}

// t.describe(name, fn): fn registers the tests of the block.
func (f *fileRun) lDescribe(L *lua.LState) int {
	f.registering(L, "describe")
	name := L.CheckString(1)
	fn := L.CheckFunction(2)
	s := &suite{name: name, parent: f.cur}
	f.cur = s
	L.Push(fn)
	L.Call(0, 0)
	f.cur = s.parent
	return 0
}

// t.before_each(fn) / t.after_each(fn): run around every test of the
// enclosing describe block (or of the file), outer blocks' first.
func (f *fileRun) lHook(after bool) lua.LGFunction {
	return func(L *lua.LState) int {
		name := "before_each"
		if after {
			name = "after_each"
		}
		f.registering(L, name)
		fn := L.CheckFunction(1)
		if after {
			f.cur.after = append(f.cur.after, fn)
		} else {
			f.cur.before = append(f.cur.before, fn)
		}
		return 0
	}
}

// t.config(path [, defines]): the configuration for this file's engine,
// relative to the test file; defines ({"NAME", OTHER = "value"}) are added
// to the -A ones.
func (f *fileRun) lConfig(L *lua.LState) int {
	f.registering(L, "config")
	if f.eng != nil {
		L.RaiseError("t.config: the engine has started already")
	}
	p := L.CheckString(1)
	if !filepath.IsAbs(p) {
		p = filepath.Join(f.dir, p)
	}
	if _, err := os.Stat(p); err != nil {
		L.RaiseError("t.config: %v", err)
	}
	f.cfg = p
	if tab, ok := L.Get(2).(*lua.LTable); ok {
		f.defines = map[string]string{}
		tab.ForEach(func(k, v lua.LValue) {
			if _, ok := k.(lua.LNumber); ok { // {"NAME"}: defined, no value
				f.defines[v.String()] = ""
				return
			}
			f.defines[k.String()] = v.String()
		})
	}
	return 0
}

// t.advance(ms | "1.5s"): move the virtual clock, firing rtimer ticks and
// async resumes in order, and return when the engine is idle.
func (f *fileRun) lAdvance(L *lua.LState) int {
	f.running(L, "advance")
	d := durationArg(L, 1)
	if err := f.eng.Advance(f.ctx, d); err != nil {
		L.RaiseError("t.advance: %v", err)
	}
	return 0
}

// durationArg reads milliseconds (a number) or a Go duration string.
func durationArg(L *lua.LState, n int) time.Duration {
	switch v := L.Get(n).(type) {
	case lua.LNumber:
		if v < 0 {
			L.ArgError(n, "negative duration")
		}
		return time.Duration(float64(v) * float64(time.Millisecond))
	case lua.LString:
		d, err := time.ParseDuration(string(v))
		if err != nil || d < 0 {
			L.ArgError(n, fmt.Sprintf("duration %q: want milliseconds or a duration such as \"1.5s\"", string(v)))
		}
		return d
	}
	L.ArgError(n, "milliseconds (number) or a duration string expected")
	return 0
}

// t.now(): virtual milliseconds since the engine started.
func (f *fileRun) lNow(L *lua.LState) int {
	f.running(L, "now")
	ms := float64(f.clock.Now().Sub(time.Unix(epochUnix, 0))) / float64(time.Millisecond)
	L.Push(lua.LNumber(ms))
	return 1
}

// t.reload([source | path.lua [, script]]): replace a script of the engine
// (the first one, or the one whose path ends with script) with source, or
// with the content of path.lua (relative to the test file), and reload.
// Without arguments the scripts are reloaded as they are. Returns true, or
// false and the error (the old code keeps running).
func (f *fileRun) lReload(L *lua.LState) int {
	f.running(L, "reload")
	if L.GetTop() >= 1 && L.Get(1) != lua.LNil {
		arg := L.CheckString(1)
		target, err := f.script(L.OptString(2, ""))
		if err != nil {
			L.RaiseError("t.reload: %v", err)
		}
		src := []byte(arg)
		if strings.HasSuffix(arg, ".lua") && !strings.ContainsAny(arg, "\n()") {
			p := arg
			if !filepath.IsAbs(p) {
				p = filepath.Join(f.dir, p)
			}
			if src, err = os.ReadFile(p); err != nil {
				L.RaiseError("t.reload: %v", err)
			}
		}
		f.ovMu.Lock()
		f.overlay[target] = src
		f.ovMu.Unlock()
	}
	if _, err := f.eng.Reload(); err != nil {
		L.Push(lua.LFalse)
		L.Push(lua.LString(err.Error()))
		return 2
	}
	L.Push(lua.LTrue)
	return 1
}

// script finds the engine script named by name (its path or a suffix of
// it); "" is the first script.
func (f *fileRun) script(name string) (string, error) {
	if len(f.scripts) == 0 {
		return "", errors.New("the configuration loads no script")
	}
	if name == "" {
		return f.scripts[0], nil
	}
	for _, s := range f.scripts {
		if s == name || strings.HasSuffix(filepath.ToSlash(s), "/"+strings.TrimPrefix(filepath.ToSlash(name), "/")) {
			return s, nil
		}
	}
	return "", fmt.Errorf("no script %q among %s", name, strings.Join(f.scripts, ", "))
}

// t.rpc(method, params...): call a JSON-RPC method in-process. Returns the
// result, or nil and the fault {code = N, message = "..."}.
func (f *fileRun) lRPC(L *lua.LState) int {
	f.running(L, "rpc")
	method := L.CheckString(1)
	var params []any
	for i := 2; i <= L.GetTop(); i++ {
		params = append(params, toGo(L.Get(i), 0))
	}
	raw, err := f.eng.RPC().Call(f.ctx, method, params...)
	if err != nil {
		var fault *jsonrpc.Fault
		if errors.As(err, &fault) {
			ft := L.NewTable()
			ft.RawSetString("code", lua.LNumber(fault.Code))
			ft.RawSetString("message", lua.LString(fault.Message))
			L.Push(lua.LNil)
			L.Push(ft)
			return 2
		}
		L.RaiseError("t.rpc: %v", err)
	}
	var v any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		L.RaiseError("t.rpc: decode result: %v", err)
	}
	L.Push(fromGo(L, v))
	return 1
}

// t.logs(): the output lines (engine log lines and print) of the running
// test so far.
func (f *fileRun) lLogs(L *lua.LState) int {
	f.running(L, "logs")
	tab := L.NewTable()
	for _, l := range f.out.snapshot() {
		tab.Append(lua.LString(l))
	}
	L.Push(tab)
	return 1
}

// queue returns the named mqueue or raises an error listing the queues.
func (f *fileRun) queue(L *lua.LState, fn string) *queues.Queue {
	f.running(L, "mqueue."+fn)
	name := L.CheckString(1)
	q := f.eng.Queues().Get(name)
	if q == nil {
		var names []string
		for _, q := range f.eng.Queues().Queues() {
			names = append(names, q.Name())
		}
		L.RaiseError("t.mqueue.%s: no queue %q (configured: %s)", fn, name, strings.Join(names, ", "))
	}
	return q
}

// t.mqueue.add(q, key, value): add as KSR.mqueue.mq_add does (addmode and
// size apply).
func (f *fileRun) lMqAdd(L *lua.LState) int {
	q := f.queue(L, "add")
	if err := q.Add(L.CheckString(2), L.CheckString(3)); err != nil {
		L.RaiseError("t.mqueue.add: %v", err)
	}
	L.Push(lua.LTrue)
	return 1
}

// t.mqueue.items(q): {{key = k, val = v}, ...}, oldest first.
func (f *fileRun) lMqItems(L *lua.LState) int {
	q := f.queue(L, "items")
	tab := L.NewTable()
	for _, it := range q.Snapshot() {
		e := L.NewTable()
		e.RawSetString("key", lua.LString(it.Key))
		e.RawSetString("val", lua.LString(it.Val))
		tab.Append(e)
	}
	L.Push(tab)
	return 1
}

// t.mqueue.size(q): the number of items.
func (f *fileRun) lMqSize(L *lua.LState) int {
	q := f.queue(L, "size")
	L.Push(lua.LNumber(q.Len()))
	return 1
}

// t.mqueue.fetch(q): remove the oldest item: key, value, or nil when empty.
func (f *fileRun) lMqFetch(L *lua.LState) int {
	q := f.queue(L, "fetch")
	it, err := q.Fetch()
	if errors.Is(err, queues.ErrEmpty) {
		L.Push(lua.LNil)
		return 1
	}
	if err != nil {
		L.RaiseError("t.mqueue.fetch: %v", err)
	}
	L.Push(lua.LString(it.Key))
	L.Push(lua.LString(it.Val))
	return 2
}

// toGo converts a Lua value to JSON-marshallable Go (tables with only
// 1..n keys become arrays).
func toGo(v lua.LValue, depth int) any {
	switch x := v.(type) {
	case lua.LBool:
		return bool(x)
	case lua.LNumber:
		if f := float64(x); f == float64(int64(f)) {
			return int64(f)
		}
		return float64(x)
	case lua.LString:
		return string(x)
	case *lua.LTable:
		if depth > 32 {
			return nil
		}
		if n := x.Len(); n > 0 {
			arr := make([]any, 0, n)
			for i := 1; i <= n; i++ {
				arr = append(arr, toGo(x.RawGetInt(i), depth+1))
			}
			return arr
		}
		m := map[string]any{}
		x.ForEach(func(k, v lua.LValue) { m[k.String()] = toGo(v, depth+1) })
		return m
	}
	return nil
}

// fromGo converts a decoded JSON value to Lua.
func fromGo(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case json.Number:
		f, _ := x.Float64()
		return lua.LNumber(f)
	case string:
		return lua.LString(x)
	case []any:
		t := L.NewTable()
		for _, e := range x {
			t.Append(fromGo(L, e))
		}
		return t
	case map[string]any:
		t := L.NewTable()
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.RawSetString(k, fromGo(L, x[k]))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}
