package sipnet

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// Request is a received request on its way through the routing logic.
type Request struct {
	Msg      *sip.Request
	Listener *Listener
	Src      netip.AddrPort

	key      string
	srv      *Server
	inflight bool
	tx       *Tx
	// Replied is the highest status code sent statelessly (0 = none).
	Replied int
	// Sink, when set, receives the replies of a request that came from no
	// socket (kemi test, faked requests) instead of the network.
	Sink func(*sip.Response) error
	// HTTP is the HTTP request this message stands for, in the xhttp
	// event callback (http.go); nil for SIP.
	HTTP *HTTPExchange
	// Observer, set by whoever injected a virtual request (kemi test),
	// is told what becomes of it; Handoff copies it.
	Observer Observer

	// received is a copy of Msg as it arrived (KeepReceived), passed on by
	// the next Handoff; handedReceived marks a copy that carries it.
	received       *sip.Request
	handedReceived bool

	// Ext is the object of the handler's this request was allocated in
	// (RequestAllocator), nil otherwise; copies (Handoff) keep it.
	Ext any

	// arena holds Msg when the UDP listener parsed it (parse.go), for
	// Recycle; nil for any other request and in copies.
	arena *reqArena
}

// Recycle gives the memory Msg was parsed into back for the next requests
// the listeners read, sets Msg to nil and reports true, when the UDP
// listener parsed r itself and r is no longer in flight (Done comes
// first); otherwise it changes nothing and reports false. The caller
// vouches that nothing refers to Msg, its headers or their parameters any
// more, nor will: the next request parsed overwrites them. The strings cut
// from the message (header values, URIs, the body) are not part of that
// memory and stay valid.
func (r *Request) Recycle() bool {
	a := r.arena
	if a == nil || r.inflight || r.srv == nil {
		return false
	}
	r.arena, r.Msg = nil, nil
	r.srv.arenas.put(a)
	r.srv.nRecycled.Add(1)
	return true
}

// Response is a received response.
type Response struct {
	Msg      *sip.Response
	Listener *Listener
	Src      netip.AddrPort
	// Branch is the client transaction of a relayed request the reply
	// matched (branch.go), nil for others.
	Branch *Branch

	received       *sip.Response // see Request.received
	handedReceived bool

	// Ext is the object of the handler's this reply was allocated in
	// (ResponseAllocator), nil otherwise; copies (Handoff) keep it.
	Ext any
}

// ErrNoListener is returned when a request carries no listener to reply on
// (a faked request, as in timers and tests).
var ErrNoListener = errors.New("sipnet: request has no listener to reply on")

// NewFakeRequest wraps msg without a listener (replies fail with
// ErrNoListener); used for faked messages of timers and for tests.
func NewFakeRequest(msg *sip.Request) *Request { return &Request{Msg: msg} }

// Proto returns "udp", "tcp", "tls", "ws", "wss", or "" for a faked request.
func (r *Request) Proto() string {
	if r.Listener == nil {
		return ""
	}
	return r.Listener.Proto
}

// LocalAddr returns the receiving socket address.
func (r *Request) LocalAddr() netip.AddrPort {
	if r.Listener == nil {
		return netip.AddrPort{}
	}
	return r.Listener.Addr
}

// Done ends the routing of the request: unless a transaction was created, the
// in-flight marker goes away and a later retransmission is routed anew (as
// Kamailio's stateless handling does). Done is idempotent.
func (r *Request) Done() {
	if r.inflight && r.tx == nil {
		r.srv.txs.release(r.key)
	}
	r.inflight = false
}

// Tx returns the request's server transaction, or nil.
func (r *Request) Tx() *Tx { return r.tx }

// Reply answers the request: through its transaction when it has one,
// statelessly otherwise.
func (r *Request) Reply(code int, reason string, extra []sip.Header, body []byte) error {
	if r.tx != nil {
		return r.tx.Reply(code, reason, extra, body)
	}
	return r.ReplyStateless(code, reason, extra, body)
}

