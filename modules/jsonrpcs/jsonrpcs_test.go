package jsonrpcs

import (
	"strings"
	"testing"

	"kemi/config"
	"kemi/jsonrpc"
)

func set(t *testing.T, m *Module, param string, v config.Value) error {
	t.Helper()
	for _, p := range m.Info().Params {
		if p.Name == param {
			return p.Set(nil, config.Stmt{Kind: config.ModParam, Pos: config.Pos{File: "kemi.cfg", Line: 9}, Name: "jsonrpcs", Param: param, Value: v})
		}
	}
	t.Fatalf("no param %q", param)
	return nil
}

func names(ts []jsonrpc.Transport) string {
	var n []string
	for _, t := range ts {
		n = append(n, t.Name())
	}
	return strings.Join(n, ", ")
}

func TestTransports(t *testing.T) {
	srv, _ := jsonrpc.NewServer(jsonrpc.Options{})
	if got := names(New().RPCTransports(srv)); got != "jsonrpc fifo /run/kamailio/kamailio_rpc.fifo, jsonrpc dgram unixgram:/run/kamailio/kamailio_rpc.sock" {
		t.Errorf("defaults: %s", got)
	}
	m := New()
	set(t, m, "fifo_name", config.Value{Str: "/tmp/k.fifo"})
	set(t, m, "dgram_socket", config.Value{Str: "udp:127.0.0.1:8090"})
	if got := names(m.RPCTransports(srv)); got != "jsonrpc fifo /tmp/k.fifo, jsonrpc dgram udp:127.0.0.1:8090" {
		t.Errorf("configured: %s", got)
	}
	set(t, m, "transport", config.Value{Str: "2", Int: 2, IsInt: true})
	if got := names(m.RPCTransports(srv)); got != "jsonrpc fifo /tmp/k.fifo" {
		t.Errorf("transport 2: %s", got)
	}
	if err := set(t, m, "dgram_socket", config.Value{Str: "udp:nope"}); err == nil || !strings.Contains(err.Error(), "kemi.cfg:9") {
		t.Errorf("bad dgram_socket: %v", err)
	}
	if err := set(t, m, "transport", config.Value{Str: "9", Int: 9, IsInt: true}); err == nil {
		t.Error("transport 9 accepted")
	}
	set(t, m, "http_listen", config.Value{Str: "127.0.0.1:7000"})
	if s := m.Settings(); s.HTTPListen != "127.0.0.1:7000" || s.HTTPListenAt.Line != 9 {
		t.Errorf("http_listen: %+v", s)
	}
}
