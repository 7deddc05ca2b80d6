package sipnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/emiago/sipgo/sip"
)

// udpBuffer is the socket buffer size asked for UDP listeners.
const udpBuffer = 4 << 20

// Listen is one socket to listen on.
type Listen struct {
	Proto string // "udp", "tcp", "tls", "ws" or "wss"
	Addr  string // "127.0.0.1:5060"; port 0 picks a free one
}

func (l Listen) String() string { return l.Proto + ":" + l.Addr }

// Handler receives what the network layer does not absorb. Implementations
// must not block for long: they hand the message to a worker.
type Handler interface {
	HandleRequest(r *Request)
	HandleResponse(r *Response)
}

// Options configures a Server.
type Options struct {
	Listen []Listen
	// ServerHeader is the value of the Server header in locally generated
	// replies ("" for none).
	ServerHeader string
	Logger       *slog.Logger
	// Outbound, when set, makes the server virtual (kemi test, virtual.go):
	// Start binds no socket, every Listen becomes a listener that hands what
	// it would send to Outbound, and Receive delivers messages as if they
	// had arrived.
	Outbound func(Outgoing)

	// TCP limits (zero takes the Default* value): connections open at
	// once over every TCP listener, accepted or opened to relay (Kamailio's
	// tcp_max_connections; one more is accepted and closed at once, or not
	// opened), how long a connection may stay without receiving anything
	// (tcp_connection_lifetime), and how long a message may stay
	// incomplete (tcp_rd_timeout, a kemi extension) before the connection
	// is closed.
	TCPMaxConnections int
	TCPLifetime       time.Duration
	TCPReadTimeout    time.Duration

	// HTTP, when set (the xhttp module), makes tcp and tls listeners take
	// HTTP requests too, and upgrade them to WebSocket on a companion ws
	// or wss listener (http.go).
	HTTP HTTPHandler

	// TLS is what tls and wss listeners accept with and what relays over
	// tls dial with (tls.go); required when a tls or wss listener is asked.
	TLS *TLSConfig
}

// Stats are counters of the network layer.
type Stats struct {
	Requests, Responses, Absorbed, Replies, ParseErrors, BadRequests uint64
	// Relayed counts requests and replies forwarded (statefully or not),
	// retransmissions excluded.
	Relayed uint64
	// Recycled counts requests whose parsed memory was reused
	// (Request.Recycle).
	Recycled uint64
	// TCP: connections open now (accepted or opened to relay), accept
	// errors survived, connections refused over tcp_max_connections,
	// closed idle (tcp_connection_lifetime) and closed with an incomplete
	// message (tcp_rd_timeout).
	TCPConnections                                               uint64
	TCPAcceptErrors, TCPRejected, TCPIdleClosed, TCPReadTimeouts uint64
}

// Server owns the listeners and the server transaction table.
type Server struct {
	opts      Options
	log       *slog.Logger
	handler   Handler
	listeners []*Listener
	txs       table
	branches  branchTable // client transactions of relayed requests (branch.go)
	wg        sync.WaitGroup
	cancel    context.CancelFunc
	timerHook afterFuncHook     // nil but in tests: see arm
	alloc     RequestAllocator  // the handler's, or nil
	ralloc    ResponseAllocator // the handler's, or nil
	wheels    wheelSet          // the timers of branches and transactions (timer.go)

	srcMu sync.Mutex
	srcIP map[netip.Addr]netip.Addr // wildcard listeners: local address per destination

	tcp tcpStats
	tm  tmStats // tm's transaction counters (tmstats.go)

	nRequests, nResponses, nAbsorbed, nReplies, nParseErrors, nRelayed, nBadRequests atomic.Uint64
	nRecycled                                                                        atomic.Uint64 // Request.Recycle
	arenas                                                                           arenaPool     // the UDP listeners' request arenas (Request.Recycle)
}

// Listener is one bound socket with its own sipgo transport layer, so that
// replies leave from the socket the request came in on.
type Listener struct {
	Proto string
	Addr  netip.AddrPort
	tp    *sip.TransportLayer
	pc    net.PacketConn
	raw   *rawSender // pc's sendto as a raw system call (udp_linux.go), or nil
	ln    net.Listener
	tcp   *tcpListener // ln, for every stream protocol (tcp, tls, ws, wss)
	ws    *Listener    // with Options.HTTP: the ws/wss listener upgraded connections move to (http.go)
	srv   *Server
	host  atomic.Pointer[hostText] // Addr's host as Via text (via.go)
}

