package ksr

import lua "github.com/yuin/gopher-lua"

// What modules outside package ksr need to evaluate pseudo-variables
// themselves (htable's $sht(table=>key) formats) and to write Raw exports
// with Kamailio's argument conversions.

// PVGet evaluates one pseudo-variable ("$si", "$hdr(From)", "$var(x)") in
// the VM's current message, as KSR.pv.get does: nil when it has no value.
func (e *Env) PVGet(name string) (lua.LValue, error) {
	s, err := e.pvParse(name)
	if err != nil {
		return lua.LNil, err
	}
	return s.get(e, s), nil
}

// ArgStr reads Lua argument i as a KEMI STR parameter (nil or a non-string
// is "").
func ArgStr(L *lua.LState, i int) string { return argStr(L, i) }

// ArgInt reads Lua argument i as a KEMI INT parameter (non-numeric is 0).
func ArgInt(L *lua.LState, i int) int { return argInt(L, i) }
