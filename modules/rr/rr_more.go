package rr

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
)

// This file holds rr's parameter functions (rr_mod.c at 5.6.3, all INT):
// add_rr_param, check_route_param, is_direction, and
// record_route_advertised_address.

// eCfg is Kamailio's E_CFG, is_direction's code for a bad direction.
const eCfg = -6

func moreExports() ksr.Submodule {
	return ksr.Submodule{Name: "rr", Funcs: []ksr.Export{
		{Name: "add_rr_param", Func: addRRParam, Ret: ksr.Int, Args: []string{"param"},
			Doc: "Add param (\";name=value\") to the Record-Route record_route added, or to the one it will add: 1 ok, -1 error."},
		{Name: "check_route_param", Func: checkRouteParam, Ret: ksr.Int, Args: []string{"re"},
			Doc: "1 if the parameters of the Route URI pointing here (\";lr;ftag=...\") match the regular expression re (any case), else -1."},
		{Name: "is_direction", Func: isDirection, Ret: ksr.Int, Args: []string{"dir"},
			Doc: "1 if the request flows in dir (\"downstream\": From tag is the Route's ftag, or none; \"upstream\"), -1 if not, -6 for another dir."},
		{Name: "record_route_advertised_address", Func: recordRouteAdvertised, Ret: ksr.Int, Args: []string{"addr"},
			Doc: "Add Record-Route: <sip:addr;ftag=...;lr> (host[:port]): 1 ok, -1 error or a second record-route."},
	}}
}

// routed remembers the parameters of rt, a Route URI pointing here that
// loose_route consumes (Kamailio's routed_params).
func routed(e *ksr.Env, rt *sip.RouteHeader) {
	if e.Msg.RR.Routed {
		return // the first one, as Kamailio keeps msg->route's
	}
	e.Msg.RR.Routed = true
	e.Msg.RR.RoutedParams = uriParams(&rt.Address)
}

// uriParams is the URI's parameters as written after the first ';'
// ("lr;ftag=x"), "" if none.
func uriParams(u *sip.Uri) string {
	if u.UriParams == nil || u.UriParams.Length() == 0 {
		return ""
	}
	s := u.String()
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[i:]
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// routeParams is redo_route_params: the remembered parameters, else the
// top Route URI's when it points here; false when none.
func routeParams(e *ksr.Env) (string, bool) {
	r := e.Msg.Request()
	if r == nil {
		return "", false
	}
	if e.Msg.RR.Routed {
		return e.Msg.RR.RoutedParams, e.Msg.RR.RoutedParams != ""
	}
	rt := r.Route()
	if rt == nil || !e.IsMyself(rt.Address.Host, rt.Address.Port) {
		return "", false
	}
	p := uriParams(&rt.Address)
	return p, p != ""
}

// addRRParam is ki_add_rr_param: appended to the Record-Route already
// added, else kept for the next record_route of this message.
func addRRParam(e *ksr.Env, param string) int {
	if e.Msg == nil || e.Msg.Request() == nil {
		return -1
	}
	if h := e.Msg.RR.Added; h != nil {
		for _, p := range strings.Split(param, ";") {
			if k, v, _ := strings.Cut(p, "="); k != "" {
				h.Address.UriParams.Add(k, v)
			}
		}
		return 1
	}
	if len(e.Msg.RR.Params)+len(param) > 512 { // RR_PARAM_BUF_SIZE
		e.D.Log.Error("add_rr_param: maximum size of rr_param_buf exceeded")
		return -1
	}
	e.Msg.RR.Params += param
	return 1
}

// checkRouteParam is ki_check_route_param: the regular expression
// (extended, any case) against ";" + the Route URI's parameters.
func checkRouteParam(e *ksr.Env, expr string) int {
	re, err := e.Regexp("(?i)" + expr)
	if err != nil {
		e.D.Log.Error("check_route_param: bad re", "re", expr, "error", err)
		return -1
	}
	p, ok := routeParams(e)
	if !ok || !re.MatchString(";"+p) {
		return -1
	}
	return 1
}

// isDirection is ki_is_direction: downstream when the Route URI has no
// ftag, or the From tag is it; upstream otherwise.
func isDirection(e *ksr.Env, dir string) int {
	var want bool // true: upstream
	switch strings.ToLower(dir) {
	case "downstream":
	case "upstream":
		want = true
	default:
		e.D.Log.Error("is_direction: unknown direction, use 'downstream' or 'upstream'", "dir", dir)
		return eCfg
	}
	if upstream(e) == want {
		return 1
	}
	return -1
}

func upstream(e *ksr.Env) bool {
	p, ok := routeParams(e)
	if !ok {
		return false
	}
	var ftag string
	for _, kv := range strings.Split(p, ";") {
		if k, v, _ := strings.Cut(kv, "="); strings.EqualFold(strings.TrimSpace(k), "ftag") {
			ftag = v
			break
		}
	}
	r := e.Msg.Request()
	if ftag == "" || r.From() == nil {
		return false
	}
	tag, _ := r.From().Params.Get("tag")
	return tag != "" && tag != ftag
}

// recordRouteAdvertised is ki_record_route_advertised_address: addr as the
// Record-Route's host[:port], with the ftag (the To tag for an upstream
// request), ;lr and add_rr_param's parameters, once per message.
func recordRouteAdvertised(e *ksr.Env, addr string) int {
	r := rrRequest(e, "record_route_advertised_address")
	if r == nil {
		return -1
	}
	if e.Msg.RR.Done {
		e.D.Log.Error("record_route_advertised_address: double attempt to record-route")
		return -1
	}
	var u sip.Uri
	if err := sip.ParseUri("sip:"+addr, &u); err != nil || u.Host == "" {
		e.D.Log.Error("record_route_advertised_address: invalid address", "addr", addr)
		return -1
	}
	u.UriParams = sip.NewParams()
	var tag string
	if upstream(e) {
		if t := r.To(); t != nil {
			tag, _ = t.Params.Get("tag")
		}
	} else if f := r.From(); f != nil {
		tag, _ = f.Params.Get("tag")
	}
	if tag != "" {
		u.UriParams.Add("ftag", tag)
	}
	u.UriParams.Add("lr", "") // after ftag, as build_advertised_rr writes them
	for _, p := range strings.Split(e.Msg.RR.Params, ";") {
		if k, v, _ := strings.Cut(p, "="); k != "" {
			u.UriParams.Add(k, v)
		}
	}
	e.Msg.RR.Added = &sip.RecordRouteHeader{Address: u}
	addRecordRoute(r, e.Msg.RR.Added)
	e.Msg.RR.Done = true
	return 1
}
