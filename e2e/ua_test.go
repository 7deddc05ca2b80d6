package e2e

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
)

// patience bounds every wait on something that must happen (a reply, a
// request, a row, a start): a guard against a hang, not a timing window.
const patience = 30 * time.Second

// ua is a small SIP phone on its own loopback address (127.0.0.x), behind a
// pretend NAT: its Via sent-by, Contact and SDP carry a private address
// (privIP:5060, media privIP:4000) while it really sends from ip:port, as
// a phone behind a home router does. The test drives it step by step; it
// answers what a phone answers (ACK for a final negative reply, 180/200
// with SDP for an INVITE, 200 for a BYE) when the test says so.
//
// Concurrency: a ua belongs to the test goroutine; its reader goroutine
// only feeds the inbox channel.
type ua struct {
	t          *testing.T
	name, pass string
	ip, privIP string
	conn       *net.UDPConn
	port       int
	proxy      *net.UDPAddr
	domain     string // host:port of the proxy: the users' domain
	inbox      chan sip.Message
	pending    []sip.Message
	seen       map[string]bool // top Via branch + method of requests handled (retransmissions)
	closeOnce  sync.Once
}

func newUA(t *testing.T, name, pass, ip, privIP string, proxy *net.UDPAddr) *ua {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatalf("%s: bind %s: %v", name, ip, err)
	}
	u := &ua{t: t, name: name, pass: pass, ip: ip, privIP: privIP, conn: conn,
		port: conn.LocalAddr().(*net.UDPAddr).Port, proxy: proxy,
		domain: proxy.String(), inbox: make(chan sip.Message, 256), seen: map[string]bool{}}
	go u.read()
	t.Cleanup(u.close)
	return u
}

func (u *ua) close() { u.closeOnce.Do(func() { u.conn.Close() }) }

func (u *ua) read() {
	buf := make([]byte, 65535)
	for {
		n, _, err := u.conn.ReadFromUDP(buf)
		if err != nil {
			close(u.inbox)
			return
		}
		if n <= 4 { // keepalive (CRLF)
			continue
		}
		m, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		if err != nil {
			continue
		}
		u.inbox <- m
	}
}

func (u *ua) send(raw string) {
	u.t.Helper()
	if _, err := u.conn.WriteToUDP([]byte(raw), u.proxy); err != nil {
		u.t.Fatalf("%s: send: %v", u.name, err)
	}
}

// next returns the first message (pending ones first) for which match is
// true, waiting up to timeout; other messages stay pending.
func (u *ua) next(timeout time.Duration, match func(sip.Message) bool) (sip.Message, bool) {
	for i, m := range u.pending {
		if match(m) {
			u.pending = append(u.pending[:i], u.pending[i+1:]...)
			return m, true
		}
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		select {
		case m, ok := <-u.inbox:
			if !ok {
				return nil, false
			}
			if match(m) {
				return m, true
			}
			u.pending = append(u.pending, m)
		case <-deadline.C:
			return nil, false
		}
	}
}

// response waits for the next reply to the request with callID and cseq.
func (u *ua) response(callID string, cseq uint32, method string) *sip.Response {
	u.t.Helper()
	m, ok := u.next(patience, func(m sip.Message) bool {
		r, ok := m.(*sip.Response)
		return ok && r.CallID() != nil && string(*r.CallID()) == callID &&
			r.CSeq() != nil && r.CSeq().SeqNo == cseq && string(r.CSeq().MethodName) == method
	})
	if !ok {
		u.t.Fatalf("%s: no reply to %s %d (Call-ID %s) in %v", u.name, method, cseq, callID, patience)
	}
	return m.(*sip.Response)
}

// finalResponse collects the replies to a request up to the final one.
func (u *ua) finalResponse(callID string, cseq uint32, method string) []*sip.Response {
	u.t.Helper()
	var out []*sip.Response
	for {
		r := u.response(callID, cseq, method)
		out = append(out, r)
		if r.StatusCode >= 200 {
			return out
		}
	}
}

