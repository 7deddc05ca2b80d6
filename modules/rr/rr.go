// Package rr is Kamailio's rr module in kemi: Record-Route and loose
// routing (RFC 3261 16.12), KSR.rr, with the module's defaults
// (append_fromtag on, lr on). kemi inserts the Record-Route header at once
// (not as a lump applied when forwarding), with the address of the socket
// the request came in on.
//
// Concurrency: the module has no settings and no runtime; its exports act
// only on the calling VM's Env and message, so they need no locking.
package rr

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/sipnet"
)

// Module is the rr module.
type Module struct{}

// New returns the rr module.
func New() *Module { return &Module{} }

// Info describes the module. Kamailio 5.6.3's rr modparams (rr_mod.c
// params[]) are accepted and ignored: kemi always appends the From tag
// and uses ";lr", never adds a username or an outbound flow token, and
// routes sips like sip. (ignore_user exists only when rr is built with
// ENABLE_USER_CHECK, off in 5.6.3's Makefile, so it is refused.)
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "rr",
		Doc:  "Record-Route and loose routing",
		Ignored: []string{"append_fromtag", "enable_double_rr", "enable_full_lr", "add_username",
			"enable_socket_mismatch_warning", "custom_user_avp", "force_send_socket", "ignore_sips", "sockname_mode"},
		Exports: []ksr.Submodule{{Name: "rr", Funcs: []ksr.Export{
			{Name: "record_route", Func: recordRoute, Ret: ksr.Int,
				Doc: "Add Record-Route: <sip:IP:PORT;lr;ftag=...> on top: 1 ok, -1 error (no request, or a second time)."},
			{Name: "record_route_params", Func: recordRouteParams, Ret: ksr.Int, Args: []string{"params"},
				Doc: "record_route with ;params added to the URI."},
			{Name: "record_route_preset", Func: recordRoutePreset, Ret: ksr.Int, Args: []string{"addr1", "addr2"},
				Doc: "Add Record-Route: <addr1;lr>, and <addr2;lr> below it when addr2 is not empty: 1 ok, -1 error."},
			{Name: "record_route_preset_one", Func: recordRoutePresetOne, Ret: ksr.Int, Args: []string{"addr1"},
				Doc: "Add Record-Route: <addr1;lr>: 1 ok, -1 error."},
			{Name: "loose_route", Func: looseRoute, Ret: ksr.Int,
				Doc: "Drop the Route headers pointing here; $du is the next one: 1 routed by Route headers, -1 none."},
		}}, moreExports()},
	}
}

// recordRoute is KSR.rr.record_route.
func recordRoute(e *ksr.Env) int { return addOwnRR(e, "") }

// recordRouteParams is KSR.rr.record_route_params(p): record_route with ;p.
func recordRouteParams(e *ksr.Env, params string) int {
	return addOwnRR(e, strings.TrimPrefix(params, ";"))
}

// recordRoutePreset is KSR.rr.record_route_preset(addr1, addr2) (rr_mod.c
// ki_record_route_preset): addr1 on top, then addr2 when it is not "" (a
// double Record-Route, enable_double_rr being on by default).
func recordRoutePreset(e *ksr.Env, addr1, addr2 string) int {
	r := rrRequest(e, "record_route_preset")
	if r == nil {
		return -1
	}
	if addr2 != "" {
		rr2, ok := presetRR(e, addr2)
		if !ok {
			return -1
		}
		rr1, ok := presetRR(e, addr1)
		if !ok {
			return -1
		}
		addRecordRoute(r, rr2)
		addRecordRoute(r, rr1)
		return 1
	}
	return recordRoutePresetOne(e, addr1)
}

// recordRoutePresetOne is KSR.rr.record_route_preset_one(addr1).
func recordRoutePresetOne(e *ksr.Env, addr1 string) int {
	r := rrRequest(e, "record_route_preset")
	if r == nil {
		return -1
	}
	rr, ok := presetRR(e, addr1)
	if !ok {
		return -1
	}
	addRecordRoute(r, rr)
	return 1
}

// presetRR is the Record-Route header <uri;lr>, false (logged) for an
// invalid uri.
func presetRR(e *ksr.Env, uri string) (*sip.RecordRouteHeader, bool) {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		e.D.Log.Error("record_route_preset: invalid uri", "uri", uri, "error", err)
		return nil, false
	}
	if u.UriParams == nil {
		u.UriParams = sip.NewParams()
	}
	u.UriParams.Add("lr", "")
	return &sip.RecordRouteHeader{Address: u}, true
}

// looseRoute is KSR.rr.loose_route: the Route headers pointing at this
// server are removed; if one remains, $du is set to it (a preloaded route
// too; a strict router, without ;lr, is treated as a loose one).
func looseRoute(e *ksr.Env) int {
	r := e.Msg.Request()
	if r == nil || e.Msg.Faked || r.Route() == nil {
		return -1
	}
	for {
		rt := r.Route()
		if rt == nil || !e.IsMyself(rt.Address.Host, rt.Address.Port) {
			break
		}
		routed(e, rt) // rr_more.go
		r.RemoveHeader("Route")
	}
	if next := r.Route(); next != nil {
		e.Msg.DstURI = next.Address.String()
	}
	return 1
}

// rrRequest is the request record_route* edits, nil (logged) when none.
func rrRequest(e *ksr.Env, fn string) *sip.Request {
	m := e.Msg
	if m == nil || m.Req == nil || m.Faked || m.Res != nil {
		e.D.Log.Error(fn + ": no request to record-route")
		return nil
	}
	return m.Req.Msg
}

// addOwnRR adds a Record-Route header with the receiving socket's address.
func addOwnRR(e *ksr.Env, params string) int {
	r := rrRequest(e, "record_route")
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
	if tp := sipnet.RRTransport(ln.Proto); tp != "" { // tcp, tls; ws for ws and wss
		u.UriParams.Add("transport", tp)
	}
	u.UriParams.Add("lr", "")
	if f := r.From(); f != nil {
		if tag, ok := f.Params.Get("tag"); ok && tag != "" {
			u.UriParams.Add("ftag", tag)
		}
	}
	for _, p := range strings.Split(params+e.Msg.RR.Params, ";") { // add_rr_param's first (rr_more.go)
		if k, v, _ := strings.Cut(p, "="); k != "" {
			u.UriParams.Add(k, v)
		}
	}
	if top := r.RecordRoute(); top != nil && top.Address.Host == u.Host && top.Address.Port == u.Port && top.Address.UriParams.Has("lr") {
		e.D.Log.Error("record_route: double attempt to record-route")
		return -1
	}
	e.Msg.RR.Added = &sip.RecordRouteHeader{Address: u}
	addRecordRoute(r, e.Msg.RR.Added)
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