// ReplyStateless answers the request without its transaction (sl_send_reply).
func (r *Request) ReplyStateless(code int, reason string, extra []sip.Header, body []byte) error {
	if r.Sink != nil {
		return r.Sink(buildResponse(r, code, reason, "", extra, body))
	}
	if r.Listener == nil {
		return ErrNoListener
	}
	if uc, ok := r.Listener.pc.(*net.UDPConn); ok {
		// The hot path: the reply is written straight into a pooled buffer.
		buf := replyBufs.Get().(*replyBuf)
		buf.b = buf.b[:0]
		if writeResponse(buf, r, code, reason, "", extra, body) {
			err := r.Listener.sendUDP(uc, buf.b, destinationAddr(r))
			putReplyBuf(buf)
			if err != nil {
				return err
			}
			return r.replied(code)
		}
		putReplyBuf(buf)
	} else if ln := r.Listener; ln.tcp != nil && !ln.tcp.framed() && !ln.virtual() {
		// TCP and TLS: the same writer, on the tracked connection the reply
		// leaves on (as writeTo finds it); WebSocket frames through sipgo.
		dst := destinationAddr(r)
		if c := ln.tcp.conn(netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())); c != nil {
			buf := replyBufs.Get().(*replyBuf)
			buf.b = buf.b[:0]
			if writeResponse(buf, r, code, reason, "", extra, body) {
				err := trackedConn{c}.write(buf.b)
				putReplyBuf(buf)
				if err != nil {
					return err
				}
				return r.replied(code)
			}
			putReplyBuf(buf)
		}
	}
	res := buildResponse(r, code, reason, "", extra, body)
	if err := r.Listener.send(res); err != nil {
		return err
	}
	return r.replied(code)
}

// putReplyBuf returns buf to the pool unless a large body made it huge.
func putReplyBuf(buf *replyBuf) {
	if cap(buf.b) <= 64<<10 {
		replyBufs.Put(buf)
	}
}

// replied counts a stateless reply sent.
func (r *Request) replied(code int) error {
	r.srv.nReplies.Add(1)
	if code > r.Replied {
		r.Replied = code
	}
	return nil
}

// NewTx creates the request's server transaction (or returns the existing
// one). From then on retransmissions are answered by the transaction and a
// CANCEL for an INVITE is matched to it.
func (r *Request) NewTx() (*Tx, error) {
	if r.tx != nil {
		return r.tx, nil
	}
	if r.Sink != nil {
		return r.newVirtualTx() // kemi test (virtual.go)
	}
	if r.Listener == nil {
		return nil, ErrNoListener
	}
	if r.key == "" {
		return nil, errors.New("sipnet: request has no transaction key (Via branch or CSeq missing)")
	}
	if r.Msg.IsAck() {
		return nil, errors.New("sipnet: no transaction for ACK")
	}
	if usesLite(r) {
		return r.newLiteTx(), nil // kemi's own (tx_lite.go)
	}
	conn, err := r.Listener.conn(r.Src)
	if err != nil {
		return nil, err
	}
	tx := &Tx{req: r, key: r.key, srv: r.srv} // the To tag when needed (ToTag)
	tx.stx = sip.NewServerTx(r.key, r.Msg, conn, r.srv.log)
	if err := tx.stx.Init(); err != nil {
		conn.TryClose()
		return nil, err
	}
	r.srv.tm.created.Add(1) // before OnTerminate can count its end
	tx.stx.OnCancel(func(*sip.Request) { tx.canceled.Store(true) })
	tx.stx.OnTerminate(func(string, error) { tx.whenEnded() })
	r.tx = tx
	r.srv.txs.setTx(r.key, tx)
	return tx, nil
}

// conn returns the sipgo connection replies to src leave on.
func (ln *Listener) conn(src netip.AddrPort) (sip.Connection, error) {
	if ln.pc != nil {
		return udpConn{ln: ln, dst: src}, nil
	}
	if ln.tcp != nil {
		if c := ln.streamConn(src); c != nil {
			return c, nil
		}
	}
	return ln.tp.GetConnection(ln.Proto, src.String())
}

// send writes a locally generated response statelessly.
func (ln *Listener) send(res *sip.Response) error {
	if ln.pc != nil || ln.virtual() {
		dst, err := netip.ParseAddrPort(res.Destination())
		if err != nil {
			return fmt.Errorf("reply destination %q: %w", res.Destination(), err)
		}
		return ln.write(res, dst)
	}
	return ln.writeTo(res, res.Destination())
}

// destination follows RFC 3261 18.2.2 and RFC 3581: the reply goes to the
// source IP, and to the source port when the Via asked for rport (or the
// transport is connection-oriented), else to the Via's port.
func destination(r *Request) string { return destinationAddr(r).String() }

