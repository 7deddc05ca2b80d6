package sipnet

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// The client branch tests run on a virtual server (virtual.go): what a
// branch sends is captured by Outbound, replies come back through
// Server.Receive, and no timer runs, so every step is an event of the
// test. The timers of a branch on a socket are tested in timer_test.go.

// wire captures what a virtual server sends.
type wire struct {
	mu  sync.Mutex
	out []Outgoing
}

func (w *wire) add(o Outgoing) {
	w.mu.Lock()
	w.out = append(w.out, o)
	w.mu.Unlock()
}

func (w *wire) len() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.out)
}

// last returns the last request sent.
func (w *wire) last(t *testing.T) (*sip.Request, Outgoing) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.out) == 0 {
		t.Fatal("nothing sent")
	}
	o := w.out[len(w.out)-1]
	r, ok := o.Msg.(*sip.Request)
	if !ok {
		t.Fatalf("sent a reply: %v", o.Msg)
	}
	return r, o
}

// branchNet is a virtual server with one UDP listener, its wire and its
// handler, and the target branches are sent to.
type branchNet struct {
	srv    *Server
	ln     *Listener
	wire   *wire
	h      *routedLog
	target Target
}

func newBranchNet(t *testing.T) *branchNet {
	t.Helper()
	w, h := &wire{}, &routedLog{}
	srv, err := New(Options{
		Listen:   []Listen{{Proto: "udp", Addr: "127.0.0.1:5060"}},
		Outbound: w.add,
		Logger:   slog.New(slog.DiscardHandler),
	}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(context.Background()) })
	target, err := srv.ResolveURI(context.Background(), "sip:bob@192.0.2.20:5080")
	if err != nil {
		t.Fatal(err)
	}
	return &branchNet{srv: srv, ln: srv.Listeners()[0], wire: w, h: h, target: target}
}

