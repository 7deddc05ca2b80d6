package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
)

// outcome is everything one engine did with the flow, normalized: the
// replies and relayed requests each phone saw, in order, and the rows left
// in the database.
type outcome struct {
	Transcript []string
	Rows       []string
}

// TestExample runs Kamailio's basic KEMI Lua example unchanged on Kamailio
// 5.6 and on kemi, drives both with the same phones and compares what they
// answer and what they write.
func TestExample(t *testing.T) {
	if testing.Short() {
		t.Skip("runs MariaDB, rtpengine, Kamailio and kemi")
	}
	lockShared(t)
	cfg, err := os.ReadFile(filepath.Join(upstreamDir(t), exampleCfg))
	if err != nil {
		t.Fatal(err)
	}
	port := freeUDPPort(t) // both engines listen here, one after the other

	var kam, kemi *outcome
	t.Run("kamailio", func(t *testing.T) {
		bin, err := exec.LookPath("kamailio")
		if err != nil {
			t.Skip("kamailio not installed (tests/run installs it)")
		}
		for _, m := range []string{"db_mysql.so", "app_lua.so", "rtpproxy.so", "nathelper.so", "acc.so", "permissions.so"} {
			if _, err := os.Stat(filepath.Join(kamModPath, m)); err != nil {
				t.Skipf("kamailio module %s not installed (tests/run installs it)", m)
			}
		}
		kam = runExample(t, cfg, port, mariaDB{}, func(t *testing.T, dir string) *process {
			run := filepath.Join(dir, "run")
			os.Mkdir(run, 0o755)
			p := start(t, "kamailio", dir, bin, "-f", filepath.Join(dir, exampleCfg), "-DD", "-E",
				"-A", "WITH_CFGLUA", "-Y", run, "-P", filepath.Join(run, "kamailio.pid"), "-w", dir, "-m", "64", "-M", "8")
			// ctl's default socket is under the runtime directory (-Y).
			if kamcmd, err := exec.LookPath("kamcmd"); err == nil {
				p.rpc = []string{kamcmd, "-s", "unix:" + filepath.Join(run, "kamailio_ctl")}
			}
			return p
		})
	})
	bin := buildKemi(t)
	runKemi := func(t *testing.T, db exampleDB) *outcome {
		checkExample(t, bin, db)
		return runExample(t, cfg, port, db, func(t *testing.T, dir string) *process {
			rpcAddr := fmt.Sprintf("127.0.0.1:%d", freeTCPPort(t))
			p := start(t, "kemi", dir, append([]string{bin, "run", "-f", filepath.Join(dir, exampleCfg), "-E",
				"-A", "WITH_CFGLUA", "-rpc", rpcAddr}, db.defines()...)...)
			p.rpc = []string{bin, "rpc", "-s", rpcAddr}
			return p
		})
	}
	t.Run("kemi", func(t *testing.T) { kemi = runKemi(t, mariaDB{}) })
	if kam == nil || kemi == nil {
		return
	}
	compare(t, "transcript", kam.Transcript, kemi.Transcript)
	compare(t, "database rows", kam.Rows, kemi.Rows)

	// The same example with one -A DBURL=... on the databases kemi also
	// speaks: the same replies and the same rows as Kamailio on MariaDB.
	for _, v := range []struct {
		name string
		db   func(*testing.T) kdbDB
	}{{"kemi-sqlite", sqliteDB}, {"kemi-postgres", postgresDB}} {
		t.Run(v.name, func(t *testing.T) {
			o := runKemi(t, v.db(t))
			compare(t, "transcript", kam.Transcript, o.Transcript)
			compare(t, "database rows", kam.Rows, o.Rows)
		})
	}
}

const kamModPath = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

func compare(t *testing.T, what string, kam, kemi []string) {
	t.Helper()
	n := max(len(kam), len(kemi))
	for i := 0; i < n; i++ {
		var a, b string
		if i < len(kam) {
			a = kam[i]
		}
		if i < len(kemi) {
			b = kemi[i]
		}
		if a != b {
			t.Errorf("%s line %d differs:\n kamailio: %s\n     kemi: %s", what, i+1, a, b)
		}
	}
}

