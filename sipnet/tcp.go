package sipnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Defaults of the TCP limits (Options.TCP* at zero). The first two are
// Kamailio's tcp_max_connections and tcp_connection_lifetime; Kamailio has
// no read timeout (a connection that stops in the middle of a message
// lives for the connection lifetime), kemi cuts it after
// DefaultTCPReadTimeout.
const (
	DefaultTCPMaxConnections = 2048
	DefaultTCPLifetime       = 120 * time.Second
	DefaultTCPReadTimeout    = 10 * time.Second
)

// Accept error back-off, as net/http's Server.Serve does for temporary
// errors: 5 ms doubling up to 1 s, reset by a successful accept.
const (
	acceptDelayMin = 5 * time.Millisecond
	acceptDelayMax = time.Second
)

// tcpLimits are the TCP options with their defaults applied.
type tcpLimits struct {
	maxConns          int64
	lifetime, partial time.Duration
}

func newTCPLimits(o Options) tcpLimits {
	l := tcpLimits{maxConns: int64(o.TCPMaxConnections), lifetime: o.TCPLifetime, partial: o.TCPReadTimeout}
	if l.maxConns <= 0 {
		l.maxConns = DefaultTCPMaxConnections
	}
	if l.lifetime <= 0 {
		l.lifetime = DefaultTCPLifetime
	}
	if l.partial <= 0 {
		l.partial = DefaultTCPReadTimeout
	}
	return l
}

// tcpStats are the TCP counters, shared by every TCP listener of a Server
// (tcp_max_connections caps them all together, as in Kamailio).
type tcpStats struct {
	ids                                            atomic.Uint64 // connection ids given out
	live                                           atomic.Int64
	acceptErrors, rejected, idleClosed, rdTimeouts atomic.Uint64
}

// tcpListener wraps the listening socket that sipgo's TCP transport serves.
// sipgo's accept loop returns on the first Accept error (and kemi's TCP
// listener would be gone for good after one EMFILE), so accepting retries
// every error but the listener's own close, with a back-off; and it closes
// at once a connection over the cap, so the listener keeps working for the
// others.
//
// Connections kemi opens to relay (dial) are handed to sipgo through Accept
// too, so that sipgo reads them as it reads accepted ones and every TCP
// connection of the listener is tracked, capped and timed out the same way.
type tcpListener struct {
	net.Listener
	proto string     // "tcp", "tls", "ws" or "wss"
	tlsc  *TLSConfig // client side of tls dials (nil without the tls module)
	// sniff, when set (xhttp on a tcp or tls listener, http.go), takes
	// each accepted connection instead of Accept: it hands SIP ones back
	// with handOver.
	sniff  func(*tcpConn)
	limits tcpLimits
	stats  *tcpStats
	log    *slog.Logger
	logLim logLimiter
	done   chan struct{}
	once   sync.Once
	sleep  func(time.Duration, <-chan struct{}) bool // waits, false once done closes; tests replace it

	readers sync.WaitGroup // read loops sipgo has not released yet

	start    sync.Once
	accepted chan accepted // from the accept goroutine
	dialed   chan *tcpConn // from dial

	connsMu sync.RWMutex
	conns   map[netip.AddrPort]*tcpConn  // open, by remote address
	dialing map[netip.AddrPort]*dialCall // dials in progress
}

type accepted struct {
	c   *tcpConn
	err error
}

// dialCall is a dial in progress, shared by the relays to the same peer.
type dialCall struct {
	done chan struct{}
	c    *tcpConn
	err  error
}

func newTCPListener(l net.Listener, limits tcpLimits, stats *tcpStats, log *slog.Logger) *tcpListener {
	return &tcpListener{
		Listener: l, limits: limits, stats: stats, log: log,
		done: make(chan struct{}), sleep: sleepOrDone,
		accepted: make(chan accepted), dialed: make(chan *tcpConn),
		conns: map[netip.AddrPort]*tcpConn{}, dialing: map[netip.AddrPort]*dialCall{},
	}
}