// New validates opts; nothing is bound until Start.
func New(opts Options, h Handler) (*Server, error) {
	if h == nil {
		return nil, errors.New("sipnet: nil handler")
	}
	for _, l := range opts.Listen {
		switch p := strings.ToLower(l.Proto); p {
		case "udp", "tcp", "ws":
		case "tls", "wss":
			if opts.TLS == nil || opts.TLS.Server == nil {
				return nil, fmt.Errorf("listen %s: %s needs the tls module (loadmodule \"tls.so\") with a certificate", l, p)
			}
		default:
			return nil, fmt.Errorf("listen %s: unsupported protocol %q (udp, tcp, tls, ws or wss)", l, l.Proto)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opts: opts, log: log, handler: h, srcIP: map[netip.Addr]netip.Addr{}}
	s.alloc, _ = h.(RequestAllocator)
	s.ralloc, _ = h.(ResponseAllocator)
	s.txs.init()
	s.branches.init()
	return s, nil
}

// Start binds every listener and starts serving. On failure nothing stays bound.
func (s *Server) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	if s.opts.Outbound != nil {
		s.startVirtual()
		return nil
	}
	parser := sip.NewParser()
	for _, l := range s.opts.Listen {
		ln, err := s.bind(l, parser)
		if err != nil {
			s.closeListeners(ctx)
			cancel()
			return err
		}
		s.listeners = append(s.listeners, ln)
		if ln.ws != nil {
			s.listeners = append(s.listeners, ln.ws)
		}
	}
	for _, ln := range s.listeners {
		ln := ln
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			var err error
			switch ln.Proto {
			case "udp":
				err = ln.serveUDP(parser)
			case "tls":
				err = ln.tp.ServeTLS(ln.ln)
			case "ws":
				err = ln.tp.ServeWS(ln.ln)
			case "wss":
				err = ln.tp.ServeWSS(ln.ln)
			default:
				err = ln.tp.ServeTCP(ln.ln)
			}
			if err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("listener stopped", "listen", ln.String(), "error", err)
			}
		}()
	}
	return nil
}

func (s *Server) bind(l Listen, parser *sip.Parser) (*Listener, error) {
	proto := strings.ToLower(l.Proto)
	ln := &Listener{Proto: proto, srv: s}
	tplog := s.log.With("listen", l.String())
	ln.tp = sip.NewTransportLayer(net.DefaultResolver, parser, nil,
		sip.WithTransportLayerLogger(slog.New(parseErrorCounter{tplog.Handler(), &s.nParseErrors})))
	ln.tp.OnMessage(ln.onMessage)
	switch proto {
	case "udp":
		pc, err := net.ListenPacket("udp", l.Addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", l, err)
		}
		// A burst must not overflow the kernel queue while the reader is
		// descheduled: ask for large socket buffers (capped by
		// net.core.rmem_max/wmem_max), as Kamailio's maxbuffer probing does.
		if uc, ok := pc.(*net.UDPConn); ok {
			uc.SetReadBuffer(udpBuffer)
			uc.SetWriteBuffer(udpBuffer)
			ln.raw = newRawSender(uc)
		}
		ln.pc = pc
		ln.Addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	case "tcp", "tls", "ws", "wss":
		// Every stream listener is a tcpListener: the same accept back-off,
		// connection cap and timeouts (tcp.go); tls and wss accept through
		// crypto/tls (the handshake runs on the connection's first read,
		// under its read deadline).
		tl, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", l, err)
		}
		ln.Addr = tl.Addr().(*net.TCPAddr).AddrPort()
		inner := tl
		if proto == "tls" || proto == "wss" {
			inner = tls.NewListener(tl, s.opts.TLS.Server)
		}
		ln.tcp = newTCPListener(inner, newTCPLimits(s.opts), &s.tcp, tplog)
		ln.tcp.proto = proto
		ln.tcp.tlsc = s.opts.TLS
		ln.ln = ln.tcp
		if s.opts.HTTP != nil && (proto == "tcp" || proto == "tls") {
			ln.tcp.sniff = ln.sniffConn
			ws := &Listener{Proto: companionProto(proto), Addr: ln.Addr, srv: s}
			ws.tp = sip.NewTransportLayer(net.DefaultResolver, parser, nil,
				sip.WithTransportLayerLogger(slog.New(parseErrorCounter{tplog.With("via", ws.Proto).Handler(), &s.nParseErrors})))
			ws.tp.OnMessage(ws.onMessage)
			ws.tcp = newTCPListener(&noAccept{addr: tl.Addr(), done: make(chan struct{})}, newTCPLimits(s.opts), &s.tcp, tplog)
			ws.tcp.proto = ws.Proto
			ws.ln = ws.tcp
			ln.ws = ws
		}
	}
	ln.Addr = netip.AddrPortFrom(ln.Addr.Addr().Unmap(), ln.Addr.Port())
	if ln.ws != nil {
		ln.ws.Addr = ln.Addr
	}
	return ln, nil
}

