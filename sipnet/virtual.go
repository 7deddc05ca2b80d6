package sipnet

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"
)

// Virtual requests came from no socket: `kemi test` injects them into the
// engine. Their replies go to the request's Sink instead of the network, and
// a transaction created for them (KSR.tm.t_newtran, t_reply, async
// suspension) is virtual: no sipgo ServerTx and no timer behind it. It keeps
// the final/provisional bookkeeping of a real Tx, delivers each reply to the
// sink, ends with its final reply, and can be cancelled with CancelVirtual
// (what a matched CANCEL does to a real INVITE transaction).
//
// Their Listener describes the socket the request claims to have arrived on
// ($Ri, $Rp, $pr) but has no transport: nothing is ever sent through it.

// NewVirtualRequest wraps msg as if received over proto ("udp" or "tcp") on
// local from src, with its replies delivered to sink. The message's source,
// destination and transport are set to match.
func NewVirtualRequest(msg *sip.Request, proto string, local, src netip.AddrPort, sink func(*sip.Response) error) *Request {
	proto = strings.ToLower(proto)
	msg.SetTransport(sip.NetworkToUpper(proto))
	msg.SetSource(src.String())
	msg.SetDestination(local.String())
	return &Request{Msg: msg, Listener: &Listener{Proto: proto, Addr: local}, Src: src, Sink: sink}
}

// Virtual reports whether r came from no socket: its replies go to Sink.
func (r *Request) Virtual() bool { return r.Sink != nil }

// virtualTx is the state a virtual transaction has instead of a sipgo
// ServerTx: when it ended.
type virtualTx struct {
	done chan struct{}
	once sync.Once
}

// newVirtualTx creates the transaction of a virtual request.
func (r *Request) newVirtualTx() (*Tx, error) {
	if r.Msg.IsAck() {
		return nil, errors.New("sipnet: no transaction for ACK")
	}
	tx := &Tx{req: r, key: r.key, toTag: newTag(), virt: &virtualTx{done: make(chan struct{})}}
	r.tx = tx
	return tx, nil
}

func (v *virtualTx) terminated() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

func (v *virtualTx) terminate() { v.once.Do(func() { close(v.done) }) }

// respondVirtual delivers a reply of a virtual transaction (Tx.Reply has
// done the bookkeeping); a final reply ends the transaction.
func (t *Tx) respondVirtual(code int, res *sip.Response) error {
	err := t.req.Sink(res)
	if code >= 200 {
		t.virt.terminate()
	}
	return err
}

// CancelVirtual does to a virtual INVITE transaction what a matched CANCEL
// does to a real one: unless a final reply went out, the transaction is
// marked cancelled and, when it was relayed, its cancel handler runs (see
// SetCancelHandler), else 487 Request Terminated goes to the sink and the
// transaction ends. It reports whether it cancelled anything (false for a
// real transaction, a non-INVITE one, or one already answered).
func (t *Tx) CancelVirtual() bool {
	if t.virt == nil || !t.req.Msg.IsInvite() {
		return false
	}
	t.mu.Lock()
	if t.final != 0 || t.canceled.Load() || t.virt.terminated() {
		t.mu.Unlock()
		return false
	}
	t.canceled.Store(true)
	if relayed := t.onCancel; relayed != nil {
		t.mu.Unlock()
		relayed() // a proxy cancels its branches and relays their replies
		return true
	}
	t.final, t.last = 487, 487
	t.mu.Unlock()
	res := buildResponse(t.req, 487, "Request Terminated", t.toTag, nil, nil)
	_ = t.req.Sink(res)
	t.virt.terminate()
	return true
}

// A virtual server (Options.Outbound set) is the network of an engine under
// `kemi test`: its listeners have no socket, what they would send (relayed
// requests, their ACKs and CANCELs, stateless forwards) goes to Outbound,
// and the test answers for the next hops with Receive. Its branches have no
// retransmission or fr_timer: a test ends a branch with a reply or with
// Branch.Expire; an ended branch stays in the table until the server stops,
// absorbing late replies (and relaying a retransmitted 2xx to an INVITE).
// Host names are not looked up: every name stands for virtualHostAddr.

// Outgoing is a message a virtual server sends.
type Outgoing struct {
	Msg  sip.Message
	From *Listener
	To   Target
	// Branch is the client transaction the message belongs to (for a
	// CANCEL or an ACK, the INVITE's); nil for stateless sends.
	Branch *Branch
}

// virtualHostAddr is what a virtual server resolves every host name to
// (TEST-NET-1, RFC 5737).
var virtualHostAddr = netip.AddrFrom4([4]byte{192, 0, 2, 1})

// startVirtual creates the listeners of a virtual server: the configured
// addresses, with an ephemeral port read as 5060 and a host name as
// 127.0.0.1.
func (s *Server) startVirtual() {
	for _, l := range s.opts.Listen {
		ap, err := netip.ParseAddrPort(l.Addr)
		if err != nil {
			port := uint16(5060)
			if _, p, err := net.SplitHostPort(l.Addr); err == nil {
				if n, err := strconv.ParseUint(p, 10, 16); err == nil && n > 0 {
					port = uint16(n)
				}
			}
			ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), port)
		}
		if ap.Port() == 0 {
			ap = netip.AddrPortFrom(ap.Addr(), 5060)
		}
		s.listeners = append(s.listeners, &Listener{Proto: strings.ToLower(l.Proto), Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), srv: s})
	}
}

// virtual reports whether ln belongs to a virtual server.
func (ln *Listener) virtual() bool { return ln.srv != nil && ln.srv.opts.Outbound != nil }

// Virtual reports whether the server is virtual (Options.Outbound set).
func (s *Server) Virtual() bool { return s.opts.Outbound != nil }

// Receive hands m to a virtual server as if it had arrived on ln from src:
// a reply is matched to its branch and handed to the Handler, a request is
// routed. It fails on a server with sockets.
func (s *Server) Receive(m sip.Message, ln *Listener, src netip.AddrPort) error {
	if !s.Virtual() || ln == nil || ln.srv != s {
		return errors.New("sipnet: Receive needs a virtual server and one of its listeners")
	}
	m.SetTransport(sip.NetworkToUpper(ln.Proto))
	m.SetSource(src.String())
	m.SetDestination(ln.Addr.String())
	ln.handle(m, src)
	return nil
}

// send sends a message of the branch's transaction to its target.
func (b *Branch) send(m sip.Message) error {
	if b.ln.virtual() {
		owner := b
		if b.parent != nil {
			owner = b.parent
		}
		b.srv.opts.Outbound(Outgoing{Msg: m, From: b.ln, To: b.target, Branch: owner})
		return nil
	}
	return b.ln.write(m, b.target.Addr)
}