func sleepOrDone(d time.Duration, done <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

// Accept returns the next connection for sipgo to read: accepted (under
// the cap) or dialed. It returns an error only once the listener is closed.
func (l *tcpListener) Accept() (net.Conn, error) {
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.dialed:
		return c, nil
	case a := <-l.accepted:
		if a.err != nil {
			return nil, a.err
		}
		return a.c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// acceptLoop accepts connections and hands them to Accept until the
// listener closes.
func (l *tcpListener) acceptLoop() {
	for {
		c, err := l.acceptOne()
		if err == nil && l.sniff != nil {
			// xhttp: the first bytes say whether it is HTTP (http.go).
			go l.sniff(c)
			continue
		}
		select {
		case l.accepted <- accepted{c, err}:
			if err != nil {
				return
			}
		case <-l.done:
			if c != nil {
				l.unhand(c)
			}
			return
		}
	}
}

// acceptOne returns the next connection under the cap, retrying errors.
func (l *tcpListener) acceptOne() (*tcpConn, error) {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.closed() {
				return nil, err
			}
			// EMFILE, ENFILE, ENOBUFS, ECONNABORTED...: none of them is a
			// reason to stop listening.
			l.stats.acceptErrors.Add(1)
			delay = min(max(2*delay, acceptDelayMin), acceptDelayMax)
			if ok, n := l.logLim.allow(); ok {
				l.log.Error("tcp accept failed, retrying", withSuppressed(n, "error", err, "retry_in", delay)...)
			}
			if !l.sleep(delay, l.done) {
				return nil, net.ErrClosed
			}
			continue
		}
		delay = 0
		if !l.reserve() {
			c.Close()
			if ok, n := l.logLim.allowCap(); ok {
				l.log.Warn("tcp connection refused: tcp_max_connections reached",
					withSuppressed(n, "max", l.limits.maxConns, "remote", c.RemoteAddr().String())...)
			}
			continue
		}
		return l.track(c), nil
	}
}

// reserve takes a place under the cap, or counts a refusal.
func (l *tcpListener) reserve() bool {
	if l.stats.live.Add(1) > l.limits.maxConns {
		l.stats.live.Add(-1)
		l.stats.rejected.Add(1)
		return false
	}
	return true
}

// unhand closes a tracked connection sipgo never got: no read loop will
// release it.
func (l *tcpListener) unhand(c *tcpConn) {
	c.closeSocket()
	l.readers.Done()
}