func (ln *Listener) String() string { return ln.Proto + ":" + ln.Addr.String() }

// Listeners returns the bound listeners (with the actual ports).
func (s *Server) Listeners() []*Listener { return s.listeners }

// Listener returns the first listener of proto, or nil.
func (s *Server) Listener(proto string) *Listener {
	for _, l := range s.listeners {
		if l.Proto == proto {
			return l
		}
	}
	return nil
}

// Stop closes the listeners and terminates pending transactions.
func (s *Server) Stop(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	s.closeListeners(ctx)
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.txs.terminateAll()
	s.branches.terminateAll()
	s.wheels.stop()
	return nil
}

// closeListeners closes the sockets, then the TCP connections
// (waiting for their read loops), then the transport layers.
func (s *Server) closeListeners(ctx context.Context) {
	for _, ln := range s.listeners {
		if ln.pc != nil {
			ln.pc.Close()
		}
		if ln.ln != nil {
			ln.ln.Close()
		}
	}
	for _, ln := range s.listeners {
		if ln.tcp != nil {
			ln.tcp.closeConns(ctx)
		}
	}
	for _, ln := range s.listeners {
		if ln.tp != nil {
			ln.tp.Close()
		}
	}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests:    s.nRequests.Load(),
		Responses:   s.nResponses.Load(),
		Absorbed:    s.nAbsorbed.Load(),
		Replies:     s.nReplies.Load(),
		ParseErrors: s.nParseErrors.Load(),
		Relayed:     s.nRelayed.Load(),
		BadRequests: s.nBadRequests.Load(),
		Recycled:    s.nRecycled.Load(),

		TCPConnections:  uint64(max(s.tcp.live.Load(), 0)),
		TCPAcceptErrors: s.tcp.acceptErrors.Load(),
		TCPRejected:     s.tcp.rejected.Load(),
		TCPIdleClosed:   s.tcp.idleClosed.Load(),
		TCPReadTimeouts: s.tcp.rdTimeouts.Load(),
	}
}

// PendingTx returns the number of live server transactions.
func (s *Server) PendingTx() int { return s.txs.len() }

// onMessage receives what sipgo's transport layer read (TCP), on the
// connection's read goroutine.
func (ln *Listener) onMessage(m sip.Message) {
	src, _ := netip.ParseAddrPort(m.Source())
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	if ln.tcp != nil {
		if c := ln.tcp.conn(src); c != nil {
			c.messageDone() // the connection is between messages again
		}
	}
	ln.handle(m, src)
}

// handle runs on the listener's read goroutine.
func (ln *Listener) handle(m sip.Message, src netip.AddrPort) { ln.handleParsed(m, nil, src) }

// handleParsed is handle for a message parsed into arena (a request's, by
// the UDP listener; nil otherwise).
func (ln *Listener) handleParsed(m sip.Message, arena *reqArena, src netip.AddrPort) {
	s := ln.srv
	switch msg := m.(type) {
	case *sip.Request:
		s.nRequests.Add(1)
		s.onRequest(ln, msg, arena, src)
	case *sip.Response:
		s.nResponses.Add(1)
		// A reply to a relayed request carries its client transaction.
		b := s.matchBranch(msg)
		if b != nil {
			s.tm.rplReceived.Add(1)
		}
		var res *Response
		if s.ralloc != nil {
			res = s.ralloc.NewResponse()
		} else {
			res = new(Response)
		}
		res.Msg, res.Listener, res.Src, res.Branch = msg, ln, src, b
		s.handler.HandleResponse(res)
	}
}

