package tls

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"kemi/config"
)

// This file is a TLS profile (Kamailio's tls domain): its settings as
// written (modparams or a tls.cfg section), the tls.cfg reader, and the
// crypto/tls configuration a profile becomes once its files are loaded.

// role is a profile's side.
type role string

const (
	roleServer role = "server"
	roleClient role = "client"
)

// spec is one profile as written: [role:domain] and its keys. A key left
// out takes the default profile's value of the same role (Kamailio's
// tls_fill_missing); the default profiles take the modparams'.
type spec struct {
	role   role
	domain string         // "default", "any", or "IP:PORT"
	addr   netip.AddrPort // domain as an address (invalid for default/any)
	pos    config.Pos     // the section header, or the first modparam
	keys   map[string]value
}

// value is one setting with where it was written.
type value struct {
	s   string
	pos config.Pos
}

// profileKeys are the tls.cfg keys (and modparams) kemi reads; others are
// Kamailio's that kemi accepts and ignores (ignoredKeys).
var profileKeys = map[string]bool{
	"method": true, "tls_method": true, "certificate": true, "private_key": true, "ca_list": true,
	"verify_certificate": true, "require_certificate": true, "server_name": true, "cipher_list": true,
}

func ignoredKey(k string) bool {
	switch k {
	case "ca_path", "crl", "verify_depth", "verify_client", "server_name_mode", "server_id":
		return true
	}
	return false
}

// parseConfigFile reads a tls.cfg: "[server:default]", "[client:default]",
// "[server:IP:PORT]", "[client:IP:PORT]", "[server:any]" sections of
// "key = value" lines; '#' starts a comment.
func parseConfigFile(path string, notice func(config.Pos, string)) ([]*spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*spec
	var cur *spec
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 1; sc.Scan(); line++ {
		pos := config.Pos{File: path, Line: line}
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "[") {
			if !strings.HasSuffix(text, "]") {
				return nil, config.Errorf(pos, "tls.cfg: section %q: missing ']'", text)
			}
			s, err := parseSection(strings.TrimSpace(text[1 : len(text)-1]))
			if err != nil {
				return nil, config.Errorf(pos, "tls.cfg: section %q: %v", text, err)
			}
			for _, o := range out {
				if o.role == s.role && o.domain == s.domain {
					return nil, config.Errorf(pos, "tls.cfg: section %q defined twice (first at %s)", text, o.pos)
				}
			}
			s.pos = pos
			cur = s
			out = append(out, s)
			continue
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			return nil, config.Errorf(pos, "tls.cfg: expected key = value, got %q", text)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.Trim(strings.TrimSpace(v), `"`)
		if cur == nil {
			return nil, config.Errorf(pos, "tls.cfg: %q before any [server:...] or [client:...] section", k)
		}
		switch {
		case profileKeys[k]:
			if k == "tls_method" {
				k = "method"
			}
			cur.keys[k] = value{v, pos}
		case ignoredKey(k):
			notice(pos, fmt.Sprintf("tls.cfg: %q ignored by kemi", k))
		default:
			return nil, config.Errorf(pos, "tls.cfg: unknown key %q", k)
		}
	}
	return out, sc.Err()
}

func parseSection(s string) (*spec, error) {
	r, dom, ok := strings.Cut(s, ":")
	if !ok {
		return nil, errors.New("expected server:DOMAIN or client:DOMAIN")
	}
	sp := &spec{role: role(strings.ToLower(r)), domain: strings.ToLower(dom), keys: map[string]value{}}
	if sp.role != roleServer && sp.role != roleClient {
		return nil, fmt.Errorf("role %q: expected server or client", r)
	}
	switch sp.domain {
	case "default", "any":
		return sp, nil
	}
	ap, err := netip.ParseAddrPort(dom)
	if err != nil {
		return nil, fmt.Errorf("domain %q: expected default, any or IP:PORT", dom)
	}
	sp.addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return sp, nil
}