func destinationAddr(r *Request) netip.AddrPort {
	via := r.Msg.Via()
	port := int(r.Src.Port())
	if r.Proto() == "udp" && via != nil {
		if rp, ok := via.Params.Get("rport"); !ok {
			port = via.Port
			if port == 0 {
				port = 5060
			}
		} else if rp != "" {
			if p, err := strconv.Atoi(rp); err == nil {
				port = p
			}
		}
	}
	return netip.AddrPortFrom(r.Src.Addr(), uint16(port))
}

var tagPool = sync.Pool{New: func() any { return new([16]byte) }}

// KeepReceived keeps a copy of the message as it arrived, before the routing
// logic changes it, for a later Handoff: Kamailio's sworker passes on the
// raw received bytes, so edits made before the handoff must not travel. It
// costs one message clone, so the engine calls it only when a handoff may
// follow (sworker loaded and a pre-routing callback set).
func (r *Request) KeepReceived() { keep(&r.received, r.Msg) }

// ForgetReceived drops the copy kept by KeepReceived.
func (r *Request) ForgetReceived() { r.received = nil }

// Handoff returns a copy of r that takes over r's in-flight marker: the copy
// is processed elsewhere as freshly received (sworker), and r.Done becomes a
// no-op. The copy carries the message kept by KeepReceived, or else a clone
// of Msg as it is now (also for a second handoff of the same request: the
// kept message then belongs to the first copy).
func (r *Request) Handoff() *Request {
	c := *r
	c.arena = nil
	c.Msg, c.handedReceived = handOver(&r.received, r.Msg)
	c.received = nil
	c.tx = nil
	c.Replied = 0
	r.inflight = false
	return &c
}

// TakeBack undoes a Handoff whose copy was never processed: the in-flight
// marker, and the kept received message, return to r.
func (r *Request) TakeBack(c *Request) {
	r.inflight = c.inflight
	c.inflight = false
	if c.handedReceived && r.received == nil {
		r.received = c.Msg
	}
}

// KeepReceived is Request.KeepReceived for a reply.
func (r *Response) KeepReceived() { keep(&r.received, r.Msg) }

// ForgetReceived drops the copy kept by KeepReceived.
func (r *Response) ForgetReceived() { r.received = nil }

// Handoff returns a copy of r for processing elsewhere (sworker), carrying
// the reply kept by KeepReceived or else a clone of Msg as it is now.
func (r *Response) Handoff() *Response {
	c := *r
	c.Msg, c.handedReceived = handOver(&r.received, r.Msg)
	c.received = nil
	return &c
}

// TakeBack undoes a Handoff whose copy was never processed.
func (r *Response) TakeBack(c *Response) {
	if c.handedReceived && r.received == nil {
		r.received = c.Msg
	}
}

// keep sets *kept to a clone of msg unless a message is kept already.
func keep[M interface {
	comparable
	Clone() M
}](kept *M, msg M) {
	var none M
	if *kept == none {
		*kept = msg.Clone()
	}
}

// handOver gives a handoff copy its message: the kept one, which leaves
// *kept (true), or else a clone of msg as it is now (false).
func handOver[M interface {
	comparable
	Clone() M
}](kept *M, msg M) (M, bool) {
	var none M
	if m := *kept; m != none {
		*kept = none
		return m, true
	}
	return msg.Clone(), false
}

// Observer follows an injected request through the engine (kemi test's
// Outcome). sipnet only carries it; the engine calls it from the worker
// that routes the request and from the relay.
type Observer interface {
	// Routed is told of each pass of the request through the routing
	// logic.
	Routed(p Pass)
	// RelayedTo notes the destination URI of a stateful branch.
	RelayedTo(b *Branch, uri string)
	// Forwarded is told of a stateless forward: the request as sent, where
	// to, and the destination URI.
	Forwarded(out *sip.Request, to Target, uri string)
	// Sent is told of what a stateful branch sends on the virtual network
	// (the request, its ACKs and CANCELs).
	Sent(out Outgoing)
}

// Pass is one pass of a request through the routing logic, as an Observer
// sees it.
type Pass struct {
	Worker    string // e.g. "receiver/0"
	Group     string // e.g. "receivers", or the sworker group
	Delegated bool   // handed over by KSR.sworker.task
	Req       *Request
	// Drop and Suspended point to the routing state's flags (the drop
	// flag; the request waits for an async resume); read them once the
	// engine is idle.
	Drop, Suspended *bool
}
