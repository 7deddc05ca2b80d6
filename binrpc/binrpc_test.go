package binrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"kemi/jsonrpc"
)

// fakeRPC answers a few methods as kemi's control plane would.
type fakeRPC struct{}

func (fakeRPC) Call(_ context.Context, method string, params ...any) (json.RawMessage, error) {
	switch method {
	case "core.version":
		return json.RawMessage(`"kamailio 5.6.3 (kemi)"`), nil
	case "echo":
		b, _ := json.Marshal(params)
		return b, nil
	case "stats":
		return json.RawMessage(`{"b":1,"a":{"x":"y"},"list":[1,2],"big":5000000000,"f":1.5,"n":null}`), nil
	}
	return nil, &jsonrpc.Fault{Code: 500, Message: "Method Not Found"}
}

func TestPacketRoundTrip(t *testing.T) {
	var e Encoder
	e.String("echo")
	e.Int(-7)
	e.String("a longer string than eight")
	e.Double(2.5)
	p := Packet{Type: TypeRequest, Cookie: 0x1234567, Body: e.Bytes()}
	got, err := ReadPacket(bytes.NewReader(p.Marshal()), MaxRequest)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cookie != p.Cookie || got.Type != TypeRequest || !bytes.Equal(got.Body, p.Body) {
		t.Fatalf("round trip: %+v, want %+v", got, p)
	}
	m, params, err := ParseRequest(got.Body)
	if err != nil {
		t.Fatal(err)
	}
	if m != "echo" || len(params) != 3 || params[0] != -7 || params[1] != "a longer string than eight" || params[2] != 2.5 {
		t.Fatalf("parsed %q %#v", m, params)
	}
}

func TestFromJSON(t *testing.T) {
	b, err := FromJSON([]byte(`{"b":1,"a":{"x":"y"},"list":[1,2],"n":null}`))
	if err != nil {
		t.Fatal(err)
	}
	var e Encoder
	e.StartStruct()
	e.AVP("b")
	e.Int(1)
	e.AVP("a")
	e.StartStruct()
	e.AVP("x")
	e.String("y")
	e.EndStruct()
	e.AVP("list")
	e.Int(1)
	e.AVP("list")
	e.Int(2)
	e.EndStruct()
	if !bytes.Equal(b, e.Bytes()) {
		t.Fatalf("got % x\nwant % x", b, e.Bytes())
	}
	if b, _ := FromJSON([]byte(`{}`)); len(b) != 0 {
		t.Fatalf("{} gave % x", b)
	}
}

func TestParseAddr(t *testing.T) {
	for in, want := range map[string]Addr{
		"unix:/run/k.sock":   {"unix", "/run/k.sock"},
		"unixs:/run/k.sock":  {"unix", "/run/k.sock"},
		"unixd:/run/k":       {"unixgram", "/run/k"},
		"tcp:127.0.0.1:2046": {"tcp", "127.0.0.1:2046"},
		"tcp:127.0.0.1":      {"tcp", "127.0.0.1:2049"},
		"udp:[::1]:9":        {"udp", "[::1]:9"},
		"/tmp/x":             {"unix", "/tmp/x"},
	} {
		got, err := ParseAddr(in)
		if err != nil || got != want {
			t.Errorf("ParseAddr(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"sctp:1.2.3.4", "unix:", "nothing"} {
		if _, err := ParseAddr(bad); err == nil {
			t.Errorf("ParseAddr(%q) accepted", bad)
		}
	}
}

func start(t *testing.T, a Addr) *Server {
	t.Helper()
	s := NewServer(a, fakeRPC{}, 0o600, nil)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return s
}

func call(t *testing.T, c net.Conn, cookie uint32, method string, params ...any) Packet {
	t.Helper()
	var e Encoder
	e.String(method)
	for _, p := range params {
		switch p := p.(type) {
		case int:
			e.Int(int32(p))
		case string:
			e.String(p)
		}
	}
	if _, err := c.Write(Packet{Type: TypeRequest, Cookie: cookie, Body: e.Bytes()}.Marshal()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // failure guard
	p, err := ReadPacket(c, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cookie != cookie {
		t.Fatalf("cookie %x, want %x", p.Cookie, cookie)
	}
	return p
}

func TestServerTCP(t *testing.T) {
	s := start(t, Addr{"tcp", "127.0.0.1:0"})
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := call(t, c, 7, "echo", 3, "x")
	var want Encoder
	want.Int(3)
	want.String("x")
	if p.Type != TypeReply || !bytes.Equal(p.Body, want.Bytes()) {
		t.Fatalf("reply %+v", p)
	}
	p = call(t, c, 8, "nope")
	if p.Type != TypeFault || !bytes.Equal(p.Body, Fault(500, "Method Not Found")) {
		t.Fatalf("fault %+v", p)
	}
}

// kamcmd runs Debian's kamcmd; it skips when absent outside CI.
func kamcmd(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("kamcmd")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("kamcmd not installed (the kamailio package); tests/run installs it")
		}
		t.Fatal("kamcmd not installed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kamcmd %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestKamcmd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ctl")
	start(t, Addr{"unix", sock})
	if got := kamcmd(t, "-s", "unix:"+sock, "core.version"); strings.TrimSpace(got) != "kamailio 5.6.3 (kemi)" {
		t.Errorf("core.version: %q", got)
	}
	got := kamcmd(t, "-s", "unix:"+sock, "stats")
	for _, w := range []string{"b: 1", "x: y", "list: 1", "list: 2", "big: 5000000000", "f: 1.5"} {
		if !strings.Contains(got, w) {
			t.Errorf("stats: %q lacks %q", got, w)
		}
	}
	s := start(t, Addr{"tcp", "127.0.0.1:0"})
	if got := kamcmd(t, "-s", "tcp:"+s.Addr().String(), "echo", "a", "2"); !strings.Contains(got, "a\n2") {
		t.Errorf("echo over tcp: %q", got)
	}
}