// profile is a spec with its defaults applied and its files loaded.
type profile struct {
	role       role
	domain     string
	addr       netip.AddrPort
	method     string
	minV, maxV uint16
	verify     bool
	require    bool
	serverName string
	certFile   string
	certs      []tls.Certificate
	certInfo   string // subject and expiry of the certificate, for tls.options
	caFile     string
	cas        *x509.CertPool
	cfg        *tls.Config
}

// safeCiphers are the TLS 1.2 suites kemi offers: ECDHE with AEAD only
// (TLS 1.3's are fixed by crypto/tls and all safe).
var safeCiphers = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// method turns Kamailio's tls_method into versions. kemi never goes below
// TLS 1.2: "SSLv23" (any) and "TLSv1+"/"TLSv1.1+" mean TLS 1.2+ (with a
// notice), a method that is only an older version is refused.
func method(v value, notice func(config.Pos, string)) (minV, maxV uint16, err error) {
	switch strings.ToUpper(v.s) {
	case "", "TLSV1.2+":
		return tls.VersionTLS12, tls.VersionTLS13, nil
	case "TLSV1.2":
		return tls.VersionTLS12, tls.VersionTLS12, nil
	case "TLSV1.3", "TLSV1.3+":
		return tls.VersionTLS13, tls.VersionTLS13, nil
	case "SSLV23", "TLSV1+", "TLSV1.1+":
		notice(v.pos, fmt.Sprintf("tls method %q: kemi accepts TLS 1.2 and 1.3 only (TLSv1.2+)", v.s))
		return tls.VersionTLS12, tls.VersionTLS13, nil
	case "SSLV2", "SSLV3", "TLSV1", "TLSV1.0", "TLSV1.1":
		return 0, 0, config.Errorf(v.pos, "tls method %q: refused, TLS before 1.2 is unsafe (use TLSv1.2+)", v.s)
	}
	return 0, 0, config.Errorf(v.pos, "tls method %q: expected TLSv1.2+, TLSv1.2, TLSv1.3 or TLSv1.3+", v.s)
}

func boolValue(v value, key string) (bool, error) {
	switch strings.ToLower(v.s) {
	case "", "0", "no", "off", "false":
		return false, nil
	case "1", "yes", "on", "true":
		return true, nil
	}
	if n, err := strconv.Atoi(v.s); err == nil {
		return n != 0, nil
	}
	return false, config.Errorf(v.pos, "tls %s: expected yes or no, got %q", key, v.s)
}

// resolvePath makes a relative file name relative to dir (the directory of
// the main configuration file, as Kamailio's get_abs_pathname); "./x" stays
// relative to the working directory.
func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) || strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || dir == "" {
		return p
	}
	return filepath.Join(dir, p)
}