// request waits for a new request of method (retransmissions skipped).
func (u *ua) request(method string) *sip.Request {
	u.t.Helper()
	m, ok := u.next(patience, func(m sip.Message) bool {
		r, ok := m.(*sip.Request)
		if !ok || string(r.Method) != method {
			return false
		}
		key := method + " " + topBranch(r)
		if u.seen[key] {
			return false
		}
		u.seen[key] = true
		return true
	})
	if !ok {
		u.t.Fatalf("%s: no %s came in %v", u.name, method, patience)
	}
	return m.(*sip.Request)
}

// quiet reports whether no message matching match comes within d (used
// only for what must NOT happen, after the positive checks).
func (u *ua) quiet(d time.Duration, match func(sip.Message) bool) bool {
	_, got := u.next(d, match)
	return !got
}

func topBranch(m sip.Message) string {
	if v := m.GetHeaders("Via"); len(v) > 0 {
		if i := strings.Index(v[0].Value(), "branch="); i >= 0 {
			b := v[0].Value()[i+7:]
			if j := strings.IndexAny(b, ";, "); j >= 0 {
				b = b[:j]
			}
			return b
		}
	}
	return ""
}

func (u *ua) aor() string     { return "sip:" + u.name + "@" + u.domain }
func (u *ua) contact() string { return "<sip:" + u.name + "@" + u.privIP + ":5060>" }
func (u *ua) via(branch string) string {
	return "SIP/2.0/UDP " + u.privIP + ":5060;rport;branch=z9hG4bK" + branch
}

// sdp is the phone's media description (private address, port 4000).
func (u *ua) sdp() string {
	return "v=0\r\no=" + u.name + " 1000 1000 IN IP4 " + u.privIP + "\r\ns=-\r\nc=IN IP4 " + u.privIP +
		"\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
}

// reqSpec is one request a ua sends.
type reqSpec struct {
	method, ruri string
	to           string // To header (default: the R-URI in <>)
	toTag        string
	callID       string
	fromTag      string
	cseq         uint32
	branch       string
	routes       []string
	extra        []string // more header lines
	body         string
}

func (u *ua) build(r reqSpec) string {
	if r.branch == "" {
		r.branch = enginetest.RandomID()
	}
	to := r.to
	if to == "" {
		to = "<" + r.ruri + ">"
	}
	if r.toTag != "" {
		to += ";tag=" + r.toTag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.method, r.ruri)
	fmt.Fprintf(&b, "Via: %s\r\n", u.via(r.branch))
	for _, rt := range r.routes {
		fmt.Fprintf(&b, "Route: %s\r\n", rt)
	}
	fmt.Fprintf(&b, "Max-Forwards: 70\r\nFrom: <%s>;tag=%s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\n",
		u.aor(), r.fromTag, to, r.callID, r.cseq, r.method)
	fmt.Fprintf(&b, "Contact: %s\r\nUser-Agent: kemi-e2e-phone\r\n", u.contact())
	for _, h := range r.extra {
		b.WriteString(h + "\r\n")
	}
	if r.body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
	return b.String()
}

// digest answers a challenge header value (WWW- or Proxy-Authenticate) for
// method and uri with the ua's password (RFC 2617, qop=auth when offered).
func (u *ua) digest(challenge, method, uri string) string {
	p := authParams(challenge)
	realm, nonce := p["realm"], p["nonce"]
	h := func(s string) string { x := md5.Sum([]byte(s)); return hex.EncodeToString(x[:]) }
	ha1 := h(u.name + ":" + realm + ":" + u.pass)
	ha2 := h(method + ":" + uri)
	out := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5`, u.name, realm, nonce, uri)
	if strings.Contains(p["qop"], "auth") {
		cnonce, nc := "0a4f113b", "00000001"
		out += fmt.Sprintf(`, qop=auth, nc=%s, cnonce="%s", response="%s"`, nc, cnonce, h(ha1+":"+nonce+":"+nc+":"+cnonce+":auth:"+ha2))
	} else {
		out += fmt.Sprintf(`, response="%s"`, h(ha1+":"+nonce+":"+ha2))
	}
	if op, ok := p["opaque"]; ok {
		out += fmt.Sprintf(`, opaque="%s"`, op)
	}
	return out
}

func authParams(v string) map[string]string {
	v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "Digest"))
	out := map[string]string{}
	for len(v) > 0 {
		eq := strings.IndexByte(v, '=')
		if eq < 0 {
			break
		}
		k := strings.TrimSpace(v[:eq])
		v = v[eq+1:]
		var val string
		if strings.HasPrefix(v, `"`) {
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				break
			}
			val, v = v[1:end+1], v[end+2:]
		} else if c := strings.IndexByte(v, ','); c >= 0 {
			val, v = v[:c], v[c:]
		} else {
			val, v = v, ""
		}
		out[strings.ToLower(k)] = strings.TrimSpace(val)
		v = strings.TrimLeft(v, " ,")
	}
	return out
}

