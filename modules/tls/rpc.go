package tls

import (
	"context"
	"time"

	"kemi/jsonrpc"
)

// RPC is the module's commands, with Kamailio 5.6's names and reply
// shapes (tls_rpc.c); tls.list reports what crypto/tls knows of a
// connection (no OpenSSL buffers).
func (m *Module) RPC() []jsonrpc.Method {
	return []jsonrpc.Method{
		{Name: "tls.reload", Doc: "Reload TLS configuration file", Handler: func(context.Context, jsonrpc.Params) (any, error) {
			if err := m.Reload(); err != nil {
				return nil, &jsonrpc.Fault{Code: 500, Message: "Error while fixing TLS configuration (consult server log)"}
			}
			return "Ok. TLS configuration reloaded.", nil
		}},
		{Name: "tls.list", Doc: "List currently open TLS connections", Handler: func(context.Context, jsonrpc.Params) (any, error) {
			out := []map[string]any{}
			s := m.srv.Load()
			if s == nil {
				return out, nil
			}
			now := time.Now()
			for _, proto := range []string{"tls", "wss"} {
				for _, c := range s.Connections(proto) {
					cipher, state := "unknown", "init"
					if c.Handshake {
						cipher, state = c.Cipher+" "+c.TLSVersion, "established"
					}
					out = append(out, map[string]any{
						"id": c.ID, "created": c.Created.UTC().Format(time.ANSIC),
						"idle":   int(now.Sub(c.Created).Seconds()),
						"src_ip": c.Remote.Addr().String(), "src_port": int(c.Remote.Port()),
						"dst_ip": c.Local.Addr().String(), "dst_port": int(c.Local.Port()),
						"cipher": cipher, "state": state, "proto": c.Proto, "peer": c.PeerSubject,
					})
				}
			}
			return out, nil
		}},
		{Name: "tls.info", Doc: "Returns internal tls related info.", Handler: func(context.Context, jsonrpc.Params) (any, error) {
			n, max := 0, 0
			if s := m.srv.Load(); s != nil {
				n = len(s.Connections("tls")) + len(s.Connections("wss"))
				max = s.MaxConnections()
			}
			return map[string]any{"max_connections": max, "opened_connections": n, "clear_text_write_queued_bytes": 0}, nil
		}},
		{Name: "tls.options", Doc: "Dumps all the tls config options.", Handler: func(context.Context, jsonrpc.Params) (any, error) {
			ps := m.cur.Load()
			if ps == nil {
				return map[string]any{}, nil
			}
			var profs []map[string]any
			for _, p := range ps.all {
				profs = append(profs, map[string]any{
					"profile": "[" + string(p.role) + ":" + p.domain + "]", "method": p.method,
					"verify_certificate": b2i(p.verify), "require_certificate": b2i(p.require),
					"certificate": p.certFile, "certificate_info": p.certInfo, "ca_list": p.caFile,
					"server_name": p.serverName,
				})
			}
			return map[string]any{"config": ps.file, "loaded": ps.at.UTC().Format(time.RFC3339), "profiles": profs}, nil
		}},
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
