package sipnet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// guard bounds every wait of these tests: it only fails a test that hangs,
// the assertions wait for events and counts.
const guard = 30 * time.Second

// fakeListener returns the errors and connections of script in order,
// then the connections sent on conns, then net.ErrClosed once closed.
type fakeListener struct {
	mu     sync.Mutex
	script []any // error or net.Conn
	conns  chan net.Conn
	done   chan struct{}
	once   sync.Once
}

func newFakeListener(script ...any) *fakeListener {
	return &fakeListener{script: script, conns: make(chan net.Conn, 16), done: make(chan struct{})}
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	if len(f.script) > 0 {
		next := f.script[0]
		f.script = f.script[1:]
		f.mu.Unlock()
		if err, ok := next.(error); ok {
			return nil, err
		}
		return next.(net.Conn), nil
	}
	f.mu.Unlock()
	select {
	case c := <-f.conns:
		return c, nil
	case <-f.done:
		return nil, net.ErrClosed
	}
}

func (f *fakeListener) Close() error   { f.once.Do(func() { close(f.done) }); return nil }
func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060} }

func emfile() error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestTCPListenerRetriesAcceptErrors(t *testing.T) {
	a1, b1 := net.Pipe()
	a2, b2 := net.Pipe()
	defer b1.Close()
	defer b2.Close()
	var script []any
	for range 9 {
		script = append(script, emfile())
	}
	script = append(script, a1, emfile(), a2)
	fake := newFakeListener(script...)
	var stats tcpStats
	rec := &recordHandler{}
	l := newTCPListener(fake, newTCPLimits(Options{}), &stats, slog.New(rec))
	defer l.Close()
	clock := time.Unix(1000, 0)
	l.logLim.now = func() time.Time { return clock }
	var mu sync.Mutex
	var slept []time.Duration // by the accept goroutine
	l.sleep = func(d time.Duration, _ <-chan struct{}) bool {
		mu.Lock()
		defer mu.Unlock()
		slept = append(slept, d)
		if len(slept) == 5 {
			clock = clock.Add(time.Second) // the next error is logged, with 4 suppressed
		}
		return true
	}
	backoff := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return append([]time.Duration(nil), slept...)
	}
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after EMFILE: %v", err)
	}
	defer c.Close()
	// A success resets the back-off.
	c2, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if n := stats.acceptErrors.Load(); n != 10 {
		t.Errorf("accept errors counted: %d, want 10", n)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 5}
	got := backoff()
	if len(got) != len(want) {
		t.Fatalf("back-off %v, want %v ms", got, want)
	}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("back-off %v, want %v ms", got, want)
		}
	}
	if got := rec.lines(); len(got) != 2 || !strings.HasPrefix(got[0], "tcp accept failed, retrying error=") ||
		!strings.HasSuffix(got[1], "suppressed=4") || strings.Contains(got[0], "suppressed") {
		t.Errorf("logged %q, want one line, then one with suppressed=4", got)
	}
}

func TestTCPListenerCloseEndsBackoff(t *testing.T) {
	fake := newFakeListener(emfile())
	var stats tcpStats
	l := newTCPListener(fake, newTCPLimits(Options{}), &stats, quietLogger())
	sleeping := make(chan struct{})
	l.sleep = func(d time.Duration, done <-chan struct{}) bool {
		close(sleeping)
		return sleepOrDone(time.Hour, done)
	}
	res := make(chan error, 1)
	go func() { _, err := l.Accept(); res <- err }()
	<-sleeping
	l.Close()
	select {
	case err := <-res:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(guard):
		t.Fatal("Accept still backing off after Close")
	}
}

