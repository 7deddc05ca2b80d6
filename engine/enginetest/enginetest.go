// Package enginetest starts engines for tests and talks SIP to them over
// loopback: a config and its scripts written to a temporary directory, an
// engine on ephemeral ports, and a minimal SIP client over UDP or TCP.
package enginetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"kemi/engine"
)

// Patience bounds how long a test waits for something that must happen: a reply, a count
// to be reached, a log line, a process to start or stop. It guards against a hang and is not a
// measurement: a passing test never waits for it, and it is long enough for two cores busy
// with other work under -race.
const Patience = 30 * time.Second

// Files writes name->content into dir.
func Files(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// Config is a minimal kamailio.cfg listening on ephemeral loopback ports
// (udp and tcp), loading app_lua with script.lua, plus extra lines.
func Config(extra ...string) string {
	return `#!KAMAILIO
debug=2
children=2
listen=udp:127.0.0.1:0
listen=tcp:127.0.0.1:0
loadmodule "sl.so"
loadmodule "tm.so"
loadmodule "pv.so"
loadmodule "app_lua.so"
modparam("app_lua", "load", "script.lua")
` + strings.Join(extra, "\n") + "\ncfgengine \"lua\"\n"
}

// Engine is a started engine with the log lines it printed.
type Engine struct {
	*engine.Engine
	Dir string
	Log *LogBuffer
}

// Start writes cfg as kemi.cfg and files into a temp dir, then builds and
// starts an engine on it (JSON-RPC on an ephemeral port); it is stopped at
// cleanup.
func Start(tb testing.TB, cfg string, files map[string]string, opts ...func(*engine.Options)) *Engine {
	tb.Helper()
	e, err := TryStart(tb, cfg, files, opts...)
	if err != nil {
		tb.Fatalf("start engine: %v", err)
	}
	return e
}

// TryStart is Start returning the error instead of failing.
func TryStart(tb testing.TB, cfg string, files map[string]string, opts ...func(*engine.Options)) (*Engine, error) {
	tb.Helper()
	dir := tb.TempDir()
	Files(tb, dir, files)
	Files(tb, dir, map[string]string{"kemi.cfg": cfg})
	set, err := engine.Load(filepath.Join(dir, "kemi.cfg"), nil)
	if err != nil {
		return nil, err
	}
	lb := &LogBuffer{}
	o := engine.Options{
		Logger:    slog.New(slog.NewTextHandler(io.MultiWriter(lb, testWriter{tb}), &slog.HandlerOptions{Level: slog.LevelDebug})),
		RPCListen: "127.0.0.1:0",
	}
	for _, f := range opts {
		f(&o)
	}
	e, err := engine.New(set, o)
	if err != nil {
		return nil, err
	}
	if err := e.Start(context.Background()); err != nil {
		return nil, err
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			tb.Errorf("stop engine: %v", err)
		}
	})
	return &Engine{Engine: e, Dir: dir, Log: lb}, nil
}

// Addr returns the listening address of proto ("udp" or "tcp").
func (e *Engine) Addr(proto string) string {
	l := e.SIP().Listener(proto)
	if l == nil {
		return ""
	}
	return l.Addr.String()
}

// RPCURL returns the JSON-RPC URL.
func (e *Engine) RPCURL() string { return "http://" + e.RPC().Addr().String() + "/RPC" }

// testWriter sends log output to t.Log, line by line.
type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// LogBuffer collects log output for assertions.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything logged so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Contains reports whether the log holds s.
func (l *LogBuffer) Contains(s string) bool { return strings.Contains(l.String(), s) }

