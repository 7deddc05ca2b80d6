package luatest

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	lua "github.com/yuin/gopher-lua"

	"kemi/engine"
	"kemi/ksr"
)

// Spies, stubs and mocks with luassert's names and semantics:
//
//	local s = spy.on(KSR.mqueue, "mq_add")   -- calls go through, and are recorded
//	stub(KSR.tm, "t_relay").returns(1)       -- calls are recorded, the function does not run
//	local m = mock(KSR.sl)                   -- every function of KSR.sl spied (mock(tbl, true): stubbed)
//	assert.spy(s).was.called()               -- .called(n), .called_with(...), .not_called(), was_not...
//
// KSR functions run in the engine's worker VMs, not in the test VM: the
// test VM's KSR is a proxy naming them, and every worker VM's KSR functions
// are wrapped (luavm.BuildOptions.Prepare) to consult the file's ksrMocks,
// which is empty unless a test spied or stubbed. A wrapped call first loads
// one atomic counter; only a spied function pays for recording its
// arguments. Every spy, stub and mock is reverted after each test (after
// its after_each hooks). Spies on the test VM's own tables (spy.on(tbl,
// "fn"), spy.new(fn)) behave as luassert's.

// ksrMocks is what the worker VMs consult: the spied and stubbed KSR
// functions, by "sub.fn" ("" sub for KSR.fn). Worker goroutines record
// calls; the test reads them once the engine is idle.
type ksrMocks struct {
	active atomic.Int32 // len(byKey): the fast path of every wrapped call
	mu     sync.Mutex
	byKey  map[string]*ksrMock
}

// ksrMock is one spied or stubbed KSR function.
type ksrMock struct {
	stub    bool
	returns []any   // Go values (goValue), pushed by a stub
	calls   [][]any // the arguments of each call, as Go values
}

func newKSRMocks() *ksrMocks { return &ksrMocks{byKey: map[string]*ksrMock{}} }

func (m *ksrMocks) set(key string, mk *ksrMock) {
	m.mu.Lock()
	m.byKey[key] = mk
	m.active.Store(int32(len(m.byKey)))
	m.mu.Unlock()
}

func (m *ksrMocks) remove(key string) {
	m.mu.Lock()
	delete(m.byKey, key)
	m.active.Store(int32(len(m.byKey)))
	m.mu.Unlock()
}

// calls returns a copy of the calls recorded for mk.
func (m *ksrMocks) calls(mk *ksrMock) [][]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]any(nil), mk.calls...)
}

func (m *ksrMocks) clear(mk *ksrMock) {
	m.mu.Lock()
	mk.calls = nil
	m.mu.Unlock()
}

// prepare wraps every KSR function of a fresh worker VM (after ksr.Register
// set KSR, before the scripts run).
func (m *ksrMocks) prepare(L *lua.LState) error {
	root, ok := L.GetGlobal("KSR").(*lua.LTable)
	if !ok {
		return nil
	}
	wrapAll := func(tbl *lua.LTable, sub string) {
		var names []string
		var fns []*lua.LFunction
		tbl.ForEach(func(k, v lua.LValue) {
			if fn, ok := v.(*lua.LFunction); ok && fn.IsG {
				names = append(names, lua.LVAsString(k))
				fns = append(fns, fn)
			}
		})
		for i, name := range names {
			tbl.RawSetString(name, L.NewFunction(m.wrap(sub+"."+name, fns[i].GFunction)))
		}
	}
	var subs []string
	var tbls []*lua.LTable
	root.ForEach(func(k, v lua.LValue) {
		if t, ok := v.(*lua.LTable); ok {
			subs = append(subs, lua.LVAsString(k))
			tbls = append(tbls, t)
		}
	})
	wrapAll(root, "")
	for i := range subs {
		wrapAll(tbls[i], subs[i])
	}
	return nil
}

// wrap is a worker VM's KSR function: orig unless a test spied or stubbed it.
func (m *ksrMocks) wrap(key string, orig lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if m.active.Load() == 0 {
			return orig(L)
		}
		m.mu.Lock()
		mk := m.byKey[key]
		if mk == nil {
			m.mu.Unlock()
			return orig(L)
		}
		args := make([]any, L.GetTop())
		for i := range args {
			args[i] = goValue(L.Get(i+1), 0)
		}
		mk.calls = append(mk.calls, args)
		stub, rets := mk.stub, mk.returns
		m.mu.Unlock()
		if !stub {
			return orig(L)
		}
		for _, r := range rets {
			L.Push(luaValue(L, r))
		}
		return len(rets)
	}
}

