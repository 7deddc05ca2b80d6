package tls

import (
	"crypto/tls"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kemi/config"
	"kemi/ksr"
)

// pair is a self-signed EC certificate and key (made once with openssl for
// these tests; expires in 2126).
func pair(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"server.pem", "server.key"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "engine", "testdata", "tls", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// configure sets modparams (name, value pairs, at kemi.cfg lines 1, 2...)
// and finishes the module as the config reader does.
func configure(t *testing.T, dir string, kv ...string) (*Module, []string, error) {
	t.Helper()
	m := New()
	var notices []string
	setup := ksr.NewSetup(filepath.Join(dir, "kemi.cfg"), &notices)
	params := map[string]ksr.Param{}
	for _, p := range m.Info().Params {
		params[p.Name] = p
	}
	for i := 0; i+1 < len(kv); i += 2 {
		st := config.Stmt{Pos: config.Pos{File: "kemi.cfg", Line: i/2 + 1}, Param: kv[i], Value: config.Value{Str: kv[i+1]}}
		if err := params[kv[i]].Set(setup, st); err != nil {
			return nil, nil, err
		}
	}
	return m, notices, m.Finish(setup)
}

func TestConfigFileErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	pair(t, dir)
	for name, tc := range map[string]struct{ cfg, want string }{
		"unknown key":  {"[server:default]\ncertificate = server.pem\nprivate_key = server.key\ncolour = blue\n", "tls.cfg: unknown key \"colour\", at " + dir + "/tls.cfg:4"},
		"bad section":  {"[server]\n", "expected server:DOMAIN or client:DOMAIN, at " + dir + "/tls.cfg:1"},
		"missing key":  {"[server:default]\ncertificate = server.pem\nprivate_key = nokey.pem\n", "tls [server:default]: private_key: open " + dir + "/nokey.pem: no such file or directory, at " + dir + "/tls.cfg:3"},
		"weak method":  {"[server:default]\nmethod = TLSv1\ncertificate = server.pem\nprivate_key = server.key\n", "tls method \"TLSv1\": refused, TLS before 1.2 is unsafe (use TLSv1.2+), at " + dir + "/tls.cfg:2"},
		"no ca_list":   {"[server:default]\ncertificate = server.pem\nprivate_key = server.key\nverify_certificate = yes\n", "verify_certificate needs a ca_list, at " + dir + "/tls.cfg:4"},
		"twice":        {"[client:default]\n[client:default]\n", "defined twice"},
		"domain":       {"[server:example.com]\n", "expected default, any or IP:PORT"},
		"no cert":      {"[server:10.0.0.1:5061]\nmethod = TLSv1.3\n", "no certificate and private_key"},
		"bad boolean":  {"[server:default]\ncertificate = server.pem\nprivate_key = server.key\n[client:default]\nverify_certificate = maybe\n", "expected yes or no, got \"maybe\", at " + dir + "/tls.cfg:5"},
		"key no value": {"[client:default]\nverify_certificate\n", "expected key = value"},
	} {
		t.Run(name, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "tls.cfg"), []byte(tc.cfg), 0o600)
			args := []string{"config", "tls.cfg"}
			if name == "no cert" {
				args = append(args, "certificate", "", "private_key", "")
			}
			_, _, err := configure(t, dir, args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
		})
	}
	_, _, err := configure(t, dir, "certificate", "server.pem")
	if err == nil || !strings.Contains(err.Error(), "certificate \"server.pem\" without private_key, at kemi.cfg:1") {
		t.Fatalf("certificate without key: %v", err)
	}
}

func TestProfilesPerAddressAndDefaults(t *testing.T) {
	dir := t.TempDir()
	pair(t, dir)
	os.WriteFile(filepath.Join(dir, "tls.cfg"), []byte(`
[server:default]
method = TLSv1.2+

[server:127.0.0.2:5061]
method = TLSv1.3

[client:default]
verify_certificate = no

[client:10.1.1.1:5061]
server_name = trunk.example.com
cipher_list = HIGH
`), 0o600)
	m, notices, err := configure(t, dir, "certificate", "server.pem", "private_key", "server.key", "config", "tls.cfg")
	if err != nil {
		t.Fatal(err)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "cipher_list \"HIGH\" ignored") {
		t.Errorf("notices: %q", notices)
	}
	ps := m.cur.Load()
	if ps.srvDefault.minV != tls.VersionTLS12 || len(ps.srvDefault.certs) != 1 {
		t.Errorf("server default: %+v", ps.srvDefault)
	}
	if p := ps.srv[netip.MustParseAddrPort("127.0.0.2:5061")]; p == nil || p.minV != tls.VersionTLS13 || len(p.certs) != 1 {
		t.Errorf("per-address server profile (certificate inherited from the modparams): %+v", p)
	}
	if c := m.clientConfig(netip.MustParseAddrPort("10.1.1.1:5061")); c.ServerName != "trunk.example.com" {
		t.Errorf("client profile for 10.1.1.1:5061: server name %q", c.ServerName)
	}
	if c := m.clientConfig(netip.MustParseAddrPort("10.9.9.9:5061")); c.ServerName != "" || c.MinVersion != tls.VersionTLS12 {
		t.Errorf("default client profile: %+v", c)
	}
	for _, cs := range ps.srvDefault.cfg.CipherSuites {
		if n := tls.CipherSuiteName(cs); !strings.Contains(n, "ECDHE") || !(strings.Contains(n, "GCM") || strings.Contains(n, "CHACHA20")) {
			t.Errorf("weak suite offered: %s", n)
		}
	}
}
