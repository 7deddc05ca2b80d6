// Package rr is Kamailio's rr module in kemi: Record-Route and loose
// routing (RFC 3261 16.12), KSR.rr, with the module's append_fromtag and
// enable_full_lr. kemi inserts the Record-Route header at once
// (not as a lump applied when forwarding), above the request's first
// header as Kamailio's lump, with the address of the socket the request
// came in on.
//
// Concurrency: the module's settings are read-only after the
// configuration is read and it has no runtime; its exports act only on the
// calling VM's Env and message, so they need no locking.
package rr

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/sipnet"
)

// Module is the rr module.
type Module struct {
	set Settings
}

// Settings are the rr modparams kemi honours.
type Settings struct {
	// AppendFromtag adds ;ftag=<From tag> to the Record-Route (default on).
	AppendFromtag bool
	// FullLR writes ";lr=on" instead of ";lr" (enable_full_lr, default off).
	FullLR bool
}

// New returns the rr module with Kamailio's defaults.
func New() *Module { return &Module{set: Settings{AppendFromtag: true}} }

// Info describes the module. Of Kamailio 5.6.3's rr modparams (rr_mod.c
// params[]) append_fromtag and enable_full_lr are honoured; the others
// are accepted and ignored: kemi never adds a username or an outbound
// flow token, and routes sips like sip. (ignore_user exists only when rr is built with
// ENABLE_USER_CHECK, off in 5.6.3's Makefile, so it is refused.)
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "rr",
		Doc:  "Record-Route and loose routing",
		Params: []ksr.Param{
			{Name: "append_fromtag", Set: ksr.SwitchSetting("rr", &m.set.AppendFromtag)},
			{Name: "enable_full_lr", Set: ksr.SwitchSetting("rr", &m.set.FullLR)},
		},
		Ignored: []string{"enable_double_rr", "add_username",
			"enable_socket_mismatch_warning", "custom_user_avp", "force_send_socket", "ignore_sips", "sockname_mode"},
		Exports: []ksr.Submodule{{Name: "rr", Funcs: []ksr.Export{
			{Name: "record_route", Func: m.recordRoute, Ret: ksr.Int,
				Doc: "Add Record-Route: <sip:IP:PORT;lr;ftag=...> on top: 1 ok, -1 error (no request, or a second time)."},
			{Name: "record_route_params", Func: m.recordRouteParams, Ret: ksr.Int, Args: []string{"params"},
				Doc: "record_route with ;params added to the URI."},
			{Name: "record_route_preset", Func: m.recordRoutePreset, Ret: ksr.Int, Args: []string{"addr1", "addr2"},
				Doc: "Add Record-Route: <sip:addr1;ftag=...;lr> (addr is host[:port][;params]), and addr2's below it when not empty: 1 ok, -1 error."},
			{Name: "record_route_preset_one", Func: m.recordRoutePresetOne, Ret: ksr.Int, Args: []string{"addr1"},
				Doc: "Add Record-Route: <sip:addr1;ftag=...;lr>: 1 ok, -1 error."},
			{Name: "loose_route", Func: looseRoute, Ret: ksr.Int,
				Doc: "Drop the top Route if it points here; $du is the next one: 1 routed by Route headers, -3 an initial request routed only to here, -1 none."},
		}}, moreExports()},
	}
}

// recordRoute is KSR.rr.record_route.
func (m *Module) recordRoute(e *ksr.Env) int { return m.addOwnRR(e, "") }

// recordRouteParams is KSR.rr.record_route_params(p): record_route with ;p.
func (m *Module) recordRouteParams(e *ksr.Env, params string) int {
	return m.addOwnRR(e, strings.TrimPrefix(params, ";"))
}

// recordRoutePreset is KSR.rr.record_route_preset(addr1, addr2) (rr_mod.c
// ki_record_route_preset): addr1 on top, then addr2 when it is not "" (a
// double Record-Route, enable_double_rr being on by default).
func (m *Module) recordRoutePreset(e *ksr.Env, addr1, addr2 string) int {
	r := rrRequest(e, "record_route_preset")
	if r == nil {
		return -1
	}
	if e.Msg.RR.Done { // rr's FL_RR_ADDED: one Record-Route per message
		e.D.Log.Error("record_route_preset: double attempt to record-route")
		return -1
	}
	if addr2 != "" {
		addRecordRoute(r, m.presetRR(r, addr2))
	}
	addRecordRoute(r, m.presetRR(r, addr1))
	e.Msg.RR.Done = true
	return 1
}