// goValue copies a Lua value out of its VM: nil, bool, float64, string,
// map[any]any for tables (to depth 8); others as their description.
func goValue(v lua.LValue, depth int) any {
	switch x := v.(type) {
	case *lua.LNilType:
		return nil
	case lua.LBool:
		return bool(x)
	case lua.LNumber:
		return float64(x)
	case lua.LString:
		return string(x)
	case *lua.LTable:
		if depth >= 8 {
			return "table (too deep)"
		}
		out := map[any]any{}
		x.ForEach(func(k, v lua.LValue) { out[goValue(k, depth+1)] = goValue(v, depth+1) })
		return out
	}
	return v.String()
}

// luaValue builds a goValue in L.
func luaValue(L *lua.LState, v any) lua.LValue {
	switch x := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(x)
	case float64:
		return lua.LNumber(x)
	case string:
		return lua.LString(x)
	case map[any]any:
		t := L.NewTable()
		for k, v := range x {
			t.RawSet(luaValue(L, k), luaValue(L, v))
		}
		return t
	}
	return lua.LString(fmt.Sprint(v))
}

// spyState is one spy, stub or mocked function, as the test VM sees it.
type spyState struct {
	name string // "KSR.tm.t_relay", "tbl.fn" or "spy"
	stub bool

	// a KSR function: calls and returns live in the ksrMocks
	ksrKey string
	ksr    *ksrMock

	// a test-VM function
	fn      lua.LValue     // what a spy calls through to (nil: nothing)
	returns []lua.LValue   // what a stub returns
	calls   [][]lua.LValue // each call's arguments

	// where it was installed, to revert: target[key] = orig
	target *lua.LTable
	key    string
	orig   lua.LValue
	proxy  bool // target is a KSR proxy table (the field was nil before)
}

// spies is the test VM's side: the spy objects (tables) and what to revert.
type spies struct {
	byObj   map[*lua.LTable]*spyState
	active  []*spyState // installed during the running test, reverted after it
	proxies map[*lua.LTable]string
	ksrRoot *lua.LTable
	anyArg  *lua.LUserData // match._
}

// spyMeta is the metatable of spy objects: callable, with calls and the
// luassert methods.
func (f *fileRun) spyObject(L *lua.LState, st *spyState) *lua.LTable {
	obj := L.NewTable()
	f.sp.byObj[obj] = st
	mt := L.NewTable()
	mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int {
		// obj(...): a spy.new or a stub called in the test VM
		args := make([]lua.LValue, L.GetTop()-1)
		for i := range args {
			args[i] = L.Get(i + 2)
		}
		if st.ksr != nil {
			L.RaiseError("%s runs in the engine's workers: send a request (t.request) to call it", st.name)
		}
		st.calls = append(st.calls, args)
		if st.stub || st.fn == nil || st.fn == lua.LNil {
			for _, r := range st.returns {
				L.Push(r)
			}
			return len(st.returns)
		}
		top := L.GetTop()
		L.Push(st.fn)
		for _, a := range args {
			L.Push(a)
		}
		L.Call(len(args), lua.MultRet)
		return L.GetTop() - top
	}))
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		switch L.CheckString(2) {
		case "calls":
			t := L.NewTable()
			for _, c := range f.spyCalls(L, st) {
				vals := L.NewTable()
				for _, v := range c {
					vals.Append(v)
				}
				call := L.NewTable()
				call.RawSetString("vals", vals)
				call.RawSetString("refs", vals)
				t.Append(call)
			}
			L.Push(t)
		case "returns":
			L.Push(L.NewFunction(func(L *lua.LState) int {
				vals := make([]lua.LValue, L.GetTop())
				for i := range vals {
					vals[i] = L.Get(i + 1)
				}
				// s.returns(1) and s:returns(1) both work
				if len(vals) > 0 && vals[0] == obj {
					vals = vals[1:]
				}
				f.setReturns(L, st, vals)
				L.Push(obj)
				return 1
			}))
		case "revert":
			L.Push(L.NewFunction(func(L *lua.LState) int { f.revert(st); return 0 }))
		case "clear":
			L.Push(L.NewFunction(func(L *lua.LState) int {
				if st.ksr != nil {
					f.mocks.clear(st.ksr)
				}
				st.calls = nil
				L.Push(obj)
				return 1
			}))
		case "name":
			L.Push(lua.LString(st.name))
		default:
			L.Push(lua.LNil)
		}
		return 1
	}))
	mt.RawSetString("__tostring", L.NewFunction(func(L *lua.LState) int {
		kind := "spy"
		if st.stub {
			kind = "stub"
		}
		L.Push(lua.LString(kind + " of " + st.name))
		return 1
	}))
	L.SetMetatable(obj, mt)
	return obj
}