func TestTCPListenerClosesOverCap(t *testing.T) {
	fake := newFakeListener()
	var stats tcpStats
	l := newTCPListener(fake, newTCPLimits(Options{TCPMaxConnections: 1}), &stats, quietLogger())
	defer l.Close()
	a1, b1 := net.Pipe()
	a2, b2 := net.Pipe()
	a3, b3 := net.Pipe()
	defer b1.Close()
	defer b3.Close()
	fake.conns <- a1
	fake.conns <- a2
	c1, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	// The second connection is over the cap: closed, and Accept waits for
	// the next one.
	got := make(chan net.Conn, 1)
	go func() { c, _ := l.Accept(); got <- c }()
	if _, err := b2.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("over-cap connection: read %v, want EOF", err)
	}
	if stats.rejected.Load() != 1 {
		t.Fatalf("rejected %d, want 1", stats.rejected.Load())
	}
	c1.Close()
	c1.Close() // twice: the place is freed once
	if n := stats.live.Load(); n != 0 {
		t.Fatalf("live %d after close, want 0", n)
	}
	fake.conns <- a3
	select {
	case c := <-got:
		if c == nil {
			t.Fatal("no connection accepted after a place was freed")
		}
		c.Close()
	case <-time.After(guard):
		t.Fatal("no connection accepted after a place was freed")
	}
}

