package ksr

import (
	"fmt"
	"sort"

	lua "github.com/yuin/gopher-lua"
)

// Table is every KSR function of the loaded modules: the export tables,
// validated and merged by KSR submodule, in module order. It is built once
// at start and read-only afterwards, so every VM may share it.
type Table struct {
	subs  []Submodule
	fns   [][]string        // "KSR.sub.name" of subs[i].Funcs[j], for error messages
	owner map[string]string // KSR submodule -> the Kamailio module exporting it
	index map[string]map[string]*Export
}

// NewTable validates the modules' exports and merges them. A function
// exported twice under the same name is an error.
func NewTable(mods ...Module) (*Table, error) {
	t := &Table{owner: map[string]string{}, index: map[string]map[string]*Export{}}
	pos := map[string]int{}
	for _, m := range mods {
		info := m.Info()
		for _, s := range info.Exports {
			i, ok := pos[s.Name]
			if !ok {
				i = len(t.subs)
				pos[s.Name] = i
				t.subs = append(t.subs, Submodule{Name: s.Name})
				t.owner[s.Name] = info.Name
				t.index[s.Name] = map[string]*Export{}
			}
			for _, x := range s.Funcs {
				if err := x.Validate(); err != nil {
					return nil, fmt.Errorf("module %q: %w", info.Name, err)
				}
				if _, dup := t.index[s.Name][x.Name]; dup {
					return nil, fmt.Errorf("module %q: %s exported twice", info.Name, s.Fn(&x))
				}
				t.index[s.Name][x.Name] = nil // filled once sorted
				t.subs[i].Funcs = append(t.subs[i].Funcs, x)
			}
		}
	}
	for i := range t.subs {
		s := &t.subs[i]
		sort.Slice(s.Funcs, func(a, b int) bool { return s.Funcs[a].Name < s.Funcs[b].Name })
		names := make([]string, len(s.Funcs))
		for j := range s.Funcs {
			t.index[s.Name][s.Funcs[j].Name] = &s.Funcs[j]
			names[j] = s.Fn(&s.Funcs[j])
		}
		t.fns = append(t.fns, names)
	}
	return t, nil
}

// Submodules returns the KSR tables in module order, functions sorted by
// name. The caller must not modify them.
func (t *Table) Submodules() []Submodule { return t.subs }

// Lookup finds KSR.<sub>.<fn> (sub "" for KSR.<fn>).
func (t *Table) Lookup(sub, fn string) (*Export, bool) {
	x, ok := t.index[sub][fn]
	return x, ok
}

// HasSubmodule reports whether KSR.<name> is a table of functions.
func (t *Table) HasSubmodule(name string) bool {
	_, ok := t.index[name]
	return ok
}

// known reports whether KSR.<sub>.<fn> exists.
func (t *Table) known(sub, fn string) bool {
	_, ok := t.index[sub][fn]
	return ok
}

// names lists the functions of KSR.<sub>.
func (t *Table) names(sub string) []string {
	var out []string
	for n := range t.index[sub] {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Owner returns the Kamailio module that exports KSR.<sub>.
func (t *Table) Owner(sub string) string { return t.owner[sub] }

// APIEntry is one function as app_lua.api_list describes it.
type APIEntry struct {
	Ret    string `json:"ret"`
	Module string `json:"module"`
	Name   string `json:"name"`
	Params string `json:"params"`
}

// API lists every function as app_lua.api_list does: its return kind, KSR
// submodule ("" for KSR itself), name and parameter types, sorted by
// module and name.
func (t *Table) API() []APIEntry {
	var out []APIEntry
	for _, s := range t.subs {
		for i := range s.Funcs {
			x := &s.Funcs[i]
			out = append(out, APIEntry{Ret: x.Ret.String(), Module: s.Name, Name: x.Name, Params: x.Signature()})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Module != out[j].Module {
			return out[i].Module < out[j].Module
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Len returns how many functions the table holds.
func (t *Table) Len() int {
	n := 0
	for _, s := range t.subs {
		n += len(s.Funcs)
	}
	return n
}

// Register builds the KSR table for L, bound to e, and sets it as the
// global KSR. Reading a name KSR does not have raises an error that names
// it ("KSR.mqueue.mq_addd: no such function"), where a plain table would
// give nil and the call a nameless "attempt to call a non-function object";
// the name of a Kamailio module that is not loaded reads as nil, as in
// Kamailio, so scripts can test for a module (`if KSR.rtpengine then`).
func (t *Table) Register(L *lua.LState, e *Env) *lua.LTable {
	ksr := L.NewTable()
	nums := &numBox{}
	for si, s := range t.subs {
		tbl := ksr
		if s.Name != "" {
			tbl = L.NewTable()
			ksr.RawSetString(s.Name, tbl)
			L.SetMetatable(tbl, missing(L, "KSR."+s.Name+".", "function", nil))
		}
		for i := range s.Funcs {
			x := &s.Funcs[i]
			fn := x.bind(e, t.fns[si][i], nums)
			if !x.NoRetain {
				fn = retains(e, fn)
			}
			tbl.RawSetString(x.Name, L.NewFunction(fn))
		}
	}
	L.SetMetatable(ksr, missing(L, "KSR.", "function or module", kamailioModules))
	L.SetGlobal("KSR", ksr)
	return ksr
}

// retains wraps the binding of an export that may keep a reference to the
// message it is called for: the call marks the message Kept.
func retains(e *Env, fn lua.LGFunction) lua.LGFunction {
	return func(L *lua.LState) int {
		if m := e.Msg; m != nil {
			m.Kept = true
		}
		return fn(L)
	}
}

func sortStrings(s []string) { sort.Strings(s) }

// missing is a metatable whose __index raises "<prefix><key>: no such
// <what>", or gives nil for a key in nilFor.
func missing(L *lua.LState, prefix, what string, nilFor map[string]bool) *lua.LTable {
	mt := L.NewTable()
	mt.RawSetString("__index", L.NewFunction(func(L *lua.LState) int {
		if k, ok := L.Get(2).(lua.LString); ok && nilFor[string(k)] {
			L.Push(lua.LNil)
			return 1
		}
		L.RaiseError("%s%s: no such %s in kemi", prefix, L.Get(2).String(), what)
		return 0
	}))
	return mt
}