// dial returns the open connection to dst, or opens one (a single dial
// for concurrent callers) and hands it to sipgo to read.
func (l *tcpListener) dial(ctx context.Context, dst netip.AddrPort) (*tcpConn, error) {
	l.connsMu.Lock()
	if c := l.conns[dst]; c != nil {
		l.connsMu.Unlock()
		return c, nil
	}
	call := l.dialing[dst]
	if call == nil {
		call = &dialCall{done: make(chan struct{})}
		l.dialing[dst] = call
		go func() {
			call.c, call.err = l.dialNew(dst)
			l.connsMu.Lock()
			delete(l.dialing, dst)
			l.connsMu.Unlock()
			close(call.done)
		}()
	}
	l.connsMu.Unlock()
	select {
	case <-call.done:
		return call.c, call.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *tcpListener) dialNew(dst netip.AddrPort) (*tcpConn, error) {
	if !l.reserve() {
		return nil, fmt.Errorf("tcp connection to %s: tcp_max_connections (%d) reached", dst, l.limits.maxConns)
	}
	c, err := l.dialConn(dst)
	if err != nil {
		l.stats.live.Add(-1)
		return nil, err
	}
	tc := l.track(c)
	select {
	case l.dialed <- tc:
		return tc, nil
	case <-l.done:
		l.unhand(tc)
		return nil, net.ErrClosed
	}
}

// dialConn opens a connection to dst: plain TCP, or TLS with the client
// profile (tls.go), its handshake done before sipgo reads it.
func (l *tcpListener) dialConn(dst netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	switch l.proto {
	case "tcp":
		return d.Dial("tcp", dst.String())
	case "tls":
		cfg := l.tlsc.client(dst)
		if cfg == nil {
			return nil, fmt.Errorf("tls connection to %s: no tls client profile (tls module not loaded)", dst)
		}
		ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
		defer cancel()
		td := tls.Dialer{NetDialer: &d, Config: cfg}
		c, err := td.DialContext(ctx, "tcp", dst.String())
		if err != nil {
			return nil, fmt.Errorf("tls connection to %s: %w", dst, err)
		}
		return c, nil
	}
	// A WebSocket peer (a browser) is reached only over the connection it
	// opened, as in Kamailio.
	return nil, fmt.Errorf("no %s connection to %s: kemi does not open WebSocket connections", l.proto, dst)
}

// framed reports whether the listener's connections carry WebSocket frames
// (ws, wss): sipgo reads whole frames, control frames (ping) included, so
// the incomplete-message timeout does not apply; the idle lifetime does.
func (l *tcpListener) framed() bool { return l.proto == "ws" || l.proto == "wss" }

// dialTimeout bounds a TCP connect for relaying.
const dialTimeout = 5 * time.Second

func (l *tcpListener) track(c net.Conn) *tcpConn {
	tc := &tcpConn{Conn: c, ln: l, created: time.Now(), id: l.stats.ids.Add(1)}
	if tlc, ok := c.(*tls.Conn); ok && l.proto == "tls" {
		if st := tlc.ConnectionState(); st.HandshakeComplete { // dialed: handshake done
			tc.tlsState.Store(&st)
		}
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		tc.key = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	l.readers.Add(1) // sipgo starts a read loop for it
	l.connsMu.Lock()
	closing := l.closed()
	if !closing && tc.key.IsValid() {
		l.conns[tc.key] = tc
	}
	l.connsMu.Unlock()
	if closing {
		tc.closeSocket() // accepted as the listener closed: its read loop ends at once
	}
	return tc
}

// closeConns closes every connection of the listener and waits until
// sipgo's read loop of each has ended and released it (bounded by ctx and
// by releaseWait), so that closing the transport layer afterwards finds
// none of them: sipgo's hard close of a connection whose read loop is
// still running makes that loop's release log "TCP ref went negative".
func (l *tcpListener) closeConns(ctx context.Context) {
	l.connsMu.Lock()
	conns := make([]*tcpConn, 0, len(l.conns))
	for _, c := range l.conns {
		conns = append(conns, c)
	}
	l.connsMu.Unlock()
	for _, c := range conns {
		c.closeSocket()
	}
	done := make(chan struct{})
	go func() { l.readers.Wait(); close(done) }()
	t := time.NewTimer(releaseWait)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-t.C:
		l.log.Debug("tcp read loops still running at close")
	}
}

// releaseWait bounds how long closeConns waits for sipgo's read loops.
const releaseWait = 2 * time.Second

// conn returns the open connection with src (accepted or dialed), or nil.
func (l *tcpListener) conn(src netip.AddrPort) *tcpConn {
	l.connsMu.RLock()
	c := l.conns[src]
	l.connsMu.RUnlock()
	return c
}

func (l *tcpListener) closed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

func (l *tcpListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// tcpConn is a connection of the listener (accepted, or dialed to relay)
// as sipgo's TCP transport reads it. Each Read sets the read deadline: the
// idle lifetime from now, or, while a message is incomplete, the read
// timeout from when it started. A deadline closes the connection, counted;
// sipgo sees io.EOF (it would log any other read error at error level; it
// ends its read loop either way). Any read error closes the socket here, so
// the descriptor is released whatever sipgo's reference count says.
//
// "Incomplete" is known without parsing: data was read and no message
// reached the listener's handler since. A message whose first bytes came
// in the same read as the end of the previous one is timed from its next
// bytes (at worst one lifetime later).
type tcpConn struct {
	net.Conn
	ln      *tcpListener
	key     netip.AddrPort
	created time.Time
	id      uint64 // tls.list's id
	prefix  []byte // read before sipgo got the connection (http.go): its first Reads return it
	// tlsState is the connection's TLS state once its handshake is done
	// (set by the first successful Read, or by dial): tls.list reads it
	// without taking the handshake lock.
	tlsState atomic.Pointer[tls.ConnectionState]

	// pending: data was read since the last complete message (set by Read,
	// cleared by the listener's message handler, on the read goroutine).
	pending atomic.Bool
	// partialSince is when a pending message was first seen by Read (read
	// goroutine only).
	partialSince time.Time
	partialSet   bool

	closed    atomic.Bool
	readEnded atomic.Bool // Read returned an error: sipgo's read loop ends
	released  atomic.Bool // sipgo closed c after its read loop ended
}

func (c *tcpConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	now := time.Now()
	lim := c.ln.limits
	deadline := now.Add(lim.lifetime)
	partial := c.pending.Load()
	if partial {
		if !c.partialSet {
			c.partialSince, c.partialSet = now, true
		}
		if d := c.partialSince.Add(lim.partial); d.Before(deadline) {
			deadline = d
		}
	} else {
		c.partialSet = false
	}
	if err := c.Conn.SetReadDeadline(deadline); err != nil {
		c.readEnded.Store(true)
		c.closeSocket()
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if err == nil && c.tlsState.Load() == nil {
		if tc, ok := c.Conn.(*tls.Conn); ok {
			st := tc.ConnectionState()
			c.tlsState.Store(&st)
		}
	}
	if n > 0 && !partial && !c.ln.framed() && hasContent(b[:n]) {
		c.pending.Store(true)
	}
	if err == nil {
		return n, nil
	}
	c.readEnded.Store(true)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Counted before the close, so that whoever sees the close sees
		// the count.
		if partial {
			c.ln.stats.rdTimeouts.Add(1)
			c.ln.log.Debug("tcp connection closed: incomplete message", "remote", c.key.String(), "timeout", lim.partial)
		} else {
			c.ln.stats.idleClosed.Add(1)
			c.ln.log.Debug("tcp connection closed: idle", "remote", c.key.String(), "lifetime", lim.lifetime)
		}
		err = io.EOF
	}
	c.closeSocket()
	return n, err
}

// messageDone records that a complete message arrived on c.
func (c *tcpConn) messageDone() { c.pending.Store(false) }

// hasContent reports whether b holds more than keep-alive CRLFs or padding.
func hasContent(b []byte) bool {
	for _, x := range b {
		if x != '\r' && x != '\n' && x != 0 {
			return true
		}
	}
	return false
}

// Close is sipgo's close of the connection (at the end of its read loop,
// or a hard close).
//
// sipgo's WebSocket transport also closes a connection whose upgrade failed
// (no read loop started): on ws and wss listeners any close releases it.
func (c *tcpConn) Close() error {
	if (c.readEnded.Load() || c.ln.framed()) && c.released.CompareAndSwap(false, true) {
		c.ln.readers.Done()
	}
	return c.closeSocket()
}

// closeSocket closes the socket once, and frees its place under the cap.
func (c *tcpConn) closeSocket() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	l := c.ln
	l.stats.live.Add(-1)
	if c.key.IsValid() {
		l.connsMu.Lock()
		if l.conns[c.key] == c {
			delete(l.conns, c.key)
		}
		l.connsMu.Unlock()
	}
	return c.Conn.Close()
}

// trackedConn is the sip.Connection replies and requests are written on,
// over a connection of the listener (accepted or dialed). It bypasses
// sipgo's reference count: the connection lives until the peer closes it,
// the idle lifetime or the read timeout (as in Kamailio), not until its
// last transaction ends. (sipgo resets the count to 0 on a hard close, so a transaction or
// a reply still holding the connection when the peer closed it decremented
// it below zero: "TCP ref went negative".)
type trackedConn struct{ c *tcpConn }

func (a trackedConn) LocalAddr() net.Addr { return a.c.LocalAddr() }

func (a trackedConn) WriteMsg(msg sip.Message) error {
	if a.c.closed.Load() {
		return net.ErrClosed
	}
	buf := replyBufs.Get().(*replyBuf)
	buf.b = buf.b[:0]
	encodeMessage(buf, msg)
	_, err := a.c.Write(buf.b)
	putReplyBuf(buf)
	return err
}

// write writes an encoded message (the stateless reply's writer).
func (a trackedConn) write(b []byte) error {
	if a.c.closed.Load() {
		return net.ErrClosed
	}
	_, err := a.c.Write(b)
	return err
}

func (a trackedConn) Ref(int) int            { return 1 }
func (a trackedConn) TryClose() (int, error) { return 1, nil }
func (a trackedConn) Close() error           { return nil }

// withSuppressed adds the count of suppressed lines to args, when there
// were some.
func withSuppressed(n int, args ...any) []any {
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	return args
}

// logLimiter lets through one accept-error line and one over-cap line per
// second, counting the ones it suppresses.
type logLimiter struct {
	mu         sync.Mutex
	last, lcap time.Time
	n, ncap    int
	now        func() time.Time // nil: time.Now (tests set a fake clock)
}

func (r *logLimiter) allow() (bool, int)    { return r.gate(&r.last, &r.n) }
func (r *logLimiter) allowCap() (bool, int) { return r.gate(&r.lcap, &r.ncap) }

func (r *logLimiter) gate(last *time.Time, n *int) (bool, int) {
	r.mu.Lock()
	now := time.Now()
	if r.now != nil {
		now = r.now()
	}
	defer r.mu.Unlock()
	if !last.IsZero() && now.Sub(*last) < time.Second {
		*n++
		return false, 0
	}
	s := *n
	*last, *n = now, 0
	return true, s
}

// writeTo writes msg to dst ("ip:port"): over the listener's TCP connection
// with dst when there is one, else through sipgo's transport layer.
func (ln *Listener) writeTo(msg sip.Message, dst string) error {
	if ln.tcp != nil {
		if ap, err := netip.ParseAddrPort(dst); err == nil {
			if c := ln.streamConn(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())); c != nil {
				return c.WriteMsg(msg)
			}
		}
	}
	return ln.tp.WriteMsgTo(msg, dst, ln.Proto)
}

// streamConn returns the connection messages to dst are written on, or
// nil: the tracked connection (tcp, tls), or sipgo's WebSocket connection
// over it, which frames what is written (ws, wss).
func (ln *Listener) streamConn(dst netip.AddrPort) sip.Connection {
	c := ln.tcp.conn(dst)
	if c == nil {
		return nil
	}
	if !ln.tcp.framed() {
		return trackedConn{c}
	}
	wc, err := ln.tp.GetConnection(ln.Proto, dst.String())
	if err != nil || wc == nil {
		return nil // upgrade not finished yet, or the connection is closing
	}
	return wsConn{wc, c}
}

// wsConn is sipgo's WebSocket connection over a tracked connection, with
// the reference counting bypassed as trackedConn does.
type wsConn struct {
	sip.Connection
	c *tcpConn
}

func (a wsConn) WriteMsg(msg sip.Message) error {
	if a.c.closed.Load() {
		return net.ErrClosed
	}
	return a.Connection.WriteMsg(msg)
}

func (a wsConn) Ref(int) int            { return 1 }
func (a wsConn) TryClose() (int, error) { return 1, nil }
func (a wsConn) Close() error           { return nil }
