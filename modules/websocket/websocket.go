// Package websocket is Kamailio's websocket module in kemi:
// KSR.websocket.handle_handshake, called from the xhttp event callback,
// upgrades the HTTP request's connection to SIP over WebSocket (RFC 7118):
// ws on a tcp listener, wss on a tls one. The frames are sipgo's
// WebSocket transport's (sipnet/http.go); a listen=ws:/wss: listener
// reaches the same transport without HTTP routing (docs/transports.md).
//
// Concurrency: the module has no state of its own.
package websocket

import (
	"strings"

	"kemi/ksr"
	"kemi/modules/xhttp"
)

// Module is the websocket module.
type Module struct{}

// New returns the websocket module.
func New() *Module { return &Module{} }

// Info describes the module. Kamailio 5.6.3's websocket.c params[] are
// accepted and ignored: sipgo answers pings, and idle connections are
// closed by tcp_connection_lifetime, not by keepalives.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "websocket",
		Doc:  "SIP over WebSocket: the handshake from the xhttp event callback",
		Ignored: []string{"keepalive_mechanism", "keepalive_timeout", "ping_application_data", "sub_protocols",
			"cors_mode", "keepalive_interval", "keepalive_processes", "timer_interval", "rm_delay_interval",
			"verbose_list", "event_callback"},
		Exports: []ksr.Submodule{{Name: "websocket", Funcs: []ksr.Export{
			{Name: "handle_handshake", Func: handleHandshake, Ret: ksr.Int,
				Doc: "Accept the HTTP request as a WebSocket handshake for SIP: 1 upgraded, -1 refused (answered 400, or not an HTTP request)."},
		}}},
	}
}

// handleHandshake checks the request as Kamailio's ws_handle_handshake
// does (GET, Upgrade: websocket, Connection: upgrade, a key, version 13,
// the "sip" subprotocol) and accepts it; a bad one is answered 400 (426
// for another version).
func handleHandshake(e *ksr.Env) int {
	x := xhttp.Exchange(e)
	if x == nil {
		e.D.Log.Error("websocket.handle_handshake: not an HTTP request (call it from the xhttp event callback)")
		return -1
	}
	h := x.Req.Header
	has := func(name, token string) bool {
		for _, v := range h.Values(name) {
			for _, p := range strings.Split(v, ",") {
				if strings.EqualFold(strings.TrimSpace(p), token) {
					return true
				}
			}
		}
		return false
	}
	why := ""
	switch {
	case x.Req.Method != "GET":
		why = "not a GET"
	case !has("Upgrade", "websocket"):
		why = "no Upgrade: websocket"
	case !has("Connection", "upgrade"):
		why = "no Connection: upgrade"
	case h.Get("Sec-WebSocket-Key") == "":
		why = "no Sec-WebSocket-Key"
	case h.Get("Sec-WebSocket-Version") != "13":
		x.Reply(426, "Upgrade Required", "", "")
		e.D.Log.Info("websocket handshake refused: version", "version", h.Get("Sec-WebSocket-Version"))
		return -1
	case !has("Sec-WebSocket-Protocol", "sip"):
		why = "no sip subprotocol"
	}
	if why != "" {
		x.Reply(400, "Bad Request", "", "")
		e.D.Log.Info("websocket handshake refused: " + why)
		return -1
	}
	if err := x.Upgrade(); err != nil {
		e.D.Log.Error("websocket.handle_handshake: " + err.Error())
		return -1
	}
	return 1
}