// build loads a spec's files (keys missing from it are looked up in
// parent, the default profile of its role) and makes its tls.Config.
func build(sp *spec, parent map[string]value, dir string, notice func(config.Pos, string)) (*profile, error) {
	get := func(k string) value {
		if v, ok := sp.keys[k]; ok {
			return v
		}
		if v, ok := parent[k]; ok {
			return v
		}
		return value{pos: sp.pos}
	}
	p := &profile{role: sp.role, domain: sp.domain, addr: sp.addr}
	m := get("method")
	p.method = m.s
	if p.method == "" {
		p.method = "TLSv1.2+"
	}
	var err error
	if p.minV, p.maxV, err = method(m, notice); err != nil {
		return nil, err
	}
	if p.verify, err = boolValue(get("verify_certificate"), "verify_certificate"); err != nil {
		return nil, err
	}
	if p.require, err = boolValue(get("require_certificate"), "require_certificate"); err != nil {
		return nil, err
	}
	p.serverName = get("server_name").s
	if c := get("cipher_list"); c.s != "" {
		notice(c.pos, fmt.Sprintf("tls cipher_list %q ignored: kemi offers only ECDHE with AES-GCM or ChaCha20-Poly1305 (TLS 1.2) and TLS 1.3's suites", c.s))
	}
	cert, key := get("certificate"), get("private_key")
	switch {
	case cert.s != "" && key.s == "":
		return nil, config.Errorf(cert.pos, "tls %s: certificate %q without private_key", sp.name(), cert.s)
	case cert.s == "" && key.s != "":
		return nil, config.Errorf(key.pos, "tls %s: private_key %q without certificate", sp.name(), key.s)
	case cert.s != "":
		p.certFile = resolvePath(dir, cert.s)
		certPEM, err := os.ReadFile(p.certFile)
		if err != nil {
			return nil, config.Errorf(cert.pos, "tls %s: certificate: %v", sp.name(), err)
		}
		keyPEM, err := os.ReadFile(resolvePath(dir, key.s))
		if err != nil {
			return nil, config.Errorf(key.pos, "tls %s: private_key: %v", sp.name(), err)
		}
		kp, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, config.Errorf(cert.pos, "tls %s: certificate %q with private_key %q: %v", sp.name(), cert.s, key.s, err)
		}
		p.certs = []tls.Certificate{kp}
		if leaf := kp.Leaf; leaf != nil {
			p.certInfo = fmt.Sprintf("%s (expires %s)", leaf.Subject, leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
		}
	case sp.role == roleServer:
		return nil, config.Errorf(sp.pos, "tls %s: no certificate and private_key (modparam(\"tls\", \"certificate\", ...) or a certificate line in the tls.cfg section)", sp.name())
	}
	if ca := get("ca_list"); ca.s != "" {
		p.caFile = resolvePath(dir, ca.s)
		pem, err := os.ReadFile(p.caFile)
		if err != nil {
			return nil, config.Errorf(ca.pos, "tls %s: ca_list: %v", sp.name(), err)
		}
		p.cas = x509.NewCertPool()
		if !p.cas.AppendCertsFromPEM(pem) {
			return nil, config.Errorf(ca.pos, "tls %s: ca_list %q: no PEM certificate in it", sp.name(), ca.s)
		}
	}
	if p.verify && p.cas == nil {
		v := get("verify_certificate")
		return nil, config.Errorf(v.pos, "tls %s: verify_certificate needs a ca_list", sp.name())
	}
	p.cfg = p.tlsConfig()
	return p, nil
}

func (sp *spec) name() string { return "[" + string(sp.role) + ":" + sp.domain + "]" }

// tlsConfig is the profile as crypto/tls wants it. Verification follows
// Kamailio's: the peer's chain is checked against ca_list; a client does
// not check the server's name unless server_name is set (OpenSSL's
// SSL_VERIFY_PEER without a host check).
func (p *profile) tlsConfig() *tls.Config {
	c := &tls.Config{
		MinVersion:   p.minV,
		MaxVersion:   p.maxV,
		CipherSuites: safeCiphers,
		Certificates: p.certs,
	}
	if p.role == roleServer {
		switch {
		case p.verify && p.require:
			c.ClientAuth = tls.RequireAndVerifyClientCert
		case p.verify:
			c.ClientAuth = tls.VerifyClientCertIfGiven
		}
		c.ClientCAs = p.cas
		return c
	}
	// Client: crypto/tls's own check includes the host name, which
	// Kamailio does not; the chain is checked here instead.
	c.InsecureSkipVerify = true
	c.ServerName = p.serverName
	if p.verify {
		roots, name := p.cas, p.serverName
		c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			return verifyChain(raw, roots, name)
		}
	}
	return c
}

func verifyChain(raw [][]byte, roots *x509.CertPool, name string) error {
	if len(raw) == 0 {
		return errors.New("tls: the server sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, b := range raw {
		c, err := x509.ParseCertificate(b)
		if err != nil {
			return fmt.Errorf("tls: server certificate: %w", err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: name})
	return err
}