func buildKemi(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kemi")
	if out, err := exec.Command("go", "build", "-o", bin, "kemi/cmd/kemi").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kemi: %v\n%s", err, out)
	}
	return bin
}

// checkExample runs `kemi check` on the example as installed for a run
// (the cfg, its Lua and kamailio-local.cfg), with db's defines: it must
// pass, as `kamailio -c` does.
func checkExample(t *testing.T, bin string, db exampleDB) {
	t.Helper()
	dir := t.TempDir()
	installExample(t, dir, freeUDPPort(t))
	args := append([]string{"check", "-f", filepath.Join(dir, exampleCfg), "-A", "WITH_CFGLUA"}, db.defines()...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), exampleCfg+": ok") {
		t.Fatalf("kemi check of the unchanged example: %v\n%s", err, out)
	}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// flow is one run of the example on one engine.
type flow struct {
	t     *testing.T
	n     *normalizer
	rtp   *rtpengine
	proxy *net.UDPAddr
	eng   *process
	lines []string
}

func (f *flow) note(format string, args ...any) {
	f.lines = append(f.lines, f.n.norm(fmt.Sprintf(format, args...)))
}

// replyText is a reply as compared: status, reason and the headers that
// carry the script's decisions (Via with received/rport, Record-Route,
// Contact, the challenge, Expires), plus the SDP body.
func replyText(r *sip.Response) string {
	s := fmt.Sprintf("%d %s", r.StatusCode, r.Reason)
	for _, h := range []string{"Via", "Record-Route", "Contact", "WWW-Authenticate", "Proxy-Authenticate", "Expires"} {
		for _, v := range r.GetHeaders(h) {
			s += " | " + h + ": " + v.Value()
		}
	}
	return s + sdpText(r.Body())
}

// requestText is a request a phone received from the proxy.
func requestText(r *sip.Request) string {
	s := string(r.Method) + " " + r.Recipient.String()
	for _, h := range []string{"Via", "Route", "Record-Route", "Contact", "Max-Forwards", "P-Hint"} {
		for _, v := range r.GetHeaders(h) {
			s += " | " + h + ": " + v.Value()
		}
	}
	return s + sdpText(r.Body())
}

var reSDPLine = regexp.MustCompile(`^[vocmt]=`)

func sdpText(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	var keep []string
	for _, l := range strings.Split(strings.ReplaceAll(string(body), "\r\n", "\n"), "\n") {
		if reSDPLine.MatchString(l) || strings.HasPrefix(l, "a=rtpmap") {
			keep = append(keep, l)
		}
	}
	return " | SDP: " + strings.Join(keep, " / ")
}

func (f *flow) replies(who, what string, rs []*sip.Response) *sip.Response {
	for _, r := range rs {
		f.note("%s <- %s: %s", who, what, replyText(r))
	}
	return rs[len(rs)-1]
}

// relayed checks that an SDP the proxy passed on was rewritten by the
// relay: connection address 127.0.0.1 (rtpengine's interface) and a media
// port that is not the phone's 4000.
func (f *flow) relayed(what string, body []byte) {
	f.t.Helper()
	if !strings.Contains(string(body), "c=IN IP4 127.0.0.1") || mediaPort(body) == 4000 || mediaPort(body) == 0 {
		f.t.Errorf("%s: SDP not rewritten by the media relay:\n%s", what, body)
	}
}

