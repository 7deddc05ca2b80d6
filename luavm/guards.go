package luavm

import (
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// guardMem replaces the library functions that can build one value larger
// than the memory budget in a single Go call, where no watchdog can stop
// them: string.rep (string.rep("x", 2^30) is 1 GB at once), string.format
// (widths and precisions, arguments repeated) and table.concat (one large
// string referenced many times). A result over limit bytes is refused with a
// Lua error before anything is allocated; smaller ones run the original.
// The string methods ("x"):rep(n) use the same table.
func guardMem(L *lua.LState, limit int64) {
	if str, ok := L.GetGlobal("string").(*lua.LTable); ok {
		str.RawSetString("rep", L.NewFunction(func(L *lua.LState) int {
			s := L.CheckString(1)
			n := L.CheckInt(2)
			if n > 0 && len(s) > 0 && int64(len(s)) > limit/int64(n) {
				overBudget(L, "string.rep", float64(len(s))*float64(n), limit)
			}
			if n <= 0 {
				L.Push(lua.LString(""))
				return 1
			}
			L.Push(lua.LString(strings.Repeat(s, n)))
			return 1
		}))
		wrapG(L, str, "format", func(L *lua.LState) {
			if n := formatSize(L); n > float64(limit) {
				overBudget(L, "string.format", n, limit)
			}
		})
	}
	if tbl, ok := L.GetGlobal("table").(*lua.LTable); ok {
		wrapG(L, tbl, "concat", func(L *lua.LState) {
			if n := concatSize(L); n > float64(limit) {
				overBudget(L, "table.concat", n, limit)
			}
		})
	}
}

// wrapG replaces the Go function t[name] with one that runs check first.
func wrapG(L *lua.LState, t *lua.LTable, name string, check func(L *lua.LState)) {
	orig, ok := t.RawGetString(name).(*lua.LFunction)
	if !ok || !orig.IsG {
		return
	}
	g := orig.GFunction
	t.RawSetString(name, L.NewFunction(func(L *lua.LState) int {
		check(L)
		return g(L)
	}))
}

func overBudget(L *lua.LState, fn string, size float64, limit int64) {
	L.RaiseError("%s: a result of %.0f bytes exceeds the memory budget of %d MB (max_mem_mb)", fn, size, limit>>20)
}

// formatSize bounds the length of string.format(fmt, ...): the format
// itself, plus for each directive its width and precision (Go's fmt caps
// each at 10^6), its argument's length when it is a string, and 64 bytes
// for anything else a directive can print.
func formatSize(L *lua.LState) float64 {
	f := L.CheckString(1)
	total := float64(len(f))
	arg := 2
	num := func(i int) (int, float64) {
		n := 0.0
		for ; i < len(f) && f[i] >= '0' && f[i] <= '9'; i++ {
			if n < 1e7 {
				n = n*10 + float64(f[i]-'0')
			}
		}
		return i, n
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			continue
		}
		i++
		if i < len(f) && f[i] == '%' {
			continue
		}
		for i < len(f) && (f[i] == '-' || f[i] == '+' || f[i] == ' ' || f[i] == '#' || f[i] == '0') {
			i++
		}
		var w, p float64
		i, w = num(i)
		if i < len(f) && f[i] == '.' {
			i, p = num(i + 1)
		}
		total += w + p + 64
		if s, ok := L.Get(arg).(lua.LString); ok && arg <= L.GetTop() {
			total += float64(len(s))
		}
		arg++
	}
	return total
}

// concatSize bounds the length of table.concat(t, sep, i, j): the string
// lengths of the elements in range, 64 bytes for a number, and the
// separators.
func concatSize(L *lua.LState) float64 {
	t := L.CheckTable(1)
	sep := L.OptString(2, "")
	n := t.Len()
	i := L.OptInt(3, 1)
	j := L.OptInt(4, n)
	if i < 1 {
		i = 1
	}
	if j > n {
		j = n
	}
	total := 0.0
	for k := i; k <= j; k++ {
		switch v := t.RawGetInt(k).(type) {
		case lua.LString:
			total += float64(len(v))
		case lua.LNumber:
			total += 64
		}
		if k < j {
			total += float64(len(sep))
		}
	}
	return total
}