// recordRoutePresetOne is KSR.rr.record_route_preset_one(addr1).
func (m *Module) recordRoutePresetOne(e *ksr.Env, addr1 string) int {
	return m.recordRoutePreset(e, addr1, "")
}

// presetRR is the Record-Route header rr's record.c record_route_preset
// builds: "<sip:" (sips: for a sips R-URI), the address as given
// (host[:port][;params]: a URI given here gets a second scheme, as in
// Kamailio), ";ftag=" and the From tag, ";lr>". The text is kept as it is.
func (m *Module) presetRR(r *sip.Request, addr string) sip.Header {
	var b strings.Builder
	b.WriteString("<sip:")
	if r.Recipient.IsEncrypted() {
		b.Reset()
		b.WriteString("<sips:")
	}
	b.WriteString(addr)
	if f := r.From(); f != nil && m.set.AppendFromtag {
		if tag, ok := f.Params.Get("tag"); ok && tag != "" {
			b.WriteString(";ftag=")
			b.WriteString(tag)
		}
	}
	if m.set.FullLR {
		b.WriteString(";lr=on>")
	} else {
		b.WriteString(";lr>")
	}
	return sip.NewHeader("Record-Route", b.String())
}

// looseRoute is KSR.rr.loose_route (loose.c after_loose): when the top
// Route points at this server it is removed (with the next one too when it
// carries r2=on, a double Record-Route); if no Route remains the result is
// -3 (RR_PRELOADED) for an initial request (no To tag), else 1; otherwise
// $du is set to the next Route (a preloaded one too; a strict router,
// without ;lr, is treated as a loose one).
func looseRoute(e *ksr.Env) int {
	r := e.Msg.Request()
	if r == nil || e.Msg.Faked || r.Route() == nil {
		return -1
	}
	if rt := r.Route(); e.IsMyself(rt.Address.Host, rt.Address.Port) {
		double := false
		if rt.Address.UriParams != nil {
			v, ok := rt.Address.UriParams.Get("r2")
			double = ok && v == "on"
		}
		routed(e, rt) // rr_more.go
		r.RemoveHeader("Route")
		if double && r.Route() != nil {
			r.RemoveHeader("Route")
		}
		if r.Route() == nil {
			if to := r.To(); to != nil {
				if tag, _ := to.Params.Get("tag"); tag == "" {
					return -3
				}
			}
			return 1
		}
	}
	e.Msg.DstURI = r.Route().Address.String()
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
func (m *Module) addOwnRR(e *ksr.Env, params string) int {
	r := rrRequest(e, "record_route")
	if r == nil {
		return -1
	}
	if e.Msg.RR.Done { // rr's FL_RR_ADDED: one Record-Route per message
		e.D.Log.Error("record_route: double attempt to record-route")
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
	if m.set.FullLR {
		u.UriParams.Add("lr", "on")
	} else {
		u.UriParams.Add("lr", "")
	}
	if f := r.From(); f != nil && m.set.AppendFromtag {
		if tag, ok := f.Params.Get("tag"); ok && tag != "" {
			u.UriParams.Add("ftag", tag)
		}
	}
	for _, p := range strings.Split(params+e.Msg.RR.Params, ";") { // add_rr_param's first (rr_more.go)
		if k, v, _ := strings.Cut(p, "="); k != "" {
			u.UriParams.Add(k, v)
		}
	}
	e.Msg.RR.Added = &sip.RecordRouteHeader{Address: u}
	addRecordRoute(r, e.Msg.RR.Added)
	e.Msg.RR.Done = true
	return 1
}

// addRecordRoute puts rr above the request's first header, where Kamailio
// anchors its Record-Route lump (record.c: msg->headers).
func addRecordRoute(r *sip.Request, rr sip.Header) {
	r.PrependHeader(rr)
}
