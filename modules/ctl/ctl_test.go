package ctl

import (
	"strings"
	"testing"

	"kemi/binrpc"
	"kemi/config"
	"kemi/jsonrpc"
	"kemi/ksr"
)

func set(t *testing.T, m ksr.Module, param string, v config.Value) error {
	t.Helper()
	for _, p := range m.Info().Params {
		if p.Name == param {
			return p.Set(nil, config.Stmt{Kind: config.ModParam, Pos: config.Pos{File: "kemi.cfg", Line: 7}, Name: "ctl", Param: param, Value: v})
		}
	}
	t.Fatalf("no param %q", param)
	return nil
}

func TestParams(t *testing.T) {
	m := New()
	if err := set(t, m, "binrpc", config.Value{Str: "unix:/tmp/a"}); err != nil {
		t.Fatal(err)
	}
	if err := set(t, m, "binrpc", config.Value{Str: "tcp:127.0.0.1:2046"}); err != nil {
		t.Fatal(err)
	}
	if err := set(t, m, "mode", config.Value{Str: "0660", Int: 0o660, IsInt: true}); err != nil {
		t.Fatal(err)
	}
	s := m.Settings()
	want := []binrpc.Addr{{Network: "unix", Address: "/tmp/a"}, {Network: "tcp", Address: "127.0.0.1:2046"}}
	if len(s.Binrpc) != 2 || s.Binrpc[0] != want[0] || s.Binrpc[1] != want[1] || s.Mode != 0o660 {
		t.Fatalf("settings %+v", s)
	}
	err := set(t, m, "binrpc", config.Value{Str: "sctp:1.2.3.4"})
	if err == nil || !strings.Contains(err.Error(), "kemi.cfg:7") || !strings.Contains(err.Error(), `"sctp"`) {
		t.Fatalf("bad address: %v", err)
	}
	srv, _ := jsonrpc.NewServer(jsonrpc.Options{})
	if ts := m.RPCTransports(srv); len(ts) != 2 || ts[0].Name() != "binrpc unix:/tmp/a" {
		t.Fatalf("transports %v", ts)
	}
	if ts := New().RPCTransports(srv); len(ts) != 1 || ts[0].Name() != "binrpc unix:/run/kamailio/kamailio_ctl" {
		t.Fatalf("default transport %v", ts)
	}
}