// WaitFor waits until the log holds s or the timeout passes.
func (l *LogBuffer) WaitFor(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if l.Contains(s) {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// Client is a minimal SIP user agent over one UDP, TCP, TLS or WebSocket
// connection.
type Client struct {
	tb    testing.TB
	Proto string
	conn  net.Conn
	rd    *bufio.Reader
	mu    sync.Mutex
	ws    bool // one message per WebSocket text frame
}

// NewClient wraps an open stream connection (a crypto/tls client, say) as
// a Client whose Via says proto ("tls", "tcp"); it is closed at cleanup.
func NewClient(tb testing.TB, proto string, c net.Conn) *Client {
	tb.Cleanup(func() { c.Close() })
	return &Client{tb: tb, Proto: proto, conn: c, rd: bufio.NewReaderSize(c, 65536)}
}

// DialWS connects to addr over WebSocket with the "sip" subprotocol (RFC
// 7118): ws://, or wss:// when cfg is not nil.
func DialWS(tb testing.TB, addr string, cfg *tls.Config) (*Client, error) {
	d := ws.Dialer{Protocols: []string{"sip"}, TLSConfig: cfg, Timeout: Patience}
	url, proto := "ws://"+addr, "ws"
	if cfg != nil {
		url, proto = "wss://"+addr, "wss"
	}
	c, br, _, err := d.Dial(context.Background(), url)
	if err != nil {
		return nil, err
	}
	if br != nil {
		ws.PutReader(br)
	}
	tb.Cleanup(func() { c.Close() })
	return &Client{tb: tb, Proto: proto, conn: c, ws: true}, nil
}

// Dial connects to addr over proto.
func Dial(tb testing.TB, proto, addr string) *Client {
	tb.Helper()
	c, err := net.Dial(proto, addr)
	if err != nil {
		tb.Fatalf("dial %s %s: %v", proto, addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return &Client{tb: tb, Proto: proto, conn: c, rd: bufio.NewReaderSize(c, 65536)}
}

// RemoteAddr is the server's address.
func (c *Client) RemoteAddr() string { return c.conn.RemoteAddr().String() }

// LocalAddr is the client's address, as it appears in Via.
func (c *Client) LocalAddr() string { return c.conn.LocalAddr().String() }

// Req describes a request to build.
type Req struct {
	Method  string
	URI     string // default sip:test@<server>
	CallID  string // default random
	Branch  string // default random
	CSeq    int    // default 1
	Headers []string
	Body    string
}

// Build returns the raw request for r.
func (c *Client) Build(r Req) string {
	if r.URI == "" {
		r.URI = "sip:test@" + c.conn.RemoteAddr().String()
	}
	if r.CallID == "" {
		r.CallID = RandomID()
	}
	if r.Branch == "" {
		r.Branch = "z9hG4bK" + RandomID()
	}
	if r.CSeq == 0 {
		r.CSeq = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.Method, r.URI)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=%s;rport\r\n", strings.ToUpper(c.Proto), c.LocalAddr(), r.Branch)
	fmt.Fprintf(&b, "From: <sip:alice@example.com>;tag=%s\r\n", RandomID()[:8])
	fmt.Fprintf(&b, "To: <%s>\r\n", r.URI)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", r.CallID)
	fmt.Fprintf(&b, "CSeq: %d %s\r\n", r.CSeq, r.Method)
	b.WriteString("Max-Forwards: 70\r\n")
	for _, h := range r.Headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.Body), r.Body)
	return b.String()
}

// Send writes raw bytes.
func (c *Client) Send(raw string) {
	c.tb.Helper()
	if err := c.TrySend(raw); err != nil {
		c.tb.Fatalf("send: %v", err)
	}
}

// TrySend is Send returning the error, for probing a server that may not listen yet: over
// UDP, once the ICMP error for an earlier datagram has come back, the next send fails with
// "connection refused".
func (c *Client) TrySend(raw string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ws {
		return wsutil.WriteClientText(c.conn, []byte(raw))
	}
	_, err := c.conn.Write([]byte(raw))
	return err
}

// Recv reads one SIP message within timeout.
func (c *Client) Recv(timeout time.Duration) (sip.Message, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	var data []byte
	if c.ws {
		var err error
		if data, err = wsutil.ReadServerText(c.conn); err != nil {
			return nil, err
		}
	} else if c.Proto == "udp" {
		buf := make([]byte, 65536)
		n, err := c.conn.Read(buf)
		if err != nil {
			return nil, err
		}
		data = buf[:n]
	} else {
		var err error
		if data, err = readStream(c.rd); err != nil {
			return nil, err
		}
	}
	return sip.ParseMessage(data)
}

// RecvResponse reads messages until a response arrives.
func (c *Client) RecvResponse(timeout time.Duration) (*sip.Response, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := c.Recv(time.Until(deadline))
		if err != nil {
			return nil, err
		}
		if r, ok := m.(*sip.Response); ok {
			return r, nil
		}
	}
}

// Do sends r and returns its first final response. Provisional responses are skipped, and
// so are responses to other requests (another Call-ID): a late reply to an earlier request
// is not taken for this one's.
func (c *Client) Do(r Req, timeout time.Duration) *sip.Response {
	c.tb.Helper()
	if r.CallID == "" {
		r.CallID = RandomID()
	}
	c.Send(c.Build(r))
	deadline := time.Now().Add(timeout)
	for {
		res, err := c.RecvResponse(time.Until(deadline))
		if err != nil {
			c.tb.Fatalf("%s: no final response: %v", r.Method, err)
		}
		if res.StatusCode >= 200 && res.CallID() != nil && res.CallID().Value() == r.CallID {
			return res
		}
	}
}

func readStream(rd *bufio.Reader) ([]byte, error) {
	var head bytes.Buffer
	clen := 0
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue // keepalive CRLF
		}
		head.WriteString(line)
		l := strings.ToLower(strings.TrimSpace(line))
		if strings.HasPrefix(l, "content-length:") || strings.HasPrefix(l, "l:") {
			v := strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
			clen, _ = strconv.Atoi(v)
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	body := make([]byte, clen)
	if _, err := io.ReadFull(rd, body); err != nil {
		return nil, err
	}
	head.Write(body)
	return head.Bytes(), nil
}

// RandomID returns a random token.
func RandomID() string { return strconv.FormatUint(rand.Uint64(), 36) }

// UAS runs a next hop for the test on a loopback UDP socket, closed when
// the test ends, and returns its address. Each request it receives (ACKs
// are skipped) is given to answer, on the socket's one goroutine, with
// reply, which sends a response to the request's sender; answer may call
// it any number of times, and keep it to answer later.
func UAS(t testing.TB, answer func(req *sip.Request, reply func(*sip.Response))) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(buf[:n])
			req, ok := m.(*sip.Request)
			if err != nil || !ok || req.IsAck() {
				continue
			}
			answer(req, func(res *sip.Response) { c.WriteTo([]byte(res.String()), from) })
		}
	}()
	return c.LocalAddr().String()
}
