package sipnet

import (
	"errors"
	"net/netip"
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
// marked cancelled, 487 Request Terminated goes to the sink and the
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
	t.final, t.last = 487, 487
	t.mu.Unlock()
	res := buildResponse(t.req, 487, "Request Terminated", t.toTag, nil, nil)
	_ = t.req.Sink(res)
	t.virt.terminate()
	return true
}
