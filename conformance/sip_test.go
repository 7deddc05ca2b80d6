package conformance

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// message is a SIP message as received, headers in order, unchanged.
type message struct {
	first   string // request or status line
	headers [][2]string
	body    string
}

func (m *message) get(name string) (string, bool) {
	for _, h := range m.headers {
		if strings.EqualFold(h[0], name) {
			return h[1], true
		}
	}
	return "", false
}

func (m *message) isResponse() bool { return strings.HasPrefix(m.first, "SIP/2.0 ") }

// parseMessage splits raw into its first line, headers and body. It does not
// validate: a malformed header line is kept whole as a name without value.
func parseMessage(raw []byte) *message {
	head, body, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
	lines := strings.Split(string(head), "\r\n")
	m := &message{first: lines[0], body: string(body)}
	for _, l := range lines[1:] {
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			m.headers = append(m.headers, [2]string{l, "<no colon>"})
			continue
		}
		m.headers = append(m.headers, [2]string{strings.TrimSpace(name), strings.TrimSpace(val)})
	}
	return m
}

// readStream reads one message from a TCP stream (Content-Length framing).
func readStream(rd *bufio.Reader) ([]byte, error) {
	var head bytes.Buffer
	clen := 0
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if head.Len() == 0 && strings.TrimSpace(line) == "" {
			continue
		}
		head.WriteString(line)
		l := strings.ToLower(strings.TrimSpace(line))
		if strings.HasPrefix(l, "content-length:") || strings.HasPrefix(l, "l:") {
			clen, _ = strconv.Atoi(strings.TrimSpace(l[strings.IndexByte(l, ':')+1:]))
		}
		if line == "\r\n" || line == "\n" {
			break
		}
	}
	body := make([]byte, clen)
	if _, err := io.ReadFull(rd, body); err != nil {
		return nil, err
	}
	head.Write(body)
	return head.Bytes(), nil
}

// conn is one client connection to an engine: UDP or TCP.
type conn struct {
	c  net.Conn
	rd *bufio.Reader
}

func dial(proto, addr string) (*conn, error) {
	c, err := net.Dial(proto, addr)
	if err != nil {
		return nil, err
	}
	return &conn{c: c, rd: bufio.NewReaderSize(c, 1<<16)}, nil
}

func (c *conn) localPort() int {
	switch a := c.c.LocalAddr().(type) {
	case *net.UDPAddr:
		return a.Port
	case *net.TCPAddr:
		return a.Port
	}
	return 0
}

func (c *conn) send(raw string) error {
	_, err := c.c.Write([]byte(raw))
	return err
}

// recv reads one message before deadline.
func (c *conn) recv(deadline time.Time) (*message, error) {
	c.c.SetReadDeadline(deadline)
	if _, ok := c.c.(*net.UDPConn); ok {
		buf := make([]byte, 1<<16)
		n, err := c.c.Read(buf)
		if err != nil {
			return nil, err
		}
		return parseMessage(buf[:n]), nil
	}
	raw, err := readStream(c.rd)
	if err != nil {
		return nil, err
	}
	return parseMessage(raw), nil
}

func (c *conn) close() { c.c.Close() }

// request is what buildRequest needs to know.
type request struct {
	method  string
	profile string
	caseHdr string // X-Case, "" for none
	callID  string
	port    int    // the engine's port
	sink    string // the sink's address
}