// send starts a branch for a request of method (CSeq 1) with o's options
// (Target defaults to the net's).
func (n *branchNet) send(t *testing.T, method string, o BranchOptions) *Branch {
	t.Helper()
	if o.Target == (Target{}) {
		o.Target = n.target
	}
	b, err := n.srv.NewBranch(uacReq{method: method, branch: "z9hG4bK-up", cseq: 1}.parse(t), o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer builds the downstream reply with code to req (a request the wire
// captured), To tagged "uas", delivers it through the listener as if it
// had come from the target, and returns the reply and the branch it was
// matched to.
func (n *branchNet) answer(t *testing.T, req *sip.Request, code int) (*sip.Response, *Branch) {
	t.Helper()
	res := sip.NewResponseFromRequest(req, code, "Reason", nil)
	if code > 100 {
		res.To().Params.Add("tag", "uas")
	}
	seen := len(n.h.res)
	if err := n.srv.Receive(res, n.ln, n.target.Addr); err != nil {
		t.Fatal(err)
	}
	if len(n.h.res) != seen+1 {
		t.Fatal("the reply was not handed to the Handler")
	}
	got := n.h.res[seen]
	if got.Msg != res || got.Src != n.target.Addr {
		t.Fatalf("handed over %+v", got)
	}
	return res, got.Branch
}

// receive delivers a reply with code to b's request and passes it to the
// branch it matched (which must be b).
func (n *branchNet) receive(t *testing.T, b *Branch, code int) ReplyKind {
	t.Helper()
	res, matched := n.answer(t, n.sentRequest(t, b), code)
	if matched != b {
		t.Fatalf("a %d was matched to %v, want the branch %s", code, matched, b.ID())
	}
	return matched.Receive(res)
}

// sentRequest is the request b sent first.
func (n *branchNet) sentRequest(t *testing.T, b *Branch) *sip.Request {
	t.Helper()
	n.wire.mu.Lock()
	defer n.wire.mu.Unlock()
	for _, o := range n.wire.out {
		if r, ok := o.Msg.(*sip.Request); ok && o.Branch == b && r.Via() != nil {
			if id, _ := r.Via().Params.Get("branch"); id == b.ID() {
				return r
			}
		}
	}
	t.Fatalf("branch %s sent nothing", b.ID())
	return nil
}

func kindName(k ReplyKind) string {
	return [...]string{"absorbed", "provisional", "final", "2xx again"}[k]
}

func expectKind(t *testing.T, what string, got, want ReplyKind) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: %s, want %s", what, kindName(got), kindName(want))
	}
}

// testCell stands for the relaying layer's state of a branch.
type testCell struct{}

func (*testCell) Pending() bool { return false }

func TestBranchSendsWithItsOwnVia(t *testing.T) {
	n := newBranchNet(t)
	owner := &testCell{}
	b := n.send(t, "INVITE", BranchOptions{Owner: owner})
	inv, o := n.wire.last(t)
	if o.Branch != b || o.From != n.ln || o.To != n.target || b.Target() != n.target || b.Owner() != owner {
		t.Fatalf("sent as %+v", o)
	}
	vias := inv.GetHeaders("Via")
	if len(vias) != 2 {
		t.Fatalf("%d Vias, want ours on top of the UAC's", len(vias))
	}
	top := inv.Via()
	if id, _ := top.Params.Get("branch"); id != b.ID() || len(id) < 8 || id[:7] != "z9hG4bK" {
		t.Fatalf("top Via branch %q, branch ID %q: a fresh RFC 3261 branch", id, b.ID())
	}
	if top.Host != "127.0.0.1" || top.Port != 5060 || top.Transport != "UDP" {
		t.Fatalf("top Via %s, want the listener's sent-by", top.Value())
	}
	if b.Status() != 0 || b.TimedOut() || n.srv.PendingBranches() != 1 || n.srv.Stats().Relayed != 1 {
		t.Fatalf("status %d timedOut %v pending %d relayed %d", b.Status(), b.TimedOut(), n.srv.PendingBranches(), n.srv.Stats().Relayed)
	}
}

func TestBranchInviteNegativeFinal(t *testing.T) {
	n := newBranchNet(t)
	b := n.send(t, "INVITE", BranchOptions{})
	expectKind(t, "100", n.receive(t, b, 100), ReplyProvisional)
	expectKind(t, "180", n.receive(t, b, 180), ReplyProvisional)
	if b.Status() != 180 {
		t.Fatalf("status %d", b.Status())
	}
	sent := n.wire.len()
	expectKind(t, "486", n.receive(t, b, 486), ReplyFinal)
	// The hop-by-hop ACK (RFC 3261 17.1.1.3): the INVITE's R-URI and top
	// Via, the reply's To, CSeq number with method ACK.
	if n.wire.len() != sent+1 {
		t.Fatalf("sent %d messages for the 486, want the ACK", n.wire.len()-sent)
	}
	ack, o := n.wire.last(t)
	inv := n.sentRequest(t, b)
	if ack.Method != sip.ACK || o.Branch != b || o.To != n.target {
		t.Fatalf("sent %s for branch %v", ack.Method, o.Branch)
	}
	if id, _ := ack.Via().Params.Get("branch"); id != b.ID() || len(ack.GetHeaders("Via")) != 1 {
		t.Fatalf("ACK Via %v, want only the INVITE's top Via", ack.GetHeaders("Via"))
	}
	if tag, _ := ack.To().Params.Get("tag"); tag != "uas" {
		t.Fatalf("ACK To tag %q, want the reply's", tag)
	}
	if ack.CSeq().SeqNo != 1 || ack.CSeq().MethodName != sip.ACK || ack.Recipient.String() != inv.Recipient.String() {
		t.Fatalf("ACK CSeq %v R-URI %v", ack.CSeq(), ack.Recipient.String())
	}
	// A retransmitted 486 is absorbed and ACKed again, with the same ACK.
	expectKind(t, "486 again", n.receive(t, b, 486), ReplyAbsorbed)
	if again, _ := n.wire.last(t); again != ack || n.wire.len() != sent+2 {
		t.Fatalf("retransmitted 486: sent %d more, ACK %p (first %p)", n.wire.len()-sent-1, again, ack)
	}
	// Late provisionals are absorbed; a 2xx after the final reply is
	// relayed all the same (RFC 3261 16.7).
	expectKind(t, "late 180", n.receive(t, b, 180), ReplyAbsorbed)
	expectKind(t, "200 after 486", n.receive(t, b, 200), Reply2xxAgain)
	if n.wire.len() != sent+2 {
		t.Fatalf("sent %d after the late replies", n.wire.len()-sent-2)
	}
	if b.TimedOut() || n.srv.PendingBranches() != 1 {
		t.Fatalf("timedOut %v pending %d: a virtual branch lingers until Stop", b.TimedOut(), n.srv.PendingBranches())
	}
	n.srv.Stop(context.Background())
	if n.srv.PendingBranches() != 0 {
		t.Fatalf("%d branches after Stop", n.srv.PendingBranches())
	}
}

func TestBranchInvite2xx(t *testing.T) {
	n := newBranchNet(t)
	b := n.send(t, "INVITE", BranchOptions{})
	sent := n.wire.len()
	expectKind(t, "200", n.receive(t, b, 200), ReplyFinal)
	expectKind(t, "200 again", n.receive(t, b, 200), Reply2xxAgain)
	if n.wire.len() != sent {
		t.Fatal("a proxy does not ACK a 2xx: the UAC does, end to end")
	}
	if b.Status() != 200 {
		t.Fatalf("status %d", b.Status())
	}
}

func TestBranchNonInvite(t *testing.T) {
	n := newBranchNet(t)
	b := n.send(t, "MESSAGE", BranchOptions{})
	sent := n.wire.len()
	expectKind(t, "100", n.receive(t, b, 100), ReplyProvisional)
	expectKind(t, "404", n.receive(t, b, 404), ReplyFinal)
	expectKind(t, "404 again", n.receive(t, b, 404), ReplyAbsorbed)
	expectKind(t, "200 after the final", n.receive(t, b, 200), ReplyAbsorbed)
	if n.wire.len() != sent {
		t.Fatal("no ACK for a non-INVITE")
	}
	if b.Cancel() {
		t.Fatal("Cancel applies to INVITE branches only")
	}
}

func TestBranchTimeoutWithoutReply(t *testing.T) {
	n := newBranchNet(t)
	var fired []*Branch
	b := n.send(t, "INVITE", BranchOptions{OnTimeout: func(b *Branch) { fired = append(fired, b) }})
	// The timer path does nothing on a virtual branch (it has no fr_timer).
	b.expire()
	if b.TimedOut() || len(fired) != 0 {
		t.Fatal("expire ended a virtual branch")
	}
	sent := n.wire.len()
	if !b.Expire() {
		t.Fatal("Expire on a pending branch")
	}
	if !b.TimedOut() || len(fired) != 1 || fired[0] != b {
		t.Fatalf("timedOut %v, OnTimeout calls %d", b.TimedOut(), len(fired))
	}
	if n.wire.len() != sent {
		t.Fatal("a branch without a provisional reply is not CANCELled")
	}
	if b.Expire() || len(fired) != 1 {
		t.Fatal("Expire twice")
	}
	// Replies after the timeout: absorbed (ACKed if negative), except 2xx.
	expectKind(t, "late 180", n.receive(t, b, 180), ReplyAbsorbed)
	if n.wire.len() != sent {
		t.Fatal("a late provisional after a timeout sent something")
	}
	expectKind(t, "late 486", n.receive(t, b, 486), ReplyAbsorbed)
	if ack, _ := n.wire.last(t); ack.Method != sip.ACK {
		t.Fatalf("late 486 answered with %s, want ACK", ack.Method)
	}
	expectKind(t, "late 200", n.receive(t, b, 200), Reply2xxAgain)
}

func TestBranchTimeoutAfterProvisionalCancels(t *testing.T) {
	n := newBranchNet(t)
	b := n.send(t, "INVITE", BranchOptions{})
	expectKind(t, "180", n.receive(t, b, 180), ReplyProvisional)
	if !b.Expire() {
		t.Fatal("Expire")
	}
	cancel, o := n.wire.last(t)
	if cancel.Method != sip.CANCEL || o.Branch != b {
		t.Fatalf("sent %s for %v after fr_inv_timer, want a CANCEL of the branch", cancel.Method, o.Branch)
	}
	if id, _ := cancel.Via().Params.Get("branch"); id != b.ID() || cancel.CSeq().MethodName != sip.CANCEL || cancel.CSeq().SeqNo != 1 {
		t.Fatalf("CANCEL Via branch %q CSeq %v: the INVITE's branch and number", id, cancel.CSeq())
	}
	// The CANCEL is a client transaction of its own: its 200 matches it,
	// not the INVITE branch.
	res, ct := n.answer(t, cancel, 200)
	if ct == nil || ct == b || ct.ID() != b.ID() {
		t.Fatalf("the 200 for the CANCEL matched %v", ct)
	}
	expectKind(t, "200 for the CANCEL", ct.Receive(res), ReplyAbsorbed)
	if n.srv.PendingBranches() != 2 {
		t.Fatalf("PendingBranches %d, want the INVITE's and the CANCEL's", n.srv.PendingBranches())
	}
	// The INVITE's 487 then ends nothing more: absorbed and ACKed.
	sent := n.wire.len()
	expectKind(t, "487", n.receive(t, b, 487), ReplyAbsorbed)
	if ack, _ := n.wire.last(t); ack.Method != sip.ACK || n.wire.len() != sent+1 {
		t.Fatalf("487 answered with %s", ack.Method)
	}
}

func TestBranchCancel(t *testing.T) {
	t.Run("before any reply", func(t *testing.T) {
		n := newBranchNet(t)
		b := n.send(t, "INVITE", BranchOptions{})
		sent := n.wire.len()
		if !b.Cancel() {
			t.Fatal("Cancel before any reply ends the branch at once (true)")
		}
		if n.wire.len() != sent || b.Cancel() {
			t.Fatal("nothing is sent, and a second Cancel does nothing")
		}
		// A provisional reply after all: now it is CANCELled.
		expectKind(t, "late 180", n.receive(t, b, 180), ReplyAbsorbed)
		if c, _ := n.wire.last(t); c.Method != sip.CANCEL {
			t.Fatalf("late 180 answered with %s, want CANCEL", c.Method)
		}
		expectKind(t, "another 180", n.receive(t, b, 180), ReplyAbsorbed)
		if n.wire.len() != sent+1 {
			t.Fatal("the CANCEL is sent once")
		}
		expectKind(t, "487", n.receive(t, b, 487), ReplyAbsorbed)
		if b.TimedOut() {
			t.Fatal("a cancelled branch did not time out")
		}
	})
	t.Run("after a provisional reply", func(t *testing.T) {
		n := newBranchNet(t)
		b := n.send(t, "INVITE", BranchOptions{})
		expectKind(t, "183", n.receive(t, b, 183), ReplyProvisional)
		if b.Cancel() {
			t.Fatal("Cancel after a provisional reply waits for the final one (false)")
		}
		if c, _ := n.wire.last(t); c.Method != sip.CANCEL {
			t.Fatalf("sent %s, want CANCEL", c.Method)
		}
		sent := n.wire.len()
		if b.Cancel() || n.wire.len() != sent {
			t.Fatal("a second Cancel sent again")
		}
		expectKind(t, "487", n.receive(t, b, 487), ReplyFinal)
		if ack, _ := n.wire.last(t); ack.Method != sip.ACK {
			t.Fatalf("487 answered with %s", ack.Method)
		}
	})
	t.Run("after the final reply", func(t *testing.T) {
		n := newBranchNet(t)
		b := n.send(t, "INVITE", BranchOptions{})
		n.receive(t, b, 200)
		sent := n.wire.len()
		if b.Cancel() || n.wire.len() != sent {
			t.Fatal("Cancel of an answered branch")
		}
	})
}

func TestMatchBranch(t *testing.T) {
	n := newBranchNet(t)
	b := n.send(t, "INVITE", BranchOptions{})
	inv := n.sentRequest(t, b)
	reply := func(mod func(*sip.Response)) *sip.Response {
		res := sip.NewResponseFromRequest(inv, 180, "Ringing", nil)
		mod(res)
		return res
	}
	if got := n.srv.matchBranch(reply(func(*sip.Response) {})); got != b {
		t.Fatalf("matched %v", got)
	}
	for name, mod := range map[string]func(*sip.Response){
		"another branch": func(r *sip.Response) { r.Via().Params.Add("branch", "z9hG4bK-nobody") },
		"no branch":      func(r *sip.Response) { r.Via().Params.Remove("branch") },
		"no Via":         func(r *sip.Response) { r.RemoveHeader("Via") },
		"no CSeq":        func(r *sip.Response) { r.RemoveHeader("CSeq") },
		// The CANCEL of the branch shares its branch, not its method.
		"CSeq CANCEL": func(r *sip.Response) { r.CSeq().MethodName = sip.CANCEL },
		"CSeq ACK":    func(r *sip.Response) { r.CSeq().MethodName = sip.ACK },
	} {
		if got := n.srv.matchBranch(reply(mod)); got != nil {
			t.Fatalf("%s: matched %s", name, got.ID())
		}
	}
}

// TestBranchTableAsMap runs random puts, gets and drops on the branch
// table beside a Go map, with keys that share their branch parameter and
// differ in the method (an INVITE's and its CANCEL's branches).
func TestBranchTableAsMap(t *testing.T) {
	var tab branchTable
	tab.init()
	ref := map[branchKey]*Branch{}
	bs := []*Branch{{}, {}, {}}
	methods := []string{"INVITE", "CANCEL", "MESSAGE", "ACK"}
	rng := rand.New(rand.NewPCG(3, 4))
	for step := 0; step < 200000; step++ {
		k := branchKey{"z9hG4bK" + strconv.Itoa(rng.IntN(1500)), methods[rng.IntN(len(methods))]}
		b := bs[rng.IntN(len(bs))]
		switch rng.IntN(3) {
		case 0:
			tab.put(k, b)
			ref[k] = b
		case 1:
			tab.drop(k, b)
			if ref[k] == b {
				delete(ref, k)
			}
		case 2:
			if got := tab.get(k); got != ref[k] {
				t.Fatalf("step %d get %v: %p, want %p", step, k, got, ref[k])
			}
		}
		if step%1000 == 0 && (tab.len() != len(ref) || len(tab.values()) != len(ref)) {
			t.Fatalf("step %d: %d entries, %d values, want %d", step, tab.len(), len(tab.values()), len(ref))
		}
	}
}

// BenchmarkBranchTable: one relayed request's branch in the branch table
// (put when sent, get for its reply, drop at its end) with 10,000 live
// branches besides, as at 2,000 relayed requests/s in their 5 s wait.
func BenchmarkBranchTable(b *testing.B) {
	var tab branchTable
	tab.init()
	live := &Branch{}
	for i := range 10000 {
		tab.put(branchKey{fmt.Sprintf("z9hG4bK-live-%d", i), "MESSAGE"}, live)
	}
	keys := make([]branchKey, 4096)
	for i := range keys {
		keys[i] = branchKey{fmt.Sprintf("z9hG4bKkemi.%x.%d", 0xfeedbeef+i, i), "MESSAGE"}
	}
	br := &Branch{}
	i := 0
	for b.Loop() {
		k := keys[i&4095]
		i++
		tab.put(k, br)
		if tab.get(k) != br {
			b.Fatal("lost")
		}
		tab.drop(k, br)
	}
}
