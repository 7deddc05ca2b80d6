package sipnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// This file resolves next hops: a SIP URI ($du, a Route, the R-URI) becomes
// a Target, a transport and an address, with A/AAAA lookups (no NAPTR/SRV)
// that prefer an address family the server listens on.

// resolveTimeout bounds a DNS lookup of a next hop (the caller waits).
const resolveTimeout = 2 * time.Second

// Target is a resolved next hop.
type Target struct {
	Proto string // "udp", "tcp", "tls", "ws" or "wss"
	Addr  netip.AddrPort
}

func (t Target) String() string { return t.Proto + ":" + t.Addr.String() }

// ResolveURI turns a SIP URI string ($du, a Route, the R-URI) into a Target.
func (s *Server) ResolveURI(ctx context.Context, uri string) (Target, error) {
	var u sip.Uri
	if err := sip.ParseUri(uri, &u); err != nil {
		return Target{}, fmt.Errorf("parse uri %q: %w", uri, err)
	}
	return s.Resolve(ctx, &u)
}

// Resolve turns a SIP URI into a Target: the transport from ;transport=
// (udp when absent; tls for a sips: URI), the host as an IP literal or
// resolved with A/AAAA lookups (no NAPTR/SRV), and the port or the
// transport's default (5060, 5061 for tls, 80 for ws, 443 for wss).
func (s *Server) Resolve(ctx context.Context, u *sip.Uri) (Target, error) {
	proto := "udp"
	if tp, ok := u.UriParams.Get("transport"); ok {
		proto = strings.ToLower(tp)
	}
	if u.IsEncrypted() {
		// sips: is TLS end to end; with transport=ws it means wss (RFC 7118).
		switch proto {
		case "udp", "tcp", "tls":
			proto = "tls"
		case "ws", "wss":
			proto = "wss"
		}
	}
	port := u.Port
	switch proto {
	case "udp", "tcp":
		if port == 0 {
			port = 5060
		}
	case "tls":
		if port == 0 {
			port = 5061
		}
	case "ws":
		if port == 0 {
			port = 80
		}
	case "wss":
		if port == 0 {
			port = 443
		}
	default:
		return Target{}, fmt.Errorf("resolve %q: transport %q is not supported (udp, tcp, tls, ws or wss)", u.String(), proto)
	}
	ip, err := s.lookupIP(ctx, u.Host)
	if err != nil {
		return Target{}, err
	}
	return Target{Proto: proto, Addr: netip.AddrPortFrom(ip, uint16(port))}, nil
}

func (s *Server) lookupIP(ctx context.Context, host string) (netip.Addr, error) {
	host = strings.Trim(host, "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap(), nil
	}
	if host == "" {
		return netip.Addr{}, errors.New("resolve: empty host")
	}
	if s.opts.Outbound != nil {
		return virtualHostAddr, nil // a virtual server looks nothing up
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %q: %w", host, err)
	}
	for _, ip := range ips { // prefer a family we listen on
		ip = ip.Unmap()
		for _, ln := range s.listeners {
			if sameFamily(ln.Addr.Addr(), ip) {
				return ip, nil
			}
		}
	}
	if len(ips) == 0 {
		return netip.Addr{}, fmt.Errorf("resolve %q: no address", host)
	}
	return ips[0].Unmap(), nil
}

func sameFamily(local, remote netip.Addr) bool {
	if local.Is6() && local.IsUnspecified() {
		return true // [::] takes both
	}
	return local.Is4() == remote.Is4()
}