// buildRequest returns the raw request of a profile (see conformance.lua).
func buildRequest(c *conn, r request) string {
	proto := "UDP"
	if _, ok := c.c.(*net.TCPConn); ok {
		proto = "TCP"
	}
	self := "127.0.0.1:" + strconv.Itoa(r.port)
	ruri, from, to := "sip:bob@example.org;x=1", "\"Alice\" <sip:alice@example.com>;tag=ftag1234", "<sip:bob@example.org>"
	var extra []string
	body := ""
	switch r.profile {
	case "self":
		ruri, from, to = "sip:bob@"+self, "<sip:alice@"+self+">;tag=ftag1234", "<sip:bob@"+self+">"
	case "body":
		extra = append(extra, "Content-Type: text/plain")
		body = "hello body\r\n"
	case "rr":
		extra = append(extra, "Record-Route: <sip:192.0.2.9;lr>")
	case "route-other":
		extra = append(extra, "Route: <sip:proxy.example.net;lr>")
	case "route-self":
		extra = append(extra, "Route: <sip:"+self+";lr>", "Route: <sip:next.example.net;lr>")
	case "route-self-only":
		extra = append(extra, "Route: <sip:"+self+";lr>")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\n", r.method, ruri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%s;rport\r\n", proto, c.c.LocalAddr(), strings.ReplaceAll(r.callID, ".", ""))
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", to)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", r.callID)
	fmt.Fprintf(&b, "CSeq: 10 %s\r\n", r.method)
	b.WriteString("Max-Forwards: 70\r\n")
	b.WriteString("User-Agent: conformance-ua/1.0\r\n")
	b.WriteString("Contact: <sip:alice@127.0.0.1:5999>\r\n")
	b.WriteString("X-Multi: one\r\n")
	b.WriteString("X-Multi: two\r\n")
	b.WriteString("X-Num: 42\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "X-Port: %d\r\n", r.port)
	fmt.Fprintf(&b, "X-Src-Port: %d\r\n", c.localPort())
	fmt.Fprintf(&b, "X-Sink: %s\r\n", r.sink)
	if r.caseHdr != "" {
		fmt.Fprintf(&b, "X-Case: %s\r\n", r.caseHdr)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return b.String()
}

// sink is the next hop of forwarded and relayed requests: it records each
// request by Call-ID and answers the ones whose case expects a relay.
type sink struct {
	pc      net.PacketConn
	answer  func(caseName string) int // the status to answer with, 0 for none
	mu      sync.Mutex
	reqs    map[string]*message
	markers map[string]chan struct{}
}

func newSink(t *testing.T, answer func(string) int) *sink {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sink{pc: pc, answer: answer, reqs: map[string]*message{}, markers: map[string]chan struct{}{}}
	t.Cleanup(func() { pc.Close() })
	go s.loop()
	return s
}

func (s *sink) addr() string { return s.pc.LocalAddr().String() }

func (s *sink) port() int { return s.pc.LocalAddr().(*net.UDPAddr).Port }

func (s *sink) loop() {
	buf := make([]byte, 1<<16)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		raw := append([]byte(nil), buf[:n]...)
		if id, ok := strings.CutPrefix(string(raw), "MARK "); ok {
			s.mu.Lock()
			if ch := s.markers[id]; ch != nil {
				close(ch)
				delete(s.markers, id)
			}
			s.mu.Unlock()
			continue
		}
		m := parseMessage(raw)
		if m.isResponse() {
			continue
		}
		cid, _ := m.get("Call-ID")
		name, _ := m.get("X-Case")
		s.mu.Lock()
		if _, seen := s.reqs[cid]; !seen {
			s.reqs[cid] = m
		}
		s.mu.Unlock()
		if code := s.answer(name); code != 0 && !strings.HasPrefix(m.first, "ACK ") {
			s.pc.WriteTo([]byte(sinkAnswer(m, code)), from)
		}
	}
}

// sinkAnswer is the sink's reply to m.
func sinkAnswer(m *message, code int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d Sink Says\r\n", code)
	for _, h := range m.headers {
		switch strings.ToLower(h[0]) {
		case "via", "v", "from", "f", "call-id", "i", "cseq":
			fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
		case "to", "t":
			fmt.Fprintf(&b, "%s: %s;tag=sink\r\n", h[0], h[1])
		}
	}
	b.WriteString("X-Sink-Answer: yes\r\nContent-Length: 0\r\n\r\n")
	return b.String()
}

// sync returns once every packet the sink received before now has been
// read: loopback UDP delivers a datagram into the receiver's queue when it
// is sent, so a marker sent now is queued behind anything an engine sent
// before it answered.
func (s *sink) sync(t *testing.T, id string) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.markers[id] = ch
	s.mu.Unlock()
	c, err := net.Dial("udp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("MARK " + id))
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("sink marker %s never came back", id)
	}
}

func (s *sink) request(callID string) *message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[callID]
}

// pctDecode reverses the script's percent-encoding.
func pctDecode(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}
