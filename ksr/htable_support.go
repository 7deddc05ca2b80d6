package ksr

import lua "github.com/yuin/gopher-lua"

// What modules outside package ksr need to evaluate pseudo-variables
// themselves (htable's $sht(table=>key) formats). ArgStr and ArgInt, for
// Raw exports, are in args.go.

// PVGet evaluates one pseudo-variable ("$si", "$hdr(From)", "$var(x)") in
// the VM's current message, as KSR.pv.get does: nil when it has no value.
func (e *Env) PVGet(name string) (lua.LValue, error) {
	s, err := e.pvParse(name)
	if err != nil {
		return lua.LNil, err
	}
	return s.get(e, s), nil
}
