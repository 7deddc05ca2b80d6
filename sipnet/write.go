package sipnet

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/emiago/sipgo/sip"
)

// This file is the write path: how a message (a relayed request, a
// stateless reply or forward) leaves a listener.
//
// Requests and replies leave from a listener's socket, as Kamailio's do: UDP
// datagrams are written on the listener's net.PacketConn (sipgo's
// ClientRequestConnection would open an ephemeral socket); over TCP they go
// on the connection the peer opened, or for a request on one the listener
// dials and reads like an accepted one (tcp.go), so that replies come back
// through the same listener.

// write sends msg to dst from this listener. Over UDP msg is encoded into a
// pooled buffer each time (a retransmission encodes again: most requests
// are answered before their first one, so keeping encodings costs more).
func (ln *Listener) write(msg sip.Message, dst netip.AddrPort) error {
	if ln.virtual() {
		ln.srv.opts.Outbound(Outgoing{Msg: msg, From: ln, To: Target{Proto: ln.Proto, Addr: dst}})
		return nil
	}
	if ln.pc != nil {
		buf := replyBufs.Get().(*replyBuf)
		buf.b = buf.b[:0]
		encodeMessage(buf, msg) // as msg.StringWrite, without its allocations (encode.go)
		err := ln.writeRawUDP(buf.b, dst)
		putReplyBuf(buf)
		return err
	}
	conn, err := ln.tcpConn(msg, dst)
	if err != nil {
		return err
	}
	defer conn.TryClose()
	return conn.WriteMsg(msg)
}

// tcpConn finds the connection to dst (one the peer opened, or one we
// opened before) or, for a request, opens one that the listener's
// transport layer reads, so that its replies reach onMessage.
func (ln *Listener) tcpConn(msg sip.Message, dst netip.AddrPort) (sip.Connection, error) {
	if c := ln.streamConn(dst); c != nil {
		return c, nil
	}
	if _, ok := msg.(*sip.Request); !ok {
		return nil, fmt.Errorf("no %s connection to %s for the reply", ln.Proto, dst)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	if _, err := ln.tcp.dial(ctx, dst); err != nil {
		return nil, err
	}
	if c := ln.streamConn(dst); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("%s connection to %s closed", ln.Proto, dst)
}