// invite makes caller send an INVITE to ruri, answer the 407 challenge and
// send it again with credentials (CSeq 2). It returns that INVITE's spec
// (Call-ID, From tag, CSeq, body), named label in the transcript.
func (f *flow) invite(caller *ua, ruri, label string) reqSpec {
	f.t.Helper()
	inv := reqSpec{method: "INVITE", ruri: ruri, callID: "call-" + enginetest.RandomID(),
		fromTag: enginetest.RandomID(), cseq: 1, branch: enginetest.RandomID(), body: caller.sdp()}
	f.n.id(inv.callID, "CALLID_"+label)
	f.n.id(inv.fromTag, "FROMTAG_"+label)
	caller.send(caller.build(inv))
	last := f.replies(caller.name, label+" INVITE", caller.finalResponse(inv.callID, 1, "INVITE"))
	if last.StatusCode != 407 {
		f.t.Fatalf("%s: INVITE without credentials got %d, want 407", label, last.StatusCode)
	}
	ack := inv
	ack.method, ack.body, ack.toTag = "ACK", "", toTag(last)
	caller.send(caller.build(ack))
	inv.cseq, inv.branch = 2, enginetest.RandomID()
	h := last.GetHeader("Proxy-Authenticate")
	if h == nil {
		f.t.Fatalf("%s: 407 without Proxy-Authenticate", label)
	}
	inv.extra = []string{"Proxy-Authorization: " + caller.digest(h.Value(), "INVITE", ruri)}
	caller.send(caller.build(inv))
	return inv
}