// setReturns is stub(...).returns(...): what the stub gives back.
func (f *fileRun) setReturns(L *lua.LState, st *spyState, vals []lua.LValue) {
	if !st.stub {
		L.RaiseError("%s is a spy, not a stub: use stub(tbl, name).returns(...)", st.name)
	}
	if st.ksr != nil {
		rets := make([]any, len(vals))
		for i, v := range vals {
			if _, ok := v.(*lua.LFunction); ok {
				L.RaiseError("stub of %s: a function cannot be returned into the engine's workers", st.name)
			}
			rets[i] = goValue(v, 0)
		}
		f.mocks.mu.Lock()
		st.ksr.returns = rets
		f.mocks.mu.Unlock()
		return
	}
	st.returns = vals
}

// spyCalls returns each call's arguments as test VM values.
func (f *fileRun) spyCalls(L *lua.LState, st *spyState) [][]lua.LValue {
	if st.ksr == nil {
		return st.calls
	}
	var out [][]lua.LValue
	for _, c := range f.mocks.calls(st.ksr) {
		vals := make([]lua.LValue, len(c))
		for i, v := range c {
			vals[i] = luaValue(L, v)
		}
		out = append(out, vals)
	}
	return out
}

// revert puts back what st replaced and forgets it.
func (f *fileRun) revert(st *spyState) {
	if st.ksrKey != "" {
		f.mocks.remove(st.ksrKey)
		st.ksrKey = ""
	}
	if st.target != nil {
		st.target.RawSetString(st.key, st.orig)
		st.target = nil
	}
}

// revertAll is run after each test (and its hooks).
func (f *fileRun) revertAll() {
	for i := len(f.sp.active) - 1; i >= 0; i-- {
		f.revert(f.sp.active[i])
	}
	f.sp.active = nil
}

// ksrTable is the export table the stubs are checked against: the
// engine's (the configuration's modules) once it runs, else every module's.
func (f *fileRun) ksrTable() (*ksr.Table, bool) {
	if f.eng != nil {
		return f.eng.Table(), true
	}
	t, err := engine.Exports()
	if err != nil {
		return nil, false
	}
	return t, false
}

// install replaces target[key] with a spy (stub when stub) and returns it.
func (f *fileRun) install(L *lua.LState, what string, target *lua.LTable, key string, stub bool) *lua.LTable {
	if f.active == nil {
		L.RaiseError("%s: only inside a test or its hooks (spies and stubs are reverted after each test)", what)
	}
	st := &spyState{stub: stub, target: target, key: key}
	if sub, ok := f.sp.proxies[target]; ok {
		name := "KSR." + key
		if sub != "" {
			name = "KSR." + sub + "." + key
		}
		tbl, running := f.ksrTable()
		if tbl == nil || !running {
			L.RaiseError("%s(%s): the engine is not running", what, name)
		}
		if _, ok := tbl.Lookup(sub, key); !ok {
			all, _ := engine.Exports()
			if all != nil {
				if _, known := all.Lookup(sub, key); known {
					L.RaiseError("%s(%s): the configuration does not load the module exporting it (%s)", what, name, all.Owner(sub))
				}
			}
			L.RaiseError("%s(%s): no such KSR function in kemi%s", what, name, closest(tbl, sub, key))
		}
		st.name, st.ksrKey, st.proxy = name, sub+"."+key, true
		st.ksr = &ksrMock{stub: stub}
		st.orig = target.RawGetString(key)
		if !stub {
			st.fn = lua.LNil
		}
		f.mocks.set(st.ksrKey, st.ksr)
	} else {
		st.name, st.orig = key, target.RawGetString(key)
		if !stub && !callable(f, st.orig) {
			L.RaiseError("%s(tbl, %q): tbl.%s is %s, not a function", what, key, key, st.orig.Type())
		}
		st.fn = st.orig
	}
	obj := f.spyObject(L, st)
	target.RawSetString(key, obj)
	f.sp.active = append(f.sp.active, st)
	return obj
}