// TestTCPConnReadDoesNotAllocate: the deadline refresh is on every read.
func TestTCPConnReadDoesNotAllocate(t *testing.T) {
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stats tcpStats
	l := newTCPListener(tl, newTCPLimits(Options{}), &stats, quietLogger())
	defer l.Close()
	cli, err := net.Dial("tcp", tl.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	msg := []byte("x")
	allocs := testing.AllocsPerRun(200, func() {
		cli.Write(msg)
		if _, err := c.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per read", allocs)
	}
}

// echo answers every request 200 statelessly; with tx it creates a
// transaction for an INVITE and answers only 100 Trying through it (as
// while a relay or an async task is pending).
type echo struct{ tx bool }

func (e echo) HandleRequest(r *Request) {
	if e.tx && r.Msg.IsInvite() {
		tx, err := r.NewTx()
		if err == nil {
			tx.Reply(100, "Trying", nil, nil)
		}
		return
	}
	r.ReplyStateless(200, "OK", nil, nil)
}
func (echo) HandleResponse(*Response) {}

func startTCP(t *testing.T, opts Options, h Handler) *Server {
	t.Helper()
	opts.Listen = []Listen{{Proto: "tcp", Addr: "127.0.0.1:0"}}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	srv, err := New(opts, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	return srv
}

type tcpClient struct {
	net.Conn
	rd *bufio.Reader
	n  int
}

func dialTCP(t *testing.T, srv *Server) *tcpClient {
	t.Helper()
	c, err := net.Dial("tcp", srv.Listener("tcp").Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tcpClient{Conn: c, rd: bufio.NewReader(c)}
}

func (c *tcpClient) request(method string) string {
	c.n++
	la := c.LocalAddr().String()
	return fmt.Sprintf("%s sip:kemi@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-%s-%d\r\nFrom: <sip:t@x>;tag=1\r\nTo: <sip:kemi@x>\r\nCall-ID: %s-%d\r\nCSeq: %d %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		method, la, strings.ReplaceAll(la, ":", "-"), c.n, la, c.n, c.n, method)
}

// status sends a request and returns the status line of the reply.
func (c *tcpClient) status(t *testing.T, method string) string {
	t.Helper()
	c.SetDeadline(time.Now().Add(guard))
	if _, err := c.Write([]byte(c.request(method))); err != nil {
		t.Fatalf("send: %v", err)
	}
	line, err := c.rd.ReadString('\n')
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	for { // skip the headers
		h, err := c.rd.ReadString('\n')
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
		if h == "\r\n" {
			break
		}
	}
	return strings.TrimSpace(line)
}

// closedByPeer waits until the server closes c (EOF or reset).
func (c *tcpClient) closedByPeer(t *testing.T) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(guard))
	_, err := io.Copy(io.Discard, c.rd)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server did not close the connection")
	}
}

func waitStat(t *testing.T, srv *Server, what string, get func(Stats) uint64, want uint64) {
	t.Helper()
	end := time.Now().Add(guard)
	for get(srv.Stats()) != want {
		if time.Now().After(end) {
			t.Fatalf("%s = %d, want %d", what, get(srv.Stats()), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestTCPOverCapClosedOthersServed(t *testing.T) {
	srv := startTCP(t, Options{TCPMaxConnections: 2}, echo{})
	c1, c2 := dialTCP(t, srv), dialTCP(t, srv)
	for _, c := range []*tcpClient{c1, c2} {
		if s := c.status(t, "OPTIONS"); s != "SIP/2.0 200 OK" {
			t.Fatalf("reply %q", s)
		}
	}
	c3 := dialTCP(t, srv)
	c3.closedByPeer(t)
	if n := srv.Stats().TCPRejected; n != 1 {
		t.Fatalf("TCPRejected %d, want 1", n)
	}
	for _, c := range []*tcpClient{c1, c2} {
		if s := c.status(t, "OPTIONS"); s != "SIP/2.0 200 OK" {
			t.Fatalf("existing connection after a refusal: reply %q", s)
		}
	}
	c1.Close()
	waitStat(t, srv, "TCPConnections", func(s Stats) uint64 { return s.TCPConnections }, 1)
	if s := dialTCP(t, srv).status(t, "OPTIONS"); s != "SIP/2.0 200 OK" {
		t.Fatalf("new connection once a place is free: reply %q", s)
	}
}

func TestTCPIdleConnectionClosed(t *testing.T) {
	srv := startTCP(t, Options{TCPLifetime: 300 * time.Millisecond}, echo{})
	c := dialTCP(t, srv)
	if s := c.status(t, "OPTIONS"); s != "SIP/2.0 200 OK" {
		t.Fatalf("reply %q", s)
	}
	silent := dialTCP(t, srv) // never sends anything
	c.closedByPeer(t)
	silent.closedByPeer(t)
	st := srv.Stats()
	if st.TCPIdleClosed != 2 || st.TCPReadTimeouts != 0 {
		t.Fatalf("idle closed %d, read timeouts %d; want 2, 0", st.TCPIdleClosed, st.TCPReadTimeouts)
	}
	waitStat(t, srv, "TCPConnections", func(s Stats) uint64 { return s.TCPConnections }, 0)
}

func TestTCPIncompleteMessageCut(t *testing.T) {
	srv := startTCP(t, Options{TCPLifetime: time.Hour, TCPReadTimeout: 200 * time.Millisecond}, echo{})
	// A complete message, a pause longer than the read timeout, another:
	// between messages only the lifetime counts.
	c := dialTCP(t, srv)
	c.status(t, "OPTIONS")
	time.Sleep(600 * time.Millisecond)
	if s := c.status(t, "OPTIONS"); s != "SIP/2.0 200 OK" {
		t.Fatalf("reply after a pause between messages: %q", s)
	}
	// Part of a message and nothing more.
	stalled := dialTCP(t, srv)
	req := stalled.request("OPTIONS")
	stalled.Write([]byte(req[:40]))
	stalled.closedByPeer(t)
	// Slowloris: one byte every 20 ms never completes the message; the
	// deadline is not pushed back by each byte.
	slow := dialTCP(t, srv)
	stop := make(chan struct{})
	go func() {
		req := slow.request("OPTIONS")
		for i := 0; i < len(req)-4; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := slow.Write([]byte{req[i]}); err != nil {
				return
			}
		}
	}()
	slow.closedByPeer(t)
	close(stop)
	st := srv.Stats()
	if st.TCPReadTimeouts != 2 || st.TCPIdleClosed != 0 {
		t.Fatalf("read timeouts %d, idle closed %d; want 2, 0", st.TCPReadTimeouts, st.TCPIdleClosed)
	}
	if s := c.status(t, "OPTIONS"); s != "SIP/2.0 200 OK" {
		t.Fatalf("reply on the healthy connection: %q", s)
	}
}

// recordHandler keeps the records it handles as "message k=v ..." lines.
type recordHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	r.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	h.mu.Lock()
	h.msgs = append(h.msgs, line)
	h.mu.Unlock()
	return nil
}

func (h *recordHandler) lines() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.msgs...)
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) has(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// TestTCPNoNegativeRef: sipgo logs "TCP ref went negative" (on its default
// logger, slog.Default) when a connection is released after a hard close
// reset its reference count to 0: a server transaction still holding a
// connection the peer closed, and every connection open at shutdown.
func TestTCPNoNegativeRef(t *testing.T) {
	rec := &recordHandler{}
	old := slog.Default()
	slog.SetDefault(slog.New(rec))
	t.Cleanup(func() { slog.SetDefault(old) })

	srv := startTCP(t, Options{Logger: slog.New(rec)}, echo{tx: true})
	for i := 0; i < 3; i++ {
		c := dialTCP(t, srv)
		if s := c.status(t, "INVITE"); s != "SIP/2.0 100 Trying" {
			t.Fatalf("reply %q", s)
		}
		if s := c.status(t, "OPTIONS"); s != "SIP/2.0 200 OK" {
			t.Fatalf("reply %q", s)
		}
		c.Close() // the INVITE transaction outlives the connection
	}
	waitStat(t, srv, "TCPConnections", func(s Stats) uint64 { return s.TCPConnections }, 0)
	if n := srv.PendingTx(); n != 3 {
		t.Fatalf("%d transactions pending, want 3", n)
	}
	srv.txs.terminateAll()
	if rec.has("ref went negative") {
		t.Fatal(`sipgo logged "TCP ref went negative" when transactions ended after their connection`)
	}
	// Connections open at shutdown.
	for i := 0; i < 3; i++ {
		if s := dialTCP(t, srv).status(t, "OPTIONS"); s != "SIP/2.0 200 OK" {
			t.Fatalf("reply %q", s)
		}
	}
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.has("ref went negative") {
		t.Fatal(`sipgo logged "TCP ref went negative" at shutdown`)
	}
}

// responses passes the responses it receives on a channel.
type responses chan *Response

func (responses) HandleRequest(*Request)       {}
func (r responses) HandleResponse(m *Response) { r <- m }

// TestTCPDialedConnection: a request relayed over TCP opens a connection
// that sipgo reads like an accepted one (the reply reaches the handler), is
// reused for the next request, counts under the cap, and is released
// without "TCP ref went negative" at shutdown.
func TestTCPDialedConnection(t *testing.T) {
	rec := &recordHandler{}
	old := slog.Default()
	slog.SetDefault(slog.New(rec))
	t.Cleanup(func() { slog.SetDefault(old) })

	got := make(responses, 4)
	srv := startTCP(t, Options{}, got)
	ln := srv.Listener("tcp")
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	dst := peer.Addr().(*net.TCPAddr).AddrPort()
	raw := "OPTIONS sip:peer@" + dst.String() + " SIP/2.0\r\nVia: SIP/2.0/TCP " + ln.Addr.String() +
		";branch=z9hG4bK-dial-%d\r\nFrom: <sip:kemi@x>;tag=1\r\nTo: <sip:peer@x>\r\nCall-ID: dial-%d\r\nCSeq: %d OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	send := func(i int) {
		t.Helper()
		m, err := sip.ParseMessage([]byte(fmt.Sprintf(raw, i, i, i)))
		if err != nil {
			t.Fatal(err)
		}
		if err := ln.write(m, dst); err != nil {
			t.Fatalf("relay over tcp: %v", err)
		}
	}
	send(1)
	pc, err := peer.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetDeadline(time.Now().Add(guard))
	rd := bufio.NewReader(pc)
	for i := 1; i <= 2; i++ {
		if i == 2 {
			send(2) // on the same connection: the peer accepts no other
		}
		var req []string
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("peer read: %v", err)
			}
			if line == "\r\n" {
				break
			}
			req = append(req, strings.TrimSpace(line))
		}
		var via, cid string
		for _, h := range req {
			if strings.HasPrefix(h, "Via:") {
				via = h
			}
			if strings.HasPrefix(h, "Call-ID:") {
				cid = h
			}
		}
		fmt.Fprintf(pc, "SIP/2.0 200 OK\r\n%s\r\nFrom: <sip:kemi@x>;tag=1\r\nTo: <sip:peer@x>;tag=2\r\n%s\r\nCSeq: %d OPTIONS\r\nContent-Length: 0\r\n\r\n", via, cid, i)
		select {
		case r := <-got:
			if r.Msg.StatusCode != 200 {
				t.Fatalf("reply %d", r.Msg.StatusCode)
			}
		case <-time.After(guard):
			t.Fatal("the reply on the dialed connection never reached the handler")
		}
	}
	if n := srv.Stats().TCPConnections; n != 1 {
		t.Fatalf("TCPConnections %d, want 1", n)
	}
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.has("ref went negative") {
		t.Fatal(`sipgo logged "TCP ref went negative" at shutdown`)
	}
}

