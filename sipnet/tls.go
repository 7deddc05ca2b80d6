package sipnet

import (
	"crypto/tls"
	"net/netip"
	"sort"
	"time"
)

// This file is what the network layer needs from the tls module (modules/tls
// builds it from tls.cfg and the modparams) and what it tells the module
// back: the open connections of the tls and wss listeners (tls.list,
// tls.info).

// TLSConfig holds the TLS side of the tls and wss listeners and of tls
// relays. Both are read at each handshake, so the module can swap
// certificates (tls.reload) without closing a listener.
type TLSConfig struct {
	// Server is the config tls and wss listeners accept with; its
	// GetConfigForClient picks the profile of the listening address and
	// the current certificates.
	Server *tls.Config
	// Client returns the config a tls connection kemi opens to dst uses
	// (the [client:...] profile), or nil when there is none.
	Client func(dst netip.AddrPort) *tls.Config
}

func (c *TLSConfig) client(dst netip.AddrPort) *tls.Config {
	if c == nil || c.Client == nil {
		return nil
	}
	return c.Client(dst)
}

// ConnInfo describes an open stream connection.
type ConnInfo struct {
	ID      uint64 // stable for the connection's life
	Proto   string // the listener's: "tcp", "tls", "ws" or "wss"
	Local   netip.AddrPort
	Remote  netip.AddrPort
	Created time.Time
	// TLS: the negotiated version and cipher suite, and whether the
	// handshake is done ("" / false on plain connections).
	TLSVersion, Cipher string
	Handshake          bool
	// PeerSubject is the subject of the peer's verified certificate, if
	// it sent one.
	PeerSubject string
}

// Connections returns the open connections of the listeners of proto
// (every stream listener when proto is ""), oldest first.
func (s *Server) Connections(proto string) []ConnInfo {
	var out []ConnInfo
	for _, ln := range s.listeners {
		if ln.tcp == nil || (proto != "" && ln.Proto != proto) {
			continue
		}
		ln.tcp.connsMu.RLock()
		for _, c := range ln.tcp.conns {
			ci := ConnInfo{ID: c.id, Proto: ln.Proto, Local: ln.Addr, Remote: c.key, Created: c.created}
			if st := c.tlsState.Load(); st != nil {
				ci.Handshake = st.HandshakeComplete
				if st.HandshakeComplete {
					ci.TLSVersion = tls.VersionName(st.Version)
					ci.Cipher = tls.CipherSuiteName(st.CipherSuite)
					if len(st.PeerCertificates) > 0 {
						ci.PeerSubject = st.PeerCertificates[0].Subject.String()
					}
				}
			}
			out = append(out, ci)
		}
		ln.tcp.connsMu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// MaxConnections is the cap on stream connections (tcp_max_connections),
// shared by every stream listener.
func (s *Server) MaxConnections() int { return int(newTCPLimits(s.opts).maxConns) }
