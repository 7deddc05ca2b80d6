// Package sipnet is kemi's SIP network layer on top of sipgo's transport
// layer and parser: listeners, stateless replies, and server transactions
// created only when the routing logic asks for one.
//
// UDP listeners are read by kemi itself: up to 16 datagrams per recvmmsg
// on Linux (udp_linux.go), replies written with a raw sendto, and every
// datagram parsed by Parse (parse.go), which gives the message value
// sipgo's parser gives from one copy of the datagram and one block of
// typed headers, and hands anything it does not handle exactly like sipgo
// (errors included) to sipgo's parser.
//
// kemi does not use sipgo's transaction layer for incoming requests: it would
// keep a server transaction (and its timers) for every request, while
// Kamailio's sl module answers statelessly. Instead a request is marked in
// flight while a worker handles it, so that a retransmission arriving
// meanwhile is absorbed rather than routed twice; a server transaction is
// created only by NewTx (KSR.tm.t_newtran, t_reply, async suspension, relay),
// after which retransmissions and CANCEL are matched to it: kemi's own
// liteTx for a request over UDP (tx_lite.go; INVITE's states in
// tx_invite.go), a sip.ServerTx for the others (CANCEL's own, TCP, TLS, WS). The timers of transactions and branches are deadlines on the
// server's timers.Deadlines wheels (timer.go), and messages are written with
// encodeMessage (encode.go), sipgo's serialisation without its allocations.
//
// TCP listeners are served by sipgo's TCP transport through a wrapper of the
// listening socket (tcp.go): accept errors such as EMFILE are retried with a
// back-off instead of ending sipgo's accept loop, connections over a cap are
// closed at once, and each accepted connection closes itself when idle or
// when a message stays incomplete too long. Connections opened to relay are
// handed to sipgo through the same listener, so they are read, capped and
// timed out alike. Replies, transactions and relays write on these
// connections outside sipgo's reference counting.
//
// Concurrency contract: Server methods are safe for concurrent use. A
// *Request is handed to exactly one handler goroutine at a time; its Reply
// and NewTx may be called from that goroutine, and later from whichever
// goroutine the request was handed to (e.g. an async worker). *Tx is safe for
// concurrent use.
package sipnet