// replyAndExpect answers every request statelessly with extra headers and
// a body, and passes on what the builder would have written.
type replyAndExpect chan []byte

func (h replyAndExpect) HandleRequest(r *Request) {
	extra := []sip.Header{sip.NewHeader("X-Extra", "1"), sip.NewHeader("Content-Type", "text/plain")}
	body := []byte("hello")
	var want replyBuf
	encodeMessage(&want, buildResponse(r, 404, "Not Here", "", extra, body))
	h <- want.b
	r.ReplyStateless(404, "Not Here", extra, body)
}
func (replyAndExpect) HandleResponse(*Response) {}

// TestTCPStatelessReplyAsBuilt: over TCP the stateless reply is written by
// writeResponse, byte for byte what the reply builder and encoder wrote.
func TestTCPStatelessReplyAsBuilt(t *testing.T) {
	h := make(replyAndExpect, 4)
	srv := startTCP(t, Options{}, h)
	c := dialTCP(t, srv)
	for range 2 {
		c.SetDeadline(time.Now().Add(guard))
		if _, err := c.Write([]byte(c.request("OPTIONS"))); err != nil {
			t.Fatal(err)
		}
		want := <-h
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c.rd, got); err != nil {
			t.Fatalf("reply: %v (read %q)", err, got)
		}
		// The new To tags are random (16 hex digits each): compare without.
		tagless := regexp.MustCompile(`;tag=[0-9a-f]{16}\r\n`)
		if g, w := tagless.ReplaceAllString(string(got), ";tag=X\r\n"), tagless.ReplaceAllString(string(want), ";tag=X\r\n"); g != w || !strings.Contains(g, "To: <sip:kemi@x>;tag=X\r\n") {
			t.Fatalf("reply\n%q\nwant\n%q", got, want)
		}
	}
	// The reply is counted once written: the peer may read it first.
	for deadline := time.Now().Add(guard); srv.Stats().Replies < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if n := srv.Stats().Replies; n != 2 {
		t.Fatalf("%d replies counted", n)
	}
}

type keepRequests chan *Request

func (h keepRequests) HandleRequest(r *Request) { h <- r }
func (keepRequests) HandleResponse(*Response)   {}

// BenchmarkStatelessReplyTCP: a stateless 200 to an OPTIONS on a TCP
// connection, written by writeResponse (written) or built as a
// sip.Response and encoded (built, the path before).
func BenchmarkStatelessReplyTCP(b *testing.B) {
	h := make(keepRequests, 1)
	srv, err := New(Options{Listen: []Listen{{Proto: "tcp", Addr: "127.0.0.1:0"}}, Logger: quietLogger()}, h)
	if err != nil {
		b.Fatal(err)
	}
	if err := srv.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer srv.Stop(b.Context())
	c, err := net.Dial("tcp", srv.Listener("tcp").Addr.String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	cl := &tcpClient{Conn: c}
	if _, err := c.Write([]byte(cl.request("OPTIONS"))); err != nil {
		b.Fatal(err)
	}
	r := <-h
	go io.Copy(io.Discard, c) // keep the connection's queue empty
	benchWrittenBuilt(b, r)
}
