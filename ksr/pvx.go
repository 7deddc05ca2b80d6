package ksr

import (
	lua "github.com/yuin/gopher-lua"
)

// PVXExports is KSR.pvx: the pv module's helpers (pv.c,
// sr_kemi_pvx_exports at 5.6.3) for $xavp and $avp that kemi has, with
// their return codes. The xavu/xavi variants, sbranch_*, evalx, the
// params explode/implode and copy helpers are not there yet. They work on
// the core's message state, so they live here; modules/pv exports them.
func PVXExports() Submodule {
	r, rc := []string{"rname"}, []string{"rname", "cname"}
	return Submodule{Name: "pvx", Funcs: []Export{
		{Name: "xavp_seti", Func: pvxXavpSetI, Ret: Int, Args: []string{"rname", "ival"}, Doc: "Add a new $xavp(rname) item with an integer value: 1."},
		{Name: "xavp_sets", Func: pvxXavpSetS, Ret: Int, Args: []string{"rname", "sval"}, Doc: "Add a new $xavp(rname) item with a string value: 1."},
		{Name: "xavp_get", Func: pvxXavpGet, Ret: Xval, Args: r, Doc: "The value of the newest $xavp(rname) item, or nil."},
		{Name: "xavp_gete", Func: pvxXavpGetE, Ret: Xval, Args: r, Doc: "xavp_get, \"\" for null."},
		{Name: "xavp_getw", Func: pvxXavpGetW, Ret: Xval, Args: r, Doc: "xavp_get, \"<null>\" for null."},
		{Name: "xavp_rm", Func: pvxXavpRm, Ret: Int, Args: r, Doc: "Remove the newest $xavp(rname) item: 1."},
		{Name: "xavp_is_null", Func: pvxXavpIsNull, Ret: Int, Args: r, Doc: "1 if there is no $xavp(rname) item, else -1."},
		{Name: "xavp_child_seti", Func: pvxChildSetI, Ret: Int, Args: []string{"rname", "cname", "ival"}, Doc: "Set field cname of the newest $xavp(rname) item (a new item when none): 1."},
		{Name: "xavp_child_sets", Func: pvxChildSetS, Ret: Int, Args: []string{"rname", "cname", "sval"}, Doc: "xavp_child_seti with a string."},
		{Name: "xavp_child_get", Func: pvxChildGet, Ret: Xval, Args: rc, Doc: "$xavp(rname=>cname), or nil."},
		{Name: "xavp_child_gete", Func: pvxChildGetE, Ret: Xval, Args: rc, Doc: "xavp_child_get, \"\" for null."},
		{Name: "xavp_child_getw", Func: pvxChildGetW, Ret: Xval, Args: rc, Doc: "xavp_child_get, \"<null>\" for null."},
		{Name: "xavp_child_rm", Func: pvxChildRm, Ret: Int, Args: rc, Doc: "Remove field cname of the newest $xavp(rname) item: 1."},
		{Name: "xavp_child_is_null", Func: pvxChildIsNull, Ret: Int, Args: rc, Doc: "1 if $xavp(rname=>cname) is null, else -1."},
		{Name: "avp_seti", Func: pvxAvpSetI, Ret: Int, Args: []string{"name", "ival"}, Doc: "Add an integer $avp(name) value: 1."},
		{Name: "avp_sets", Func: pvxAvpSetS, Ret: Int, Args: []string{"name", "sval"}, Doc: "Add a string $avp(name) value: 1."},
		{Name: "avp_get", Func: pvxAvpGet, Ret: Xval, Args: []string{"name"}, Doc: "The newest $avp(name) value, or nil."},
		{Name: "avp_gete", Func: pvxAvpGetE, Ret: Xval, Args: []string{"name"}, Doc: "avp_get, \"\" for null."},
		{Name: "avp_getw", Func: pvxAvpGetW, Ret: Xval, Args: []string{"name"}, Doc: "avp_get, \"<null>\" for null."},
		{Name: "avp_rm", Func: pvxAvpRm, Ret: Int, Args: []string{"name"}, Doc: "Remove the newest $avp(name) value: 1."},
		{Name: "avp_is_null", Func: pvxAvpIsNull, Ret: Int, Args: []string{"name"}, Doc: "As Kamailio's: removes the newest $avp(name) value, then 1 if none is left, else -1."},
	}}
}

func (e *Env) xavps() map[string][]*XAVP {
	if e.Msg == nil {
		return nil
	}
	if e.Msg.XAVPs == nil {
		e.Msg.XAVPs = map[string][]*XAVP{}
	}
	return e.Msg.XAVPs
}

func (e *Env) xavpAdd(rname string, v any) int {
	xs := e.xavps()
	if xs == nil {
		return -1
	}
	xs[rname] = append([]*XAVP{{Val: v}}, xs[rname]...)
	return 1
}