// callable reports whether v is a function or a spy object.
func callable(f *fileRun, v lua.LValue) bool {
	switch x := v.(type) {
	case *lua.LFunction:
		return true
	case *lua.LTable:
		_, ok := f.sp.byObj[x]
		return ok
	}
	return false
}

// closest suggests KSR functions of sub that look like fn.
func closest(t *ksr.Table, sub, fn string) string {
	var names []string
	for _, s := range t.Submodules() {
		if s.Name != sub {
			continue
		}
		for _, x := range s.Funcs {
			if strings.Contains(x.Name, fn) || strings.Contains(fn, x.Name) || commonPrefix(x.Name, fn) >= 4 {
				names = append(names, x.Name)
			}
		}
	}
	if len(names) == 0 {
		if sub != "" && !t.HasSubmodule(sub) {
			return fmt.Sprintf(" (the configuration has no KSR.%s)", sub)
		}
		return ""
	}
	sort.Strings(names)
	if len(names) > 5 {
		names = names[:5]
	}
	prefix := "KSR."
	if sub != "" {
		prefix += sub + "."
	}
	return " (did you mean " + prefix + strings.Join(names, ", "+prefix) + "?)"
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// ksrProxy builds the test VM's KSR: tables standing for KSR and its
// submodules, for spy.on(KSR.tm, "t_relay"). Reading a function from them
// is an error unless it is spied (the functions run in the workers).
func (f *fileRun) ksrProxy(L *lua.LState) *lua.LTable {
	root := L.NewTable()
	f.sp.proxies[root] = ""
	f.sp.ksrRoot = root
	subs := map[string]*lua.LTable{}
	fnIndex := func(sub string) *lua.LFunction {
		return L.NewFunction(func(L *lua.LState) int {
			name := L.CheckString(2)
			full := "KSR." + name
			if sub != "" {
				full = "KSR." + sub + "." + name
			}
			if sub == "" {
				if t, ok := subs[name]; ok {
					L.Push(t)
					return 1
				}
			}
			tbl, _ := f.ksrTable()
			if tbl != nil {
				if sub == "" && tbl.HasSubmodule(name) {
					L.RaiseError("%s: module table not available", full)
				}
				if _, ok := tbl.Lookup(sub, name); ok {
					L.RaiseError("%s runs in the engine's workers, not in the test: send a request (t.request), or spy on it (spy.on(KSR%s, %q))", full, dotSub(sub), name)
				}
				L.RaiseError("%s: no such KSR function in kemi%s", full, closest(tbl, sub, name))
			}
			L.RaiseError("%s: no such KSR function in kemi", full)
			return 0
		})
	}
	if all, err := engine.Exports(); err == nil {
		for _, s := range all.Submodules() {
			if s.Name == "" {
				continue
			}
			t := L.NewTable()
			mt := L.NewTable()
			mt.RawSetString("__index", fnIndex(s.Name))
			L.SetMetatable(t, mt)
			subs[s.Name] = t
			f.sp.proxies[t] = s.Name
		}
	}
	mt := L.NewTable()
	mt.RawSetString("__index", fnIndex(""))
	L.SetMetatable(root, mt)
	return root
}

func dotSub(sub string) string {
	if sub == "" {
		return ""
	}
	return "." + sub
}

// setupSpies sets the busted globals in the test VM: spy, stub, mock,
// match and assert (Lua's assert, callable as before, with assert.spy and
// assert.stub), and KSR, the proxy naming the workers' functions. The same
// tables are t.spy, t.stub, t.mock, t.match and t.assert.
func (f *fileRun) setupSpies(L *lua.LState) map[string]lua.LValue {
	f.sp = &spies{byObj: map[*lua.LTable]*spyState{}, proxies: map[*lua.LTable]string{}}
	f.sp.anyArg = L.NewUserData()
	f.sp.anyArg.Value = "match._"
	call := func(fn lua.LGFunction) *lua.LTable {
		mt := L.NewTable()
		mt.RawSetString("__call", L.NewFunction(func(L *lua.LState) int {
			L.Remove(1) // the table itself
			return fn(L)
		}))
		t := L.NewTable()
		L.SetMetatable(t, mt)
		return t
	}
	spyNew := func(L *lua.LState) int {
		fn := L.Get(1)
		if fn != lua.LNil && !callable(f, fn) {
			L.ArgError(1, "spy.new(fn): a function")
		}
		L.Push(f.spyObject(L, &spyState{name: "spy", fn: fn}))
		return 1
	}
	spyOn := func(L *lua.LState) int {
		L.Push(f.install(L, "spy.on", L.CheckTable(1), L.CheckString(2), false))
		return 1
	}
	stubNew := func(L *lua.LState) int {
		if L.GetTop() == 0 {
			L.Push(f.spyObject(L, &spyState{name: "stub", stub: true}))
			return 1
		}
		obj := f.install(L, "stub", L.CheckTable(1), L.CheckString(2), true)
		if L.GetTop() > 2 {
			vals := make([]lua.LValue, L.GetTop()-2)
			for i := range vals {
				vals[i] = L.Get(i + 3)
			}
			f.setReturns(L, f.sp.byObj[obj], vals)
		}
		L.Push(obj)
		return 1
	}
	spy := call(spyNew)
	spy.RawSetString("new", L.NewFunction(spyNew))
	spy.RawSetString("on", L.NewFunction(spyOn))
	spy.RawSetString("is_spy", L.NewFunction(func(L *lua.LState) int {
		_, ok := f.sp.byObj[asTable(L.Get(1))]
		L.Push(lua.LBool(ok))
		return 1
	}))
	stub := call(stubNew)
	stub.RawSetString("new", L.NewFunction(stubNew))
	mock := L.NewFunction(f.lMock)
	match := L.NewTable()
	match.RawSetString("_", f.sp.anyArg)
	assert := call(func(L *lua.LState) int {
		// Lua's assert: v, message
		if !lua.LVAsBool(L.Get(1)) {
			msg := "assertion failed!"
			if L.GetTop() >= 2 {
				msg = L.ToStringMeta(L.Get(2)).String()
			}
			L.RaiseError("%s", msg)
		}
		return L.GetTop()
	})
	assert.RawSetString("spy", L.NewFunction(f.lAssertSpy("spy")))
	assert.RawSetString("stub", L.NewFunction(f.lAssertSpy("stub")))
	ksrProxy := f.ksrProxy(L)
	vals := map[string]lua.LValue{"spy": spy, "stub": stub, "mock": mock, "match": match, "assert": assert}
	for k, v := range vals {
		L.SetGlobal(k, v)
	}
	L.SetGlobal("KSR", ksrProxy)
	return vals
}

func asTable(v lua.LValue) *lua.LTable {
	t, _ := v.(*lua.LTable)
	return t
}

// mock(tbl [, stub]): every function of tbl spied (stubbed when stub is
// true); tbl is returned with its functions replaced. For KSR.sub, every
// function of the module.
func (f *fileRun) lMock(L *lua.LState) int {
	tbl := L.CheckTable(1)
	stub := lua.LVAsBool(L.Get(2))
	var names []string
	if sub, ok := f.sp.proxies[tbl]; ok {
		t, running := f.ksrTable()
		if !running {
			L.RaiseError("mock(KSR...): only inside a test")
		}
		for _, s := range t.Submodules() {
			if s.Name == sub {
				for _, x := range s.Funcs {
					names = append(names, x.Name)
				}
			}
		}
		if len(names) == 0 {
			L.RaiseError("mock(KSR.%s): the configuration has no such module", sub)
		}
	} else {
		tbl.ForEach(func(k, v lua.LValue) {
			if ks, ok := k.(lua.LString); ok && callable(f, v) {
				names = append(names, string(ks))
			}
		})
		sort.Strings(names)
	}
	what := "mock"
	for _, n := range names {
		f.install(L, what, tbl, n, stub)
	}
	L.Push(tbl)
	return 1
}

// lAssertSpy is assert.spy(s) / assert.stub(s): a table with the luassert
// chains was, was_not, has, has_not (and is, is_not), each holding called,
// not_called, called_with, called_at_least and called_at_most.
func (f *fileRun) lAssertSpy(kind string) lua.LGFunction {
	return func(L *lua.LState) int {
		st := f.sp.byObj[asTable(L.Get(1))]
		if st == nil {
			L.RaiseError("assert.%s(s): s is %s, not a spy or a stub", kind, L.Get(1).Type())
		}
		a := L.NewTable()
		for chain, neg := range map[string]bool{"was": false, "was_not": true, "has": false, "has_not": true, "is": false, "is_not": true} {
			a.RawSetString(chain, f.spyChecks(L, st, neg))
		}
		L.Push(a)
		return 1
	}
}

func (f *fileRun) spyChecks(L *lua.LState, st *spyState, neg bool) *lua.LTable {
	t := L.NewTable()
	not := ""
	if neg {
		not = "not "
	}
	check := func(L *lua.LState, ok bool, expected string, calls [][]lua.LValue) {
		if ok != neg {
			return
		}
		f.raise(L, &Failure{
			Message:   fmt.Sprintf("expected %s %sto be %s", st.name, not, expected),
			Expected:  not + expected,
			Actual:    showCalls(calls),
			HasValues: true,
		})
	}
	count := func(L *lua.LState, fn string) int {
		n := L.CheckNumber(1)
		if n < 0 || float64(n) != float64(int(n)) {
			L.ArgError(1, fn+"(n): a count")
		}
		return int(n)
	}
	t.RawSetString("called", L.NewFunction(func(L *lua.LState) int {
		calls := f.spyCalls(L, st)
		if L.GetTop() == 0 {
			check(L, len(calls) > 0, "called", calls)
			return 0
		}
		n := count(L, "called")
		check(L, len(calls) == n, fmt.Sprintf("called %s", times(n)), calls)
		return 0
	}))
	t.RawSetString("not_called", L.NewFunction(func(L *lua.LState) int {
		calls := f.spyCalls(L, st)
		ok := len(calls) == 0
		if neg {
			ok = !ok
		}
		if ok {
			return 0
		}
		if neg {
			f.raise(L, &Failure{Message: fmt.Sprintf("expected %s to be called", st.name), Expected: "called", Actual: showCalls(calls), HasValues: true})
		}
		f.raise(L, &Failure{Message: fmt.Sprintf("expected %s not to be called", st.name), Expected: "no call", Actual: showCalls(calls), HasValues: true})
		return 0
	}))
	t.RawSetString("called_at_least", L.NewFunction(func(L *lua.LState) int {
		calls := f.spyCalls(L, st)
		n := count(L, "called_at_least")
		check(L, len(calls) >= n, fmt.Sprintf("called at least %s", times(n)), calls)
		return 0
	}))
	t.RawSetString("called_at_most", L.NewFunction(func(L *lua.LState) int {
		calls := f.spyCalls(L, st)
		n := count(L, "called_at_most")
		check(L, len(calls) <= n, fmt.Sprintf("called at most %s", times(n)), calls)
		return 0
	}))
	t.RawSetString("called_with", L.NewFunction(func(L *lua.LState) int {
		want := make([]lua.LValue, L.GetTop())
		for i := range want {
			want[i] = L.Get(i + 1)
		}
		calls := f.spyCalls(L, st)
		found := false
		for _, c := range calls {
			if f.argsMatch(c, want) {
				found = true
				break
			}
		}
		check(L, found, "called with "+showArgs(want), calls)
		return 0
	}))
	return t
}

// argsMatch compares a call's arguments with the expected ones, deeply;
// match._ matches any value.
func (f *fileRun) argsMatch(got, want []lua.LValue) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if want[i] == f.sp.anyArg {
			continue
		}
		if _, ok := deepEqual(got[i], want[i], "", 0); !ok {
			return false
		}
	}
	return true
}

func times(n int) string {
	if n == 1 {
		return "1 time"
	}
	return fmt.Sprintf("%d times", n)
}

func showArgs(args []lua.LValue) string {
	parts := make([]string, len(args))
	for i, a := range args {
		if ud, ok := a.(*lua.LUserData); ok && ud.Value == "match._" {
			parts[i] = "_"
			continue
		}
		parts[i] = show(a)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

func showCalls(calls [][]lua.LValue) string {
	if len(calls) == 0 {
		return "no call"
	}
	parts := make([]string, len(calls))
	for i, c := range calls {
		parts[i] = showArgs(c)
	}
	return fmt.Sprintf("%s: %s", times(len(calls)), strings.Join(parts, ", "))
}
