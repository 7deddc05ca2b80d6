package ksr

import (
	"strconv"
	"unsafe"

	lua "github.com/yuin/gopher-lua"
)

// Boxed return values, built once: converting a float64 LNumber to an
// LValue allocates, so common integers are boxed ahead of time. Read-only.
var smallInts = func() (t [512]lua.LValue) {
	for i := range t {
		t[i] = lua.LNumber(i - 256)
	}
	return t
}()

// BoxInt returns n as a Lua number, without allocating for small n.
func BoxInt(n int) lua.LValue { return boxInt(n) }

// StrOrNil returns s as a Lua string, or nil when it is empty.
func StrOrNil(s string) lua.LValue { return strOrNil(s) }

func boxInt(n int) lua.LValue {
	if n >= -256 && n < 256 {
		return smallInts[n+256]
	}
	return lua.LNumber(n)
}

// numBox boxes the integers a VM's KSR functions return without an
// allocation per number: small ones are smallInts, others are taken from a
// block of float64s, as gopher-lua's own allocator does for the numbers of
// the VM's arithmetic (a float64 converted to an LValue otherwise allocates
// 8 bytes each time: sht_inc on a counter above 255, mq_size of a long
// queue). One per VM (Table.Register), used on the VM's goroutine only.
type numBox struct {
	block []float64
}

// numBlock is how many numbers a block holds.
const numBlock = 128

func (nb *numBox) box(n int) lua.LValue {
	if uint(n+256) < uint(len(smallInts)) {
		return smallInts[n+256]
	}
	return nb.alloc(n)
}

func (nb *numBox) alloc(n int) lua.LValue {
	if len(nb.block) == cap(nb.block) {
		nb.block = make([]float64, 0, numBlock)
	}
	nb.block = append(nb.block, float64(n))
	// An interface holding an LNumber is its type word and a pointer to
	// the float64: point it at the block's slot, which is never written
	// again (the block only grows) and which the interface keeps alive.
	v := lua.LValue(lua.LNumber(0))
	(*iface)(unsafe.Pointer(&v)).data = unsafe.Pointer(&nb.block[len(nb.block)-1])
	return v
}

// iface is the layout of a non-empty interface value.
type iface struct {
	tab  unsafe.Pointer
	data unsafe.Pointer
}

// arity checks the argument count; on mismatch it logs like app_lua and
// pushes false (the caller returns 1).
func (e *Env) arity(L *lua.LState, name string, n int) bool {
	if got := L.GetTop(); got != n {
		e.D.Log.Error("invalid number of parameters", "function", "KSR."+name, "got", got, "expected", n)
		L.Push(lua.LFalse)
		return false
	}
	return true
}

// argStr is a KEMI STR parameter: numbers are converted as tostring does,
// nil (and anything else) becomes "".
func argStr(L *lua.LState, i int) string {
	v := L.Get(i)
	if s, ok := v.(lua.LString); ok {
		return string(s)
	}
	return argStrOther(v)
}

func argStrOther(v lua.LValue) string {
	if n, ok := v.(lua.LNumber); ok {
		return n.String()
	}
	return ""
}

// argInt is a KEMI INT parameter: numbers are truncated, numeric strings
// converted, anything else is 0 (lua_tointeger).
func argInt(L *lua.LState, i int) int {
	switch v := L.Get(i).(type) {
	case lua.LNumber:
		return int(v)
	case lua.LString:
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return int(f)
		}
		if n, err := strconv.ParseInt(string(v), 0, 64); err == nil {
			return int(n)
		}
	}
	return 0
}

// retInt returns an INT result.
func retInt(L *lua.LState, n int) int {
	L.Push(boxInt(n))
	return 1
}

// retBool returns a BOOL result: true for any C value other than 0, so a -1
// is true, as in Kamailio.
func retBool(L *lua.LState, n int) int {
	if n != 0 {
		L.Push(lua.LTrue)
	} else {
		L.Push(lua.LFalse)
	}
	return 1
}

// retStr returns an XVAL string.
func retStr(L *lua.LState, s string) int {
	L.Push(lua.LString(s))
	return 1
}

// retNil returns an XVAL null.
func retNil(L *lua.LState) int {
	L.Push(lua.LNil)
	return 1
}

// retNone is what a KEMI function without a return value (SR_KEMIP_NONE)
// gives Lua: false, as app_lua's sr_kemi_lua_return_int gives for any
// return kind but INT and a true BOOL (5.6, and still 5.8).
func retNone(L *lua.LState) int {
	L.Push(lua.LFalse)
	return 1
}

// ArgStr is argument i (from 1) of a Raw function as a KEMI STR: a number
// as tostring gives it, anything else but a string "".
func ArgStr(L *lua.LState, i int) string { return argStr(L, i) }

// ArgInt is argument i (from 1) of a Raw function as a KEMI INT: a number
// truncated, a numeric string converted, anything else 0.
func ArgInt(L *lua.LState, i int) int { return argInt(L, i) }
