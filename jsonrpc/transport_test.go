package jsonrpc

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func transportServer(t *testing.T) *Server {
	t.Helper()
	s, err := NewServer(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Register(Method{Name: "core.version", Handler: func(ctx context.Context, p Params) (any, error) {
		return "kemi x", nil
	}})
	s.Register(Method{Name: "echo", Handler: func(ctx context.Context, p Params) (any, error) {
		a, _ := p.String(0)
		n, _ := p.Int(1)
		return map[string]any{"s": a, "n": n}, nil
	}})
	return s
}

func startTransport(t *testing.T, tr Transport) {
	t.Helper()
	if err := tr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tr.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
}

// kamcliRequest is a request as kamcli's iorpc.py writes it: one member a
// line, strings quoted, "i:" parameters bare, a random id.
func kamcliRequest(method string, params []string, extra string) string {
	s := "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": \"" + method + "\",\n"
	if len(params) > 0 {
		var ps []string
		for _, p := range params {
			if v, ok := strings.CutPrefix(p, "i:"); ok {
				ps = append(ps, v)
			} else {
				ps = append(ps, `"`+strings.TrimPrefix(p, "s:")+`"`)
			}
		}
		s += "  \"params\": [" + strings.Join(ps, ",\n") + "],\n"
	}
	return s + extra + "  \"id\": 4242\n}\n"
}

// TestDatagramKamcliFormat sends kamcli's request over the unix datagram
// socket from a bound client socket, as kamcli does.
func TestDatagramKamcliFormat(t *testing.T) {
	dir := t.TempDir()
	d := NewDatagram(transportServer(t), "unixgram", filepath.Join(dir, "rpc.sock"), 0o660, nil)
	startTransport(t, d)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "reply.sock"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		req, want string
	}{
		{kamcliRequest("core.version", nil, ""), `{"jsonrpc":"2.0","result":"kemi x","id":4242}`},
		{kamcliRequest("echo", []string{"a b", "i:7"}, ""), `{"jsonrpc":"2.0","result":{"n":7,"s":"a b"},"id":4242}`},
	} {
		if _, err := c.WriteTo([]byte(tc.req), &net.UnixAddr{Name: filepath.Join(dir, "rpc.sock"), Net: "unixgram"}); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(30 * time.Second)) // failure guard
		buf := make([]byte, MaxDatagram)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); got != tc.want {
			t.Errorf("reply %s, want %s", got, tc.want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "rpc.sock")); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode: %v %v", fi, err)
	}
}

// TestFIFOKamctlFormat writes two requests in kamctl's and kamcli's
// shapes to the FIFO and reads the replies from reply FIFOs.
func TestFIFOKamctlFormat(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rpc.fifo")
	startTransport(t, NewFIFO(transportServer(t), path, dir, 0o660, nil))
	for i, req := range []string{
		`{"jsonrpc": "2.0", "method": "echo", "params": ["x}{\"", 3], "reply_name": "r0", "id": 99}` + "\n",
		kamcliRequest("core.version", nil, "  \"reply_name\": \"r1\",\n"),
	} {
		name := []string{"r0", "r1"}[i]
		rp := filepath.Join(dir, name)
		if err := syscall.Mkfifo(rp, 0o666); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			f, err := os.Open(rp) // blocks until the server opens it
			if err != nil {
				got <- err.Error()
				return
			}
			defer f.Close()
			b, _ := io.ReadAll(bufio.NewReader(f))
			got <- string(b)
		}()
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.WriteString(req)
		w.Close()
		var reply string
		select {
		case reply = <-got:
		case <-time.After(60 * time.Second): // failure guard
			t.Fatal("no reply")
		}
		var v map[string]any
		if err := json.Unmarshal([]byte(reply), &v); err != nil {
			t.Fatalf("reply %q: %v", reply, err)
		}
		if i == 0 && (v["id"] != 99.0 || v["result"].(map[string]any)["s"] != `x}{"`) {
			t.Errorf("reply %q", reply)
		}
		if i == 1 && v["result"] != "kemi x" {
			t.Errorf("reply %q", reply)
		}
	}
}

func TestParseDgramSocket(t *testing.T) {
	for in, want := range map[string][2]string{
		"udp:127.0.0.1:8090": {"udp", "127.0.0.1:8090"},
		"/run/x.sock":        {"unixgram", "/run/x.sock"},
		"kamailio_rpc.sock":  {"unixgram", "/run/kamailio/kamailio_rpc.sock"},
		"unix:/tmp/k.sock":   {"unixgram", "/tmp/k.sock"},
	} {
		n, a, err := ParseDgramSocket(in, "/run/kamailio")
		if err != nil || n != want[0] || a != want[1] {
			t.Errorf("%q: %s %s %v", in, n, a, err)
		}
	}
	if _, _, err := ParseDgramSocket("udp:nope", "/run"); err == nil {
		t.Error("udp:nope accepted")
	}
}
