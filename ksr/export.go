package ksr

import (
	"fmt"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Type is a KEMI parameter or return type (Kamailio's SR_KEMIP_*).
type Type uint8

const (
	None  Type = iota // no value: a function without parameters, or without a result
	Int               // integer (SR_KEMIP_INT)
	Str               // string (SR_KEMIP_STR)
	Bool              // boolean result: any C value but 0 is true (SR_KEMIP_BOOL)
	Xval              // string, integer or nil result (SR_KEMIP_XVAL)
	Value             // any Lua value (parameters of raw functions only, e.g. KSR.pv.sets)
)

// String is the type's name in app_lua.api_list and the docs.
func (t Type) String() string {
	switch t {
	case Int:
		return "int"
	case Str:
		return "str"
	case Bool:
		return "bool"
	case Xval:
		return "xval"
	case Value:
		return "any"
	}
	return "none"
}

// Export is one KSR function as data: Kamailio's sr_kemi_t. Every use of a
// KSR function derives from it: the Lua binding (bind), `kemi check`,
// `kemi stubs`, app_lua.api_list and the module docs.
//
// Func is a named Go function of one of the typed shapes below; bind
// applies Kamailio's argument rules once for all of them (too few
// arguments: logged, the call gives false; extra arguments are ignored; a
// nil or non-string STR is ""; a non-numeric INT is 0):
//
//	func(*Env) int                         func(*Env) lua.LValue
//	func(*Env, string) int                 func(*Env, string) lua.LValue
//	func(*Env, string, string) int         func(*Env, string, string) lua.LValue
//	func(*Env, string, string, string) int func(*Env, string, int) lua.LValue
//	func(*Env, int) int                    func(*Env, int) lua.LValue
//	func(*Env, int, int) int
//	func(*Env, int, string) int
//	func(*Env, int, string, int) int
//	func(*Env, string, int) int
//	func(*Env, string, string, int) int
//	func(*Env, string, int, int) int
//	func(*Env, string, int, string) int
//	func(*Env, string, string, int, int) int
//
// An int result is returned as Ret says: Int as a number, Bool as
// true/false, None as false (app_lua's sr_kemi_lua_return_int). A
// lua.LValue result is returned as it is (Xval).
// A Raw function reads its own arguments and pushes its own results; its
// Params are declared, and bind still checks that enough were given.
type Export struct {
	Name   string   // the Lua name: KSR.<sub>.<Name>
	Params []Type   // parameter types; derived from Func unless it is Raw
	Args   []string // parameter names, for stubs and docs (optional)
	Ret    Type
	Func   any
	Doc    string // one line
	// NoRetain declares that the function keeps no reference to the
	// message it is called for (its request, headers, ksr.Msg) once it
	// returns, nor hands one to anything that does: strings cut from the
	// message may be kept. Calling any other export marks the message
	// Kept, and only a request routed without such a call has its memory
	// reused (engine). Leave it false unless that is certain.
	NoRetain bool
}

// maxParams is Kamailio's SR_KEMI_PARAMS_MAX: a call with more arguments
// fails.
const maxParams = 6

// Raw is a binding that handles the Lua stack itself: variadic functions,
// functions that return several kinds of value, or that suspend the caller.
type Raw func(e *Env, L *lua.LState) int

// Submodule is one KSR table: KSR.<Name>, or KSR itself when Name is "".
type Submodule struct {
	Name  string
	Funcs []Export
}

// Fn returns the export's Lua name with its table: "KSR.sl.send_reply".
func (s Submodule) Fn(x *Export) string {
	if s.Name == "" {
		return "KSR." + x.Name
	}
	return "KSR." + s.Name + "." + x.Name
}

// paramsOf gives the parameter types of a typed Func, and false for a
// shape bind does not know.
func paramsOf(fn any) ([]Type, Type, bool) {
	switch fn.(type) {
	case func(*Env) int:
		return nil, Int, true
	case func(*Env, string) int:
		return []Type{Str}, Int, true
	case func(*Env, string, string) int:
		return []Type{Str, Str}, Int, true
	case func(*Env, string, string, string) int:
		return []Type{Str, Str, Str}, Int, true
	case func(*Env, int) int:
		return []Type{Int}, Int, true
	case func(*Env, int, int) int:
		return []Type{Int, Int}, Int, true
	case func(*Env, int, string) int:
		return []Type{Int, Str}, Int, true
	case func(*Env, int, string, int) int:
		return []Type{Int, Str, Int}, Int, true
	case func(*Env, string, int) int:
		return []Type{Str, Int}, Int, true
	case func(*Env, string, string, int) int:
		return []Type{Str, Str, Int}, Int, true
	case func(*Env, string, int, int) int:
		return []Type{Str, Int, Int}, Int, true
	case func(*Env, string, int, string) int:
		return []Type{Str, Int, Str}, Int, true
	case func(*Env, string, string, int, int) int:
		return []Type{Str, Str, Int, Int}, Int, true
	case func(*Env) lua.LValue:
		return nil, Xval, true
	case func(*Env, string) lua.LValue:
		return []Type{Str}, Xval, true
	case func(*Env, string, string) lua.LValue:
		return []Type{Str, Str}, Xval, true
	case func(*Env, string, int) lua.LValue:
		return []Type{Str, Int}, Xval, true
	case func(*Env, int) lua.LValue:
		return []Type{Int}, Xval, true
	case Raw:
		return nil, None, true
	}
	return nil, None, false
}

// Validate checks an export against its Func: a known shape, declared
// Params that match it, Args naming each parameter, and a return kind the
// shape can give.
func (x *Export) Validate() error {
	ps, ret, ok := paramsOf(x.Func)
	switch {
	case x.Name == "":
		return fmt.Errorf("export without a name")
	case !ok:
		return fmt.Errorf("%s: unsupported function type %T", x.Name, x.Func)
	}
	if _, raw := x.Func.(Raw); !raw {
		if x.Params != nil && !sameTypes(x.Params, ps) {
			return fmt.Errorf("%s: declared parameters %v but the function takes %v", x.Name, x.Params, ps)
		}
		switch {
		case ret == Xval && x.Ret != Xval:
			return fmt.Errorf("%s: the function returns a Lua value, so Ret must be Xval", x.Name)
		case ret == Int && x.Ret != Int && x.Ret != Bool && x.Ret != None:
			return fmt.Errorf("%s: the function returns an int, so Ret must be Int, Bool or None", x.Name)
		}
	}
	if x.Args != nil && len(x.Args) != len(x.ParamTypes()) {
		return fmt.Errorf("%s: %d argument names for %d parameters", x.Name, len(x.Args), len(x.ParamTypes()))
	}
	return nil
}

// ParamTypes returns the export's parameter types.
func (x *Export) ParamTypes() []Type {
	if _, raw := x.Func.(Raw); raw {
		return x.Params
	}
	ps, _, _ := paramsOf(x.Func)
	return ps
}

func sameTypes(a, b []Type) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Signature is the export as app_lua.api_list shows its parameters:
// "str, int", or "none".
func (x *Export) Signature() string {
	ps := x.ParamTypes()
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// binding is what an export's Lua function needs besides its Go function:
// one allocation per function and VM.
type binding struct {
	e     *Env
	fname string
	n     int // parameters
	ret   Type
	nums  *numBox // the VM's number boxes (Table.Register), shared by its bindings
}

// bad logs a call with a wrong number of arguments, as app_lua's
// sr_kemi_lua_exec_func_ex does, and gives false.
func (b *binding) bad(L *lua.LState) int {
	b.e.D.Log.Error("invalid number of parameters", "function", b.fname, "got", L.GetTop(), "expected", b.n)
	L.Push(lua.LFalse)
	return 1
}

// wrongCount says the call breaks app_lua's argument count rules for a
// function with parameters: fewer than b.n, or more than maxParams (small
// enough to be inlined in every binding below).
func (b *binding) wrongCount(L *lua.LState) bool {
	n := L.GetTop()
	return n < b.n || n > maxParams
}

// result pushes an int result as Ret says (Int inline: the common case).
func (b *binding) result(L *lua.LState, r int) int {
	if b.ret == Int {
		L.Push(b.nums.box(r))
		return 1
	}
	if b.ret == Bool {
		return retBool(L, r)
	}
	return retNone(L)
}

// bind turns the export into a Lua function of the VM whose state is e.
// fname is the full name used in error messages ("KSR.sl.send_reply").
//
// The argument count rules of app_lua's sr_kemi_lua_exec_func_ex: too few,
// or more than Kamailio's SR_KEMI_PARAMS_MAX, is logged and the call gives
// false; other extra arguments are ignored. A typed function without
// parameters called with some falls to the default case of app_lua's switch
// ("invalid parameters"): false too. Raw functions (app_lua's own, such as
// KSR.x.exit) are not held to that.
func (x *Export) bind(e *Env, fname string, nums *numBox) lua.LGFunction {
	b := &binding{e: e, fname: fname, n: len(x.ParamTypes()), ret: x.Ret, nums: nums}
	switch f := x.Func.(type) {
	case func(*Env) int:
		return func(L *lua.LState) int {
			if L.GetTop() != 0 {
				return b.bad(L)
			}
			return b.result(L, f(e))
		}
	case func(*Env, string) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argStr(L, 1)))
		}
	case func(*Env, string, string) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argStr(L, 1), argStr(L, 2)))
		}
	case func(*Env, string, string, string) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argStr(L, 1), argStr(L, 2), argStr(L, 3)))
		}
	case func(*Env, int) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argInt(L, 1)))
		}
	case func(*Env, int, int) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argInt(L, 1), argInt(L, 2)))
		}
	case func(*Env, int, string) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argInt(L, 1), argStr(L, 2)))
		}
	case func(*Env, int, string, int) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argInt(L, 1), argStr(L, 2), argInt(L, 3)))
		}
	case func(*Env, string, int) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argStr(L, 1), argInt(L, 2)))
		}
	case func(*Env, string, string, int) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argStr(L, 1), argStr(L, 2), argInt(L, 3)))
		}
	case func(*Env, string, int, int) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argStr(L, 1), argInt(L, 2), argInt(L, 3)))
		}
	case func(*Env, string, int, string) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argStr(L, 1), argInt(L, 2), argStr(L, 3)))
		}
	case func(*Env, string, string, int, int) int:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return b.result(L, f(e, argStr(L, 1), argStr(L, 2), argInt(L, 3), argInt(L, 4)))
		}
	case func(*Env) lua.LValue:
		return func(L *lua.LState) int {
			if L.GetTop() != 0 {
				return b.bad(L)
			}
			L.Push(f(e))
			return 1
		}
	case func(*Env, string) lua.LValue:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			L.Push(f(e, argStr(L, 1)))
			return 1
		}
	case func(*Env, string, string) lua.LValue:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			L.Push(f(e, argStr(L, 1), argStr(L, 2)))
			return 1
		}
	case func(*Env, string, int) lua.LValue:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			L.Push(f(e, argStr(L, 1), argInt(L, 2)))
			return 1
		}
	case func(*Env, int) lua.LValue:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			L.Push(f(e, argInt(L, 1)))
			return 1
		}
	case Raw:
		return func(L *lua.LState) int {
			if b.wrongCount(L) {
				return b.bad(L)
			}
			return f(e, L)
		}
	}
	panic(fmt.Sprintf("ksr: %s: unsupported function type %T (Table validates exports)", fname, x.Func))
}