func (s *Server) onRequest(ln *Listener, msg *sip.Request, arena *reqArena, src netip.AddrPort) {
	if why := Malformed(msg); why != "" {
		s.nBadRequests.Add(1)
		s.log.Debug("malformed request", "reason", why, "method", string(msg.Method))
		if msg.Via() != nil && !msg.IsAck() {
			r := s.newRequest(ln, msg, "", src)
			if err := r.ReplyStateless(400, "Bad Request", []sip.Header{sip.NewHeader("Warning", `399 kemi "`+why+`"`)}, nil); err != nil {
				s.log.Debug("400 to a malformed request failed", "error", err)
			}
		}
		return
	}
	// The request is allocated first: its key is written into it (keyBuf),
	// so building the key allocates nothing.
	var r *Request
	var kb []byte
	if s.alloc != nil {
		r, kb = s.alloc.NewRequest()
	} else {
		rk := new(keyedRequest)
		r, kb = &rk.Request, rk.keyBuf[:0]
	}
	r.Msg, r.Listener, r.Src, r.srv = msg, ln, src, s
	kb, ok := appendTxKey(kb, msg, "")
	if !ok {
		// No Via branch/CSeq to build a key from: route it without absorption.
		s.handler.HandleRequest(r)
		return
	}
	// keyBuf is never written again: the string may alias it.
	key := unsafe.String(unsafe.SliceData(kb), len(kb))
	if msg.IsCancel() || msg.IsAck() {
		var ib [KeyRoom]byte
		if ikb, ok := appendTxKey(ib[:0], msg, sip.INVITE); ok {
			// A lookup only: the key need not outlive the call.
			if tx := s.txs.getTx(unsafe.String(unsafe.SliceData(ikb), len(ikb))); tx != nil {
				if msg.IsCancel() {
					tx.cancel(msg)
				} else {
					tx.receive(msg) // ACK for a non-2xx final reply belongs to the INVITE transaction
				}
				return
			}
		}
		if msg.IsAck() {
			s.txs.ackReceived(msg)
		}
	}
	switch tx, fresh := s.txs.claim(key); {
	case tx != nil:
		tx.receive(msg) // retransmission: resend the last reply
		s.nAbsorbed.Add(1)
	case !fresh:
		s.nAbsorbed.Add(1) // retransmission while the first copy is being routed
	default:
		r.key = key
		r.inflight = true
		if !msg.IsAck() && !msg.IsCancel() { // the ACK and CANCEL paths above may keep msg
			r.arena = arena
		}
		s.handler.HandleRequest(r)
	}
}

// keyedRequest is a received request with room for its transaction key:
// one allocation for both. Request.key points into keyBuf (a longer key
// is on the heap), which keeps the whole alive as long as the key is, in
// the request, its copies (Handoff) and the transaction table.
type keyedRequest struct {
	Request
	keyBuf [KeyRoom]byte
}

// KeyRoom is the room a received request has for its transaction key: a
// Kamailio branch, an IPv4 sent-by and the method fit (Request and key
// are a 224-byte object); a longer key is allocated apart.
const KeyRoom = 80

// RequestAllocator may be implemented by a Handler: the server then
// allocates each received request (with a transaction key) by calling
// NewRequest, which returns a zero Request and an empty buffer with room
// for its key (KeyRoom bytes), both inside one fresh object of the
// handler's: the engine keeps its routing state there, one allocation per
// request. The buffer is written once, never reused: the key aliases it.
type RequestAllocator interface {
	NewRequest() (*Request, []byte)
}

// ResponseAllocator is RequestAllocator for received replies: NewResponse
// returns a zero Response inside a fresh object of the handler's.
type ResponseAllocator interface {
	NewResponse() *Response
}

func (s *Server) newRequest(ln *Listener, msg *sip.Request, key string, src netip.AddrPort) *Request {
	return &Request{Msg: msg, Listener: ln, Src: src, key: key, srv: s}
}