// runExample prepares the database and the relay, starts the engine on
// the example, runs the flow and returns its outcome.
func runExample(t *testing.T, cfg []byte, port int, db exampleDB, startEngine func(*testing.T, string) *process) *outcome {
	dir := t.TempDir()
	db.prepare(t, cfg)
	rtp := startRtpengine(t, dir)
	installExample(t, dir, port)
	proxy := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	eng := startEngine(t, dir)
	waitReady(t, eng, proxy)

	f := &flow{t: t, n: newNormalizer(), rtp: rtp, proxy: proxy, eng: eng}
	f.n.port(port, "PROXY_PORT")
	users := map[string]*ua{}
	for i, name := range []string{"alice", "bob", "carol", "erin"} {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		users[name] = newUA(t, name, name+"pw", ip, fmt.Sprintf("192.168.0.%d", i+2), proxy)
		f.n.port(users[name].port, strings.ToUpper(name)+"_PORT")
	}
	alice, bob, carol, erin := users["alice"], users["bob"], users["carol"], users["erin"]
	domain := proxy.String()

	// 1. alice and bob register: 401 with a challenge, then 200 with the
	// contact (behind NAT: the received address is kept).
	for _, u := range []*ua{alice, bob} {
		ch, ok := u.register()
		f.note("%s <- REGISTER: %s", u.name, replyText(ch))
		if ch.StatusCode != 401 || ok == nil {
			t.Fatalf("%s: REGISTER without credentials got %d, want 401", u.name, ch.StatusCode)
		}
		f.note("%s <- REGISTER with credentials: %s", u.name, replyText(ok))
		if ok.StatusCode != 200 {
			t.Fatalf("%s: REGISTER with credentials got %d %s, want 200", u.name, ok.StatusCode, ok.Reason)
		}
	}

	// 2. alice calls bob: 407, then the INVITE reaches bob through the
	// location lookup, record-routed, its SDP rewritten by the relay; bob
	// rings and answers; ACK and BYE follow the route set; the BYE ends
	// the relay's session.
	inv := f.invite(alice, "sip:bob@"+domain, "call")
	bobInv := bob.request("INVITE")
	f.note("bob -> %s", requestText(bobInv))
	f.relayed("INVITE at bob", bobInv.Body())
	if bobInv.GetHeader("Record-Route") == nil {
		t.Errorf("INVITE at bob has no Record-Route")
	}
	if !rtp.hasCall(t, inv.callID) {
		t.Errorf("rtpengine has no session for the call after the offer")
	}
	bobTag := enginetest.RandomID()
	f.n.id(bobTag, "BOBTAG")
	bob.reply(bobInv, 180, "Ringing", bobTag, "")
	// bob answers once alice has heard the ringing: a 180 and a 200 sent
	// back to back may be handled by two of Kamailio's receiver processes,
	// and the 200 first (the 180 is then not relayed), which would make
	// the transcript depend on scheduling.
	var got []*sip.Response
	for len(got) == 0 || got[len(got)-1].StatusCode != 180 {
		got = append(got, alice.response(inv.callID, 2, "INVITE"))
		if got[len(got)-1].StatusCode >= 200 {
			t.Fatalf("call: alice got %d before bob answered", got[len(got)-1].StatusCode)
		}
	}
	bob.reply(bobInv, 200, "OK", bobTag, bob.sdp())
	ok := f.replies("alice", "call INVITE with credentials", append(got, alice.finalResponse(inv.callID, 2, "INVITE")...))
	if ok.StatusCode != 200 {
		t.Fatalf("call: alice got %d %s, want 200", ok.StatusCode, ok.Reason)
	}
	f.relayed("200 at alice", ok.Body())
	dlg := reqSpec{ruri: contactURI(ok), routes: routeSet(ok), to: "<sip:bob@" + domain + ">", toTag: bobTag,
		callID: inv.callID, fromTag: inv.fromTag}
	ack := dlg
	ack.method, ack.cseq = "ACK", 2
	alice.send(alice.build(ack))
	f.note("bob -> %s", requestText(bob.request("ACK")))
	bye := dlg
	bye.method, bye.cseq = "BYE", 3
	alice.send(alice.build(bye))
	bobBye := bob.request("BYE")
	f.note("bob -> %s", requestText(bobBye))
	bob.reply(bobBye, 200, "OK", "", "")
	if r := f.replies("alice", "BYE", alice.finalResponse(inv.callID, 3, "BYE")); r.StatusCode != 200 {
		t.Errorf("BYE: alice got %d, want 200", r.StatusCode)
	}
	for deadline := time.Now().Add(patience); rtp.hasCall(t, inv.callID); {
		if time.Now().After(deadline) {
			t.Fatalf("rtpengine still has the call %v after the BYE", patience)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.note("relay: call deleted after BYE")

	// 3. calls that fail: dave is a subscriber who never registered,
	// nobody is no subscriber: the script's lookup() answers 404 "Not
	// Found" for both. Then bob is busy: his 486 comes back to erin and
	// the call is accounted as missed (FLT_ACCMISSED, set when routed
	// through usrloc).
	for _, c := range []struct{ callee, label string }{{"dave", "offline"}, {"nobody", "unknown"}} {
		inv := f.invite(carol, "sip:"+c.callee+"@"+domain, c.label)
		r := f.replies("carol", c.label+" INVITE with credentials", carol.finalResponse(inv.callID, 2, "INVITE"))
		if r.StatusCode != 404 {
			t.Errorf("%s: got %d %s, want 404 Not Found", c.label, r.StatusCode, r.Reason)
		}
		ack := inv
		ack.method, ack.body, ack.extra, ack.toTag = "ACK", "", nil, toTag(r)
		carol.send(carol.build(ack))
	}
	inv = f.invite(erin, "sip:bob@"+domain, "busy")
	bobInv = bob.request("INVITE")
	f.note("bob -> %s", requestText(bobInv))
	busyTag := enginetest.RandomID()
	f.n.id(busyTag, "BUSYTAG")
	bob.reply(bobInv, 486, "Busy Here", busyTag, "")
	busy := f.replies("erin", "busy INVITE with credentials", erin.finalResponse(inv.callID, 2, "INVITE"))
	if busy.StatusCode != 486 {
		t.Errorf("busy: erin got %d %s, want 486", busy.StatusCode, busy.Reason)
	}
	ack = inv
	ack.method, ack.body, ack.extra, ack.toTag = "ACK", "", nil, toTag(busy)
	erin.send(erin.build(ack))
	f.note("bob -> %s", requestText(bob.request("ACK"))) // tm's ACK for the 486

	// 4. a flood from one address: pike (16 requests per 2 s unit) blocks
	// it and the script puts it into htable ipban; from then on its
	// requests are dropped while other addresses are still served.
	f.flood(alice)

	eng.stop(t)
	if !eng.exited() {
		t.Fatalf("%s did not stop", eng.name)
	}
	rows := db.rows(t, f.n)
	for _, want := range []string{"location: alice | ", "location: bob | ", "acc: INVITE | ", "acc: BYE | ", "missed_calls: INVITE | "} {
		found := false
		for _, r := range rows {
			found = found || strings.HasPrefix(r, want)
		}
		if !found {
			t.Errorf("no %q row in the database; rows:\n%s", strings.TrimSuffix(want, " | "), strings.Join(rows, "\n"))
		}
	}
	t.Logf("transcript:\n%s", strings.Join(f.lines, "\n"))
	t.Logf("rows:\n%s", strings.Join(rows, "\n"))
	return &outcome{Transcript: f.lines, Rows: rows}
}

// banned polls the engine's htable ipban (htable.get over its RPC) until
// ip is there with the value 1 the example's script sets, or gives up
// after patience; the script sets it while routing the burst, so it is
// there once the burst's replies are in, but the receiver that blocked the
// address may still be routing.
func (f *flow) banned(ip string) bool {
	f.t.Helper()
	value := regexp.MustCompile(`"?value"?\s*:\s*1\b`)
	deadline := time.Now().Add(patience)
	for {
		out, err := f.eng.call("htable.get", "ipban", ip)
		if err == nil && strings.Contains(out, ip) && value.MatchString(out) {
			return true
		}
		if time.Now().After(deadline) {
			f.t.Logf("htable.get ipban %s on %s: %v\n%s", ip, f.eng.name, err, out)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// flood sends a burst of OPTIONS keepalives from 127.0.0.9 and checks that
// some go unanswered, that the address stays banned afterwards, and that
// other (witness's) requests are still answered.
func (f *flow) flood(witness *ua) {
	t := f.t
	t.Helper()
	fl := newUA(t, "flooder", "", "127.0.0.9", "127.0.0.9", f.proxy)
	const burst = 100
	opt := func(u *ua, id string) string {
		return fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s:%d;rport;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: <sip:%s@%s>;tag=%s\r\nTo: <sip:%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			f.proxy, u.ip, u.port, id, u.name, f.proxy, id, f.proxy, id)
	}
	isReply := func(m sip.Message) bool { _, ok := m.(*sip.Response); return ok }
	for i := 0; i < burst; i++ {
		fl.send(opt(fl, fmt.Sprintf("flood-%d", i)))
	}
	// Every reply the proxy sends to the burst comes before the witness's
	// reply to a request sent after it (one more from the witness's own
	// address, which pike counts apart).
	witnessProbe := func() {
		id := "probe-" + enginetest.RandomID()
		witness.send(opt(witness, id))
		if _, ok := witness.next(patience, func(m sip.Message) bool {
			r, ok := m.(*sip.Response)
			return ok && r.CallID() != nil && string(*r.CallID()) == id && r.StatusCode == 200
		}); !ok {
			t.Fatalf("the proxy no longer answers %s after the flood", witness.ip)
		}
	}
	witnessProbe()
	answered := 0
	for !fl.quiet(500*time.Millisecond, isReply) {
		answered++
	}
	if answered == 0 || answered >= burst {
		t.Errorf("flood: %d of %d requests answered, want some but not all (pike blocks after 16 per 2 s)", answered, burst)
	}
	t.Logf("flood: %d of %d OPTIONS answered", answered, burst)
	// The script put the address into htable ipban: read it back.
	if !f.banned("127.0.0.9") {
		t.Errorf("flood: 127.0.0.9 is not in htable ipban after the burst")
	}
	// Banned: a request well after the burst is still dropped.
	after := "after-" + enginetest.RandomID()
	fl.send(opt(fl, after))
	witnessProbe()
	// Only the reply to this request counts: a late reply to the burst
	// (another receiver's queue) is not an answer to it.
	banned := fl.quiet(time.Second, func(m sip.Message) bool {
		r, ok := m.(*sip.Response)
		return ok && r.CallID() != nil && string(*r.CallID()) == after
	})
	if !banned {
		t.Errorf("flood: the flooding address is answered again after the burst (not in ipban)")
	}
	f.note("flood from 127.0.0.9: blocked by pike %v, banned after %v", answered < burst, banned)
}
