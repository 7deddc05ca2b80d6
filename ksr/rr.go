package ksr

import (
	"strings"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"
)

// The KSR.rr functions: Record-Route and loose routing (RFC 3261 16.12),
// as Kamailio's rr module with its defaults (append_fromtag on, lr on, no
// double Record-Route). kemi inserts the Record-Route header at once (not as
// a lump applied when forwarding), with the address of the socket the
// request came in on.

func (e *Env) rrFuncs() map[string]lua.LGFunction {
	return map[string]lua.LGFunction{
		// record_route adds Record-Route: <sip:IP:PORT;lr;ftag=...> on top
		// of the request's Record-Route headers: 1 ok, -1 error (no
		// request, or record_route called twice).
		"record_route": func(L *lua.LState) int {
			return retInt(L, e.recordRoute(""))
		},
		// record_route_params(p) is record_route with ;p added to the URI.
		"record_route_params": func(L *lua.LState) int {
			if !e.arity(L, "rr.record_route_params", 1) {
				return 1
			}
			return retInt(L, e.recordRoute(strings.TrimPrefix(argStr(L, 1), ";")))
		},
		// record_route_preset(uri) adds Record-Route: <uri;lr> (uri as given).
		"record_route_preset": func(L *lua.LState) int {
			if !e.arity(L, "rr.record_route_preset", 1) {
				return 1
			}
			r := e.rrRequest("record_route_preset")
			if r == nil {
				return retInt(L, -1)
			}
			var u sip.Uri
			if err := sip.ParseUri(argStr(L, 1), &u); err != nil {
				e.D.Log.Error("record_route_preset: invalid uri", "uri", argStr(L, 1), "error", err)
				return retInt(L, -1)
			}
			if u.UriParams == nil {
				u.UriParams = sip.NewParams()
			}
			u.UriParams.Add("lr", "")
			addRecordRoute(r, &sip.RecordRouteHeader{Address: u})
			return retInt(L, 1)
		},
		// loose_route processes the Route headers of a request: the ones
		// pointing at this server are removed; if one remains, $du is set to
		// it (a preloaded route too). 1 routed by Route headers, -1 none.
		"loose_route": func(L *lua.LState) int {
			r := e.Msg.Request()
			if r == nil || e.Msg.Faked {
				return retInt(L, -1)
			}
			if r.Route() == nil {
				return retInt(L, -1)
			}
			for {
				rt := r.Route()
				if rt == nil || !e.isMyself(rt.Address.Host, rt.Address.Port) {
					break
				}
				r.RemoveHeader("Route")
			}
			if next := r.Route(); next != nil {
				// The next hop is the first remaining Route; a strict router
				// (no ;lr) is treated as a loose one.
				e.Msg.DstURI = next.Address.String()
			}
			return retInt(L, 1)
		},
	}
}

// rrRequest is the request record_route* edits, nil (logged) when none.
func (e *Env) rrRequest(fn string) *sip.Request {
	m := e.Msg
	if m == nil || m.Req == nil || m.Faked || m.Res != nil {
		e.D.Log.Error(fn + ": no request to record-route")
		return nil
	}
	return m.Req.Msg
}

func (e *Env) recordRoute(params string) int {
	r := e.rrRequest("record_route")
	if r == nil {
		return -1
	}
	ln := e.Msg.Req.Listener
	if ln == nil {
		e.D.Log.Error("record_route: request has no receiving socket")
		return -1
	}
	ap := ln.AdvertisedAddr(e.Msg.Req.Src.Addr())
	u := sip.Uri{Scheme: "sip", Host: ap.Addr().String(), Port: int(ap.Port()), UriParams: sip.NewParams()}
	if ln.Proto == "tcp" {
		u.UriParams.Add("transport", "tcp")
	}
	u.UriParams.Add("lr", "")
	if f := r.From(); f != nil {
		if tag, ok := f.Params.Get("tag"); ok && tag != "" {
			u.UriParams.Add("ftag", tag)
		}
	}
	for _, p := range strings.Split(params, ";") {
		if k, v, _ := strings.Cut(p, "="); k != "" {
			u.UriParams.Add(k, v)
		}
	}
	if top := r.RecordRoute(); top != nil && top.Address.Host == u.Host && top.Address.Port == u.Port && top.Address.UriParams.Has("lr") {
		e.D.Log.Error("record_route: double attempt to record-route")
		return -1
	}
	addRecordRoute(r, &sip.RecordRouteHeader{Address: u})
	return 1
}

// addRecordRoute puts rr before the request's first Record-Route header,
// or after its Via headers when it has none.
func addRecordRoute(r *sip.Request, rr *sip.RecordRouteHeader) {
	all := append([]sip.Header(nil), r.Headers()...)
	at := -1
	for i, h := range all {
		if strings.EqualFold(h.Name(), "Record-Route") {
			at = i
			break
		}
	}
	if at < 0 {
		r.AppendHeaderAfter(rr, "Via")
		return
	}
	for _, h := range all {
		r.RemoveHeader(h.Name())
	}
	for i, h := range all {
		if i == at {
			r.AppendHeader(rr)
		}
		r.AppendHeader(h)
	}
}