// Malformed says what makes a request unroutable (RFC 3261 8.1.1: To,
// From, CSeq, Call-ID, Max-Forwards and Via are mandatory; Max-Forwards is
// tolerated missing, as proxies do), or "" when it is fine.
func Malformed(m *sip.Request) string {
	switch {
	case m.Via() == nil:
		return "missing Via"
	case m.From() == nil:
		return "missing From"
	case m.To() == nil:
		return "missing To"
	case m.CallID() == nil || *m.CallID() == "":
		return "missing Call-ID"
	case m.CSeq() == nil:
		return "missing CSeq"
	case m.CSeq().MethodName != m.Method:
		return "CSeq method does not match the request method"
	}
	return ""
}

// txKey is the RFC 3261 17.2.3 server transaction key: top Via branch,
// sent-by and method (asMethod overrides it, for CANCEL/ACK matching).
func txKey(msg *sip.Request, asMethod sip.RequestMethod) (string, bool) {
	b, ok := appendTxKey(nil, msg, asMethod)
	return string(b), ok
}

// appendTxKey appends txKey's key to dst: the server writes it into the
// request (Request.keyBuf) without allocating.
func appendTxKey(dst []byte, msg *sip.Request, asMethod sip.RequestMethod) ([]byte, bool) {
	via := msg.Via()
	cseq := msg.CSeq()
	if via == nil || cseq == nil {
		return dst, false
	}
	branch, _ := via.Params.Get("branch")
	if branch == "" {
		return dst, false
	}
	method := string(cseq.MethodName)
	if asMethod != "" {
		method = string(asMethod)
	} else if method == string(sip.ACK) {
		method = string(sip.INVITE)
	}
	dst = append(dst, branch...)
	dst = append(dst, '|')
	dst = append(dst, via.Host...)
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, int64(via.Port), 10)
	dst = append(dst, '|')
	dst = append(dst, method...)
	if msg.IsAck() && asMethod == "" {
		dst = append(dst, "|ACK"...) // an ACK for 2xx is its own transaction
	}
	return dst, true
}

// parseErrorCounter counts sipgo's "failed to parse" log records and demotes
// them to debug: malformed datagrams are counted, not logged at error level
// one by one.
type parseErrorCounter struct {
	slog.Handler
	n *atomic.Uint64
}

func (h parseErrorCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "failed to parse" || strings.HasPrefix(r.Message, "failed to parse") {
		h.n.Add(1)
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h parseErrorCounter) WithAttrs(a []slog.Attr) slog.Handler {
	return parseErrorCounter{h.Handler.WithAttrs(a), h.n}
}

func (h parseErrorCounter) WithGroup(g string) slog.Handler {
	return parseErrorCounter{h.Handler.WithGroup(g), h.n}
}

func (h parseErrorCounter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelError || h.Handler.Enabled(ctx, l)
}

// table maps transaction keys to in-flight markers (a nil *Tx) and server
// transactions.
type table struct {
	txs  txShards
	acks ackTable // INVITEs whose 2xx is retransmitted until the ACK
}

func (t *table) init() {
	t.txs.init()
	t.acks.m = make(map[string]*Tx)
}

// claim marks key in flight. It returns the existing transaction, or
// fresh=true when the key was unknown and is now in flight.
func (t *table) claim(key string) (tx *Tx, fresh bool) { return t.txs.claim(key) }

// release drops an in-flight marker that never became a transaction.
func (t *table) release(key string) { t.txs.dropIf(key, nil) }

func (t *table) setTx(key string, tx *Tx)  { t.txs.put(key, tx) }
func (t *table) getTx(key string) *Tx      { return t.txs.get(key) }
func (t *table) dropTx(key string, tx *Tx) { t.txs.dropIf(key, tx) }

// len counts the live transactions (not the in-flight markers).
func (t *table) len() int { return len(t.txs.values()) }

func (t *table) terminateAll() {
	for _, tx := range t.txs.values() {
		tx.terminate()
	}
}

// ackReceived stops 2xx retransmissions of an INVITE transaction whose ACK
// arrived (the ACK for a 2xx carries a new branch, so it is matched on
// Call-ID and CSeq number).
func (t *table) ackReceived(ack *sip.Request) {
	// Implemented with the 2xx retransmission timers in tx.go.
	ackMatched(t, ack)
}
