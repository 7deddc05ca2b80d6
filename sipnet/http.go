package sipnet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// This file is Kamailio's way to WebSocket: with the xhttp module loaded,
// a tcp or tls listener also takes HTTP requests (Options.HTTP). Each
// accepted connection's first bytes are looked at: SIP goes on to sipgo's
// stream transport as before; an HTTP request is handed to Options.HTTP
// (the xhttp event callback runs), which replies (xhttp_reply) or accepts
// a WebSocket upgrade (websocket.handle_handshake). An upgraded
// connection moves, with the request bytes it sent, to the listener's
// companion ws (tcp) or wss (tls) listener, where sipgo's WebSocket
// transport answers the handshake and reads SIP frames: its messages say
// ws or wss ($pr), as in Kamailio.

// HTTPHandler handles one HTTP request of a tcp or tls listener; it
// returns once x is answered or upgraded (or neither: 404).
type HTTPHandler func(x *HTTPExchange)

// HTTPExchange is one HTTP request and what the routing logic answers.
type HTTPExchange struct {
	Req      *http.Request
	Listener *Listener // the tcp or tls listener it came in on
	Src      netip.AddrPort

	mu       sync.Mutex
	upgrade  bool
	replied  bool
	code     int
	reason   string
	ctype    string
	body     string
	answered bool
}

// Reply answers the request (xhttp_reply); one answer only.
func (x *HTTPExchange) Reply(code int, reason, ctype, body string) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.answered {
		return errors.New("http request already answered")
	}
	x.answered, x.replied = true, true
	x.code, x.reason, x.ctype, x.body = code, reason, ctype, body
	return nil
}

// Upgrade accepts the WebSocket upgrade (websocket.handle_handshake):
// the handshake reply is sipgo's, sent once the handler returns.
func (x *HTTPExchange) Upgrade() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.answered {
		return errors.New("http request already answered")
	}
	x.answered, x.upgrade = true, true
	return nil
}

// httpMethods are the request methods that make a connection HTTP.
var httpMethods = []string{"GET ", "POST ", "PUT ", "DELETE ", "HEAD ", "OPTIONS /", "OPTIONS *"}

// sniffConn reads the first bytes of an accepted connection (on its own
// goroutine): SIP is handed to sipgo, HTTP is served. It reads until the
// bytes decide ("OPTIONS " may start either; a SIP request has "sip:" or
// "sips:" where HTTP has "/" or "*").
func (ln *Listener) sniffConn(c *tcpConn) {
	l := ln.tcp
	buf := make([]byte, 0, 4096)
	isHTTP := false
	for {
		n, err := c.Read(buf[len(buf):cap(buf)])
		if err != nil {
			l.unhand(c)
			return
		}
		buf = buf[:len(buf)+n]
		var decided bool
		isHTTP, decided = sniffHTTP(string(buf))
		if decided || len(buf) == cap(buf) {
			break
		}
	}
	c.prefix = buf
	if !isHTTP {
		l.handOver(c)
		return
	}
	ln.serveHTTP(c)
}

// sniffHTTP says whether head starts an HTTP request, and whether head is
// long enough to tell.
func sniffHTTP(head string) (isHTTP, decided bool) {
	for _, m := range httpMethods {
		if strings.HasPrefix(head, m) {
			return true, true
		}
		if len(head) < len(m) && strings.HasPrefix(m, head) {
			return false, false // could still be m
		}
	}
	return false, true
}

// handOver gives sipgo a connection to read (as Accept does).
func (l *tcpListener) handOver(c *tcpConn) {
	select {
	case l.dialed <- c:
	case <-l.done:
		l.unhand(c)
	}
}

// httpWriteTimeout bounds writing an HTTP reply.
const httpWriteTimeout = 10 * time.Second

// serveHTTP reads one HTTP request and has it answered.
func (ln *Listener) serveHTTP(c *tcpConn) {
	l := ln.tcp
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &raw)) // c's reads are bounded by tcp_rd_timeout
	req, err := http.ReadRequest(br)
	if err != nil {
		ln.srv.log.Debug("http request unreadable", "listen", ln.String(), "remote", c.key.String(), "error", err)
		l.unhand(c)
		return
	}
	if req.Body != nil && req.ContentLength > 0 {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	x := &HTTPExchange{Req: req, Listener: ln, Src: c.key}
	ln.srv.opts.HTTP(x)
	x.mu.Lock()
	upgrade, replied := x.upgrade, x.replied
	x.mu.Unlock()
	if upgrade && ln.ws != nil {
		if under, ok := c.detach(); ok {
			ln.ws.tcp.adopt(&replayConn{Conn: under, prefix: raw.Bytes()})
		}
		return
	}
	code, reason, ctype, body := 404, "Not Found", "", ""
	if replied {
		code, reason, ctype, body = x.code, x.reason, x.ctype, x.body
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", code, reason)
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
	c.Conn.SetWriteDeadline(time.Now().Add(httpWriteTimeout))
	io.WriteString(c.Conn, b.String())
	l.unhand(c)
}

// detach takes the socket away from the listener without closing it (it
// moves to the companion WebSocket listener): sipgo never had it.
func (c *tcpConn) detach() (net.Conn, bool) {
	if !c.closed.CompareAndSwap(false, true) {
		return nil, false
	}
	l := c.ln
	l.stats.live.Add(-1)
	l.connsMu.Lock()
	if l.conns[c.key] == c {
		delete(l.conns, c.key)
	}
	l.connsMu.Unlock()
	l.readers.Done()
	c.Conn.SetDeadline(time.Time{})
	return c.Conn, true
}

// adopt takes an upgraded connection into a companion listener: tracked
// under the cap like an accepted one and handed to sipgo's WebSocket
// transport, which answers the handshake from the replayed request.
func (l *tcpListener) adopt(c net.Conn) {
	if !l.reserve() {
		c.Close()
		return
	}
	l.handOver(l.track(c))
}

// replayConn returns prefix before reading the connection.
type replayConn struct {
	net.Conn
	prefix []byte
}

func (r *replayConn) Read(b []byte) (int, error) {
	if len(r.prefix) > 0 {
		n := copy(b, r.prefix)
		r.prefix = r.prefix[n:]
		return n, nil
	}
	return r.Conn.Read(b)
}

// noAccept is the companion listener's socket: it accepts nothing itself
// (connections arrive by adopt) and closes with its listener.
type noAccept struct {
	addr net.Addr
	done chan struct{}
	once sync.Once
}

func (n *noAccept) Accept() (net.Conn, error) { <-n.done; return nil, net.ErrClosed }
func (n *noAccept) Close() error              { n.once.Do(func() { close(n.done) }); return nil }
func (n *noAccept) Addr() net.Addr            { return n.addr }

// companionProto is the WebSocket protocol reached through a listener.
func companionProto(proto string) string {
	if proto == "tls" {
		return "wss"
	}
	return "ws"
}