func pvxXavpSetI(e *Env, rname string, v int) int { return e.xavpAdd(rname, int64(v)) }
func pvxXavpSetS(e *Env, rname, v string) int     { return e.xavpAdd(rname, v) }
func pvxXavpGet(e *Env, rname string) lua.LValue  { return e.xavpFirst(rname, lua.LNil) }
func pvxXavpGetE(e *Env, rname string) lua.LValue { return e.xavpFirst(rname, lua.LString("")) }
func pvxXavpGetW(e *Env, rname string) lua.LValue { return e.xavpFirst(rname, lua.LString("<null>")) }
func pvxChildGet(e *Env, r, c string) lua.LValue  { return e.xavpChild(r, c, lua.LNil) }
func pvxChildGetE(e *Env, r, c string) lua.LValue { return e.xavpChild(r, c, lua.LString("")) }
func pvxChildGetW(e *Env, r, c string) lua.LValue { return e.xavpChild(r, c, lua.LString("<null>")) }
func pvxChildSetI(e *Env, r, c string, v int) int { return e.xavpSetChild(r, c, int64(v)) }
func pvxChildSetS(e *Env, r, c, v string) int     { return e.xavpSetChild(r, c, v) }
func pvxAvpGet(e *Env, name string) lua.LValue    { return e.avpFirst(name, lua.LNil) }
func pvxAvpGetE(e *Env, name string) lua.LValue   { return e.avpFirst(name, lua.LString("")) }
func pvxAvpGetW(e *Env, name string) lua.LValue   { return e.avpFirst(name, lua.LString("<null>")) }
func pvxAvpSetI(e *Env, name string, v int) int   { return e.avpAdd(name, int64(v)) }
func pvxAvpSetS(e *Env, name, v string) int       { return e.avpAdd(name, v) }
func pvxXavpIsNull(e *Env, rname string) int      { return b2n(e.xavpFirst(rname, lua.LNil) == lua.LNil) }
func pvxChildIsNull(e *Env, rname, cname string) int {
	return b2n(e.xavpChild(rname, cname, lua.LNil) == lua.LNil)
}
func b2n(b bool) int {
	if b {
		return 1
	}
	return -1
}

// xavpFirst is the newest rname item's value (ki_xavp_get_xval): a field
// list reads as "<<xavp:...>>" in Kamailio, its address; kemi gives
// "<<xavp>>".
func (e *Env) xavpFirst(rname string, null lua.LValue) lua.LValue {
	if e.Msg == nil || len(e.Msg.XAVPs[rname]) == 0 {
		return null
	}
	it := e.Msg.XAVPs[rname][0]
	if it.Fields != nil {
		return lua.LString("<<xavp>>")
	}
	return fromGo(it.Val)
}

func (e *Env) xavpChild(rname, cname string, null lua.LValue) lua.LValue {
	if e.Msg == nil || len(e.Msg.XAVPs[rname]) == 0 {
		return null
	}
	for _, f := range e.Msg.XAVPs[rname][0].Fields {
		if f.Key == cname {
			return fromGo(f.Val)
		}
	}
	return null
}

// xavpSetChild is xavp_set_child_xval (core/xavp.c): the newest rname
// item's cname field replaced (a single-value item is replaced by a list,
// no item: a new one).
func (e *Env) xavpSetChild(rname, cname string, v any) int {
	xs := e.xavps()
	if xs == nil {
		return -1
	}
	items := xs[rname]
	if len(items) == 0 || items[0].Fields == nil {
		if len(items) > 0 {
			items = items[1:]
		}
		xs[rname] = append([]*XAVP{{Fields: []XField{{Key: cname, Val: v}}}}, items...)
		return 1
	}
	it := items[0]
	it.Fields = removeField(it.Fields, xavpName{key: cname})
	it.Fields = append([]XField{{Key: cname, Val: v}}, it.Fields...)
	return 1
}

func pvxXavpRm(e *Env, rname string) int {
	if xs := e.xavps(); xs != nil && len(xs[rname]) > 0 {
		xs[rname] = xs[rname][1:]
	}
	return 1
}

func pvxChildRm(e *Env, rname, cname string) int {
	if xs := e.xavps(); xs != nil && len(xs[rname]) > 0 {
		it := xs[rname][0]
		if it.Fields != nil {
			it.Fields = removeField(it.Fields, xavpName{key: cname})
		}
	}
	return 1
}

func (e *Env) avpAdd(name string, v any) int {
	if e.Msg == nil {
		return -1
	}
	if e.Msg.AVPs == nil {
		e.Msg.AVPs = map[string][]any{}
	}
	e.Msg.AVPs[name] = append(e.Msg.AVPs[name], v)
	return 1
}

func (e *Env) avpFirst(name string, null lua.LValue) lua.LValue {
	if e.Msg == nil {
		return null
	}
	st := e.Msg.AVPs[name]
	if len(st) == 0 {
		return null
	}
	return fromGo(st[len(st)-1])
}

func pvxAvpRm(e *Env, name string) int {
	if e.Msg != nil {
		if st := e.Msg.AVPs[name]; len(st) > 0 {
			e.Msg.AVPs[name] = st[:len(st)-1]
		}
	}
	return 1
}

// pvxAvpIsNull is ki_avp_is_null, which destroys the newest value before
// it looks (pv.c at 5.6.3).
func pvxAvpIsNull(e *Env, name string) int {
	pvxAvpRm(e, name)
	return b2n(e.avpFirst(name, lua.LNil) == lua.LNil)
}