// register sends REGISTER without credentials, answers the 401 and returns
// both final replies.
func (u *ua) register() (challenge, ok *sip.Response) {
	u.t.Helper()
	callID, tag := "reg-"+enginetest.RandomID(), enginetest.RandomID()
	ruri := "sip:" + u.domain
	reg := reqSpec{method: "REGISTER", ruri: ruri, to: "<" + u.aor() + ">", callID: callID, fromTag: tag,
		cseq: 1, extra: []string{"Expires: 3600"}}
	u.send(u.build(reg))
	challenge = u.response(callID, 1, "REGISTER")
	if challenge.StatusCode != 401 {
		return challenge, nil
	}
	reg.cseq, reg.branch = 2, ""
	h := challenge.GetHeader("WWW-Authenticate")
	if h == nil {
		u.t.Fatalf("%s: 401 without WWW-Authenticate", u.name)
	}
	reg.extra = append(reg.extra, "Authorization: "+u.digest(h.Value(), "REGISTER", ruri))
	u.send(u.build(reg))
	return challenge, u.response(callID, 2, "REGISTER")
}

// reply answers req as a phone: status, reason, a To tag, the
// Record-Route copied, a Contact, and body as SDP when it is not empty.
func (u *ua) reply(req *sip.Request, code int, reason, toTag, body string) {
	u.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, reason)
	for _, v := range req.GetHeaders("Via") {
		fmt.Fprintf(&b, "Via: %s\r\n", v.Value())
	}
	for _, v := range req.GetHeaders("Record-Route") {
		fmt.Fprintf(&b, "Record-Route: %s\r\n", v.Value())
	}
	to := req.GetHeader("To").Value()
	if toTag != "" && !strings.Contains(to, "tag=") {
		to += ";tag=" + toTag
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n", req.GetHeader("From").Value(), to,
		req.GetHeader("Call-ID").Value(), req.GetHeader("CSeq").Value())
	if code >= 180 && code < 300 {
		fmt.Fprintf(&b, "Contact: %s\r\n", u.contact())
	}
	if body != "" {
		b.WriteString("Content-Type: application/sdp\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	u.send(b.String())
}

// routeSet is the Route headers of a UAC's in-dialog requests: the
// Record-Route of the 2xx in reverse order.
func routeSet(res *sip.Response) []string {
	var rr []string
	for _, h := range res.GetHeaders("Record-Route") {
		for _, v := range strings.Split(h.Value(), ",") {
			rr = append(rr, strings.TrimSpace(v))
		}
	}
	for i, j := 0, len(rr)-1; i < j; i, j = i+1, j-1 {
		rr[i], rr[j] = rr[j], rr[i]
	}
	return rr
}

func contactURI(m sip.Message) string {
	h := m.GetHeaders("Contact")
	if len(h) == 0 {
		return ""
	}
	v := h[0].Value()
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j >= 0 {
			return v[i+1 : i+j]
		}
	}
	return v
}

func toTag(res *sip.Response) string {
	v := res.GetHeader("To").Value()
	if i := strings.Index(v, "tag="); i >= 0 {
		t := v[i+4:]
		if j := strings.IndexAny(t, ";> "); j >= 0 {
			t = t[:j]
		}
		return t
	}
	return ""
}

// mediaPort is the port of the first m= line of an SDP body (0 if none).
func mediaPort(body []byte) int {
	for _, l := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(l, "m=") {
			f := strings.Fields(l)
			if len(f) > 1 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}
