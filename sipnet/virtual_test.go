package sipnet_test

import (
	"errors"
	"net/netip"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"

	"kemi/sipnet"
)

func parseReq(t *testing.T, method string) *sip.Request {
	t.Helper()
	raw := method + " sip:bob@example.com SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK-v1;rport\r\n" +
		"From: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>\r\n" +
		"Call-ID: v1@example.com\r\nCSeq: 1 " + method + "\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

// sink records the replies of a virtual request.
type sink struct {
	mu  sync.Mutex
	got []*sip.Response
}

func (s *sink) add(r *sip.Response) error {
	s.mu.Lock()
	s.got = append(s.got, r)
	s.mu.Unlock()
	return nil
}

func newVirtual(t *testing.T, method string) (*sipnet.Request, *sink) {
	s := &sink{}
	r := sipnet.NewVirtualRequest(parseReq(t, method), "UDP",
		netip.MustParseAddrPort("127.0.0.1:5060"), netip.MustParseAddrPort("192.0.2.1:5070"), s.add)
	return r, s
}

func TestVirtualRequestDescribesItsSocket(t *testing.T) {
	r, _ := newVirtual(t, "OPTIONS")
	if !r.Virtual() || r.Proto() != "udp" || r.LocalAddr().String() != "127.0.0.1:5060" {
		t.Fatalf("virtual=%v proto=%q local=%s", r.Virtual(), r.Proto(), r.LocalAddr())
	}
	if r.Msg.Source() != "192.0.2.1:5070" || r.Msg.Transport() != "UDP" {
		t.Fatalf("message source %q transport %q", r.Msg.Source(), r.Msg.Transport())
	}
	if sipnet.NewFakeRequest(parseReq(t, "OPTIONS")).Virtual() {
		t.Fatal("a faked request is not virtual")
	}
}

func TestVirtualStatelessReplyGoesToSink(t *testing.T) {
	r, s := newVirtual(t, "OPTIONS")
	if err := r.Reply(200, "OK", nil, nil); err != nil {
		t.Fatal(err)
	}
	if len(s.got) != 1 || s.got[0].StatusCode != 200 {
		t.Fatalf("sink got %v", s.got)
	}
	if v := s.got[0].Via(); v == nil || v.Params == nil {
		t.Fatalf("reply without Via: %v", s.got[0])
	} else if rp, _ := v.Params.Get("rport"); rp != "5070" {
		t.Fatalf("rport %q, want the source port 5070", rp)
	}
}

func TestVirtualTransaction(t *testing.T) {
	r, s := newVirtual(t, "INVITE")
	tx, err := r.NewTx()
	if err != nil {
		t.Fatalf("NewTx: %v", err)
	}
	if again, _ := r.NewTx(); again != tx || r.Tx() != tx {
		t.Fatal("NewTx must return the existing transaction")
	}
	if err := tx.Reply(180, "Ringing", nil, nil); err != nil {
		t.Fatal(err)
	}
	if tx.Terminated() || tx.FinalStatus() != 0 || tx.LastStatus() != 180 {
		t.Fatalf("after 180: terminated=%v final=%d last=%d", tx.Terminated(), tx.FinalStatus(), tx.LastStatus())
	}
	if err := tx.Reply(486, "Busy Here", nil, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tx.Done():
	default:
		t.Fatal("a final reply must end the transaction")
	}
	if err := tx.Reply(200, "OK", nil, nil); !errors.Is(err, sipnet.ErrTxGone) {
		t.Fatalf("reply after the final one: %v, want ErrTxGone", err)
	}
	if tx.CancelVirtual() {
		t.Fatal("an answered transaction cannot be cancelled")
	}
	if len(s.got) != 2 {
		t.Fatalf("sink got %d replies, want 2", len(s.got))
	}
	tag1, _ := s.got[0].To().Params.Get("tag")
	tag2, _ := s.got[1].To().Params.Get("tag")
	if tag1 == "" || tag1 != tag2 {
		t.Fatalf("To tags %q and %q: one tag for every reply of the transaction", tag1, tag2)
	}
}

func TestVirtualCancel(t *testing.T) {
	r, s := newVirtual(t, "INVITE")
	tx, _ := r.NewTx()
	tx.Reply(100, "Trying", nil, nil)
	if !tx.CancelVirtual() {
		t.Fatal("CancelVirtual on a pending INVITE returned false")
	}
	if !tx.Canceled() || !tx.Terminated() || tx.FinalStatus() != 487 {
		t.Fatalf("canceled=%v terminated=%v final=%d", tx.Canceled(), tx.Terminated(), tx.FinalStatus())
	}
	if len(s.got) != 2 || s.got[1].StatusCode != 487 {
		t.Fatalf("sink got %v, want 100 then 487", s.got)
	}
	if err := tx.Reply(200, "OK", nil, nil); !errors.Is(err, sipnet.ErrTxGone) {
		t.Fatalf("reply after CANCEL: %v", err)
	}
	if tx.CancelVirtual() {
		t.Fatal("second CancelVirtual returned true")
	}

	r, _ = newVirtual(t, "MESSAGE")
	tx, _ = r.NewTx()
	if tx.CancelVirtual() {
		t.Fatal("CANCEL applies to INVITE transactions only")
	}
	r, _ = newVirtual(t, "ACK")
	if _, err := r.NewTx(); err == nil {
		t.Fatal("no transaction for ACK")
	}
}

// collect records the replies a server hands over.
type collect struct {
	mu  sync.Mutex
	res []*sipnet.Response
}

func (c *collect) HandleRequest(r *sipnet.Request) {}
func (c *collect) HandleResponse(r *sipnet.Response) {
	c.mu.Lock()
	c.res = append(c.res, r)
	c.mu.Unlock()
}

func TestVirtualServerBranches(t *testing.T) {
	var mu sync.Mutex
	var sent []sipnet.Outgoing
	h := &collect{}
	srv, err := sipnet.New(sipnet.Options{
		Listen: []sipnet.Listen{{Proto: "udp", Addr: "127.0.0.1:0"}, {Proto: "tcp", Addr: "proxy.example.com:5070"}},
		Outbound: func(o sipnet.Outgoing) {
			mu.Lock()
			sent = append(sent, o)
			mu.Unlock()
		},
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(t.Context())
	ls := srv.Listeners()
	if len(ls) != 2 || ls[0].String() != "udp:127.0.0.1:5060" || ls[1].String() != "tcp:127.0.0.1:5070" || !srv.Virtual() {
		t.Fatalf("virtual listeners %v", ls)
	}
	target, err := srv.ResolveURI(t.Context(), "sip:bob@nowhere.invalid:5090")
	if err != nil || target.String() != "udp:192.0.2.1:5090" {
		t.Fatalf("a name resolves to %v, %v (want the TEST-NET address, no lookup)", target, err)
	}
	timedOut := make(chan *sipnet.Branch, 1)
	b, err := srv.NewBranch(parseReq(t, "INVITE"), sipnet.BranchOptions{Target: target, OnTimeout: func(b *sipnet.Branch) { timedOut <- b }})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 1 || sent[0].Branch != b || sent[0].To != target || sent[0].From != ls[0] {
		t.Fatalf("the INVITE went out as %+v", sent)
	}
	// A 180 comes back through Receive and is matched to the branch.
	res := sip.NewResponseFromRequest(sent[0].Msg.(*sip.Request), 180, "Ringing", nil)
	if err := srv.Receive(res, ls[0], target.Addr); err != nil {
		t.Fatal(err)
	}
	if len(h.res) != 1 || h.res[0].Branch != b || h.res[0].Src != target.Addr {
		t.Fatalf("handed over %+v", h.res)
	}
	if b.Receive(res) != sipnet.ReplyProvisional {
		t.Fatal("180 not provisional")
	}
	// No timer runs: the branch ends when told to, and CANCELs downstream.
	if !b.Expire() {
		t.Fatal("Expire on a pending branch")
	}
	if got := <-timedOut; got != b || !b.TimedOut() {
		t.Fatal("OnTimeout not called with the branch")
	}
	if len(sent) != 2 || sent[1].Branch != b || sent[1].Msg.(*sip.Request).Method != sip.CANCEL {
		t.Fatalf("after the timeout sent %d messages, last %v", len(sent), sent[len(sent)-1].Msg.String())
	}
	if b.Expire() {
		t.Fatal("an ended branch expired twice")
	}
}

func TestReceiveNeedsAVirtualServer(t *testing.T) {
	srv, err := sipnet.New(sipnet.Options{Listen: []sipnet.Listen{{Proto: "udp", Addr: "127.0.0.1:0"}}}, &collect{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer srv.Stop(t.Context())
	res := sip.NewResponse(200, "OK")
	if err := srv.Receive(res, srv.Listeners()[0], netip.MustParseAddrPort("127.0.0.1:5080")); err == nil {
		t.Fatal("Receive on a server with sockets")
	}
}
