// Package rtprelay is what Kamailio's rtpproxy and rtpengine modules share
// in kemi: the sets of media relays ("id == url=weight url ..." as
// rtpproxy_sock / rtpengine_sock), the choice of a relay for a call
// (select_rtpp_node: the Call-ID's byte sum modulo the weights of the
// enabled relays), a dead relay disabled for a while and tested again, and
// the control socket: one UDP socket per relay shared by every worker, a
// command sent with a cookie ("pid_seq ") and retransmitted rtpp_retr
// times, each wait rtpp_tout long, the reply found by its cookie.
//
// Concurrency: Sets and the nodes' state are safe for concurrent use once
// Open returned; the settings (Add) are made by one goroutine before.
package rtprelay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Node is one media relay.
type Node struct {
	URL     string // as configured, without the weight ("udp:127.0.0.1:7722")
	Network string // "udp", "udp6" or "unix"
	Addr    string // host:port or the unix socket path
	Weight  int
	Index   int // in configuration order over all sets

	mu        sync.Mutex
	disabled  bool
	permanent bool      // disabled by RPC until enabled by RPC
	recheck   time.Time // when a disabled relay is tested again
	conn      *conn
	caps      map[string]bool // optional capabilities found by the test
}

// SetCaps records the optional capabilities the test found (rtpproxy's VF).
func (n *Node) SetCaps(c map[string]bool) {
	n.mu.Lock()
	n.caps = c
	n.mu.Unlock()
}

// Cap reports whether the relay has capability c.
func (n *Node) Cap(c string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.caps[c]
}

// Set is a set of relays (set_rtpproxy_set / set_rtpengine_set).
type Set struct {
	ID    int
	Nodes []*Node
}

// Sets are a module's relays.
type Sets struct {
	List []*Set
	// Test checks a relay (rtpproxy's version query, rtpengine's ping):
	// nil when it works. Set before Open.
	Test func(ctx context.Context, n *Node) error
	// Now is the clock of the disable timeouts.
	Now func() time.Time
	// DisableTout is how long a relay that failed stays disabled; when
	// negative it is tested again at its next use (rtpproxy_disable_tout -1).
	DisableTout time.Duration
	// Tout and Retr are the wait per try and the number of tries.
	Tout time.Duration
	Retr int
	// Aggressive forces every relay of a set to be tested again when none
	// is enabled (rtpproxy always; rtpengine's aggressive_redetection).
	Aggressive bool

	prefix string // cookie prefix
	seq    atomic.Uint64
	count  int
}

// DefaultPort is the port of a relay URL without one (rtpproxy's CPORT).
const DefaultPort = "22222"

// Add reads one rtpproxy_sock / rtpengine_sock value: "[id ==] url[=weight] ...".
// strict refuses a URL that is not udp:, udp6: or unix: (rtpengine skips
// it with a warning, returned as warn).
func (s *Sets) Add(def string, strict bool) (warn string, err error) {
	p := strings.TrimSpace(def)
	if p == "" {
		return "", nil
	}
	id := 0
	if i := strings.Index(p, "=="); i >= 0 {
		ids := strings.TrimSpace(p[:i])
		p = strings.TrimSpace(p[i+2:])
		if ids == "" {
			return "", errors.New("invalid set_id value")
		}
		n, err := strconv.ParseUint(ids, 10, 31)
		if err != nil {
			return "", fmt.Errorf("invalid set name %q: must be an integer", ids)
		}
		id = int(n)
	}
	if p == "" {
		return "", errors.New("empty rtp proxy list")
	}
	set := s.ByID(id)
	if set == nil {
		set = &Set{ID: id}
		s.List = append(s.List, set)
	}
	for _, f := range strings.Fields(p) {
		weight := 1
		url := f
		if i := strings.IndexByte(f, '='); i >= 0 {
			url = f[:i]
			w, _ := strconv.ParseUint(strings.TrimLeft(f[i+1:], " "), 10, 31)
			weight = int(w)
		}
		n := &Node{URL: url, Weight: weight}
		switch low := strings.ToLower(url); {
		case strings.HasPrefix(low, "udp:"):
			n.Network, n.Addr = "udp4", url[4:]
		case strings.HasPrefix(low, "udp6:"):
			n.Network, n.Addr = "udp6", url[5:]
		case strings.HasPrefix(low, "unix:"):
			n.Network, n.Addr = "unix", url[5:]
		default:
			if strict {
				warn = fmt.Sprintf("relay address must start with 'udp:', 'udp6:' or 'unix:': %q ignored", url)
				continue
			}
			n.Network, n.Addr = "unix", url // rtpproxy: a path
		}
		if n.Network != "unix" {
			host, port := n.Addr, DefaultPort
			if i := strings.LastIndexByte(n.Addr, ':'); i >= 0 {
				host, port = n.Addr[:i], n.Addr[i+1:]
				if port == "" {
					port = DefaultPort
				}
			}
			n.Addr = net.JoinHostPort(strings.Trim(host, "[]"), port)
		}
		n.Index = s.count
		s.count++
		set.Nodes = append(set.Nodes, n)
	}
	return warn, nil
}

// ByID returns the set id or nil.
func (s *Sets) ByID(id int) *Set {
	for _, set := range s.List {
		if set.ID == id {
			return set
		}
	}
	return nil
}

// Each calls f for every relay, set by set.
func (s *Sets) Each(f func(set *Set, n *Node)) {
	for _, set := range s.List {
		for _, n := range set.Nodes {
			f(set, n)
		}
	}
}

// Open creates the relays' sockets and tests every relay once, as
// Kamailio's child_init. prefix starts every cookie.
func (s *Sets) Open(ctx context.Context, prefix string) error {
	s.prefix = prefix
	if s.Now == nil {
		s.Now = time.Now
	}
	var err error
	s.Each(func(_ *Set, n *Node) {
		if err != nil || n.Network == "unix" {
			return
		}
		var c *conn
		if c, err = dial(n.Network, n.Addr); err != nil {
			err = fmt.Errorf("%s: %w", n.URL, err)
			return
		}
		n.conn = c
	})
	if err != nil {
		s.Close()
		return err
	}
	s.Each(func(_ *Set, n *Node) { s.test(ctx, n, true) })
	return nil
}

// Close closes the sockets.
func (s *Sets) Close() {
	s.Each(func(_ *Set, n *Node) {
		if n.conn != nil {
			n.conn.close()
			n.conn = nil
		}
	})
}

// test is rtpp_test: a relay disabled for ever stays so; unless forced, an
// enabled one is not tested and a disabled one only once its time came.
// It returns whether the relay is disabled afterwards.
func (s *Sets) test(ctx context.Context, n *Node, force bool) bool {
	n.mu.Lock()
	if n.permanent {
		n.mu.Unlock()
		return true
	}
	if !force && (!n.disabled || n.recheck.After(s.Now())) {
		d := n.disabled
		n.mu.Unlock()
		return d
	}
	n.mu.Unlock()
	err := error(nil)
	if s.Test != nil {
		err = s.Test(ctx, n)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err != nil {
		n.disableLocked(s)
		return true
	}
	n.disabled = false
	return false
}

func (n *Node) disableLocked(s *Sets) {
	n.disabled = true
	if s.DisableTout >= 0 { // else tested again at its next use
		n.recheck = s.Now().Add(s.DisableTout)
	}
}

// Disable marks n failed (send_rtpp_command's badproxy).
func (s *Sets) Disable(n *Node) {
	n.mu.Lock()
	if !n.permanent {
		n.disableLocked(s)
	}
	n.mu.Unlock()
}

// State is a relay's state for the RPC commands.
type State struct {
	Disabled, Permanent bool
	Recheck             time.Time
}

// State returns n's state.
func (n *Node) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return State{Disabled: n.disabled, Permanent: n.permanent, Recheck: n.recheck}
}

// SetEnabled enables n (tested again at its next use) or disables it for
// ever, as the rpc enable commands.
func (n *Node) SetEnabled(on bool) {
	n.mu.Lock()
	n.disabled, n.permanent, n.recheck = !on, !on, time.Time{}
	n.mu.Unlock()
}

// Enabled reports whether n is in use.
func (n *Node) Enabled() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.disabled
}

// Select is select_rtpp_node: the relay for callID in set among those
// enabled and not in skip, testing again those whose disable time is
// over; nil when none.
func (s *Sets) Select(ctx context.Context, set *Set, callID string, skip []*Node) *Node {
	if set == nil || len(set.Nodes) == 0 {
		return nil
	}
	if len(set.Nodes) == 1 && skip == nil {
		n := set.Nodes[0]
		if s.test(ctx, n, false) {
			return nil
		}
		return n
	}
	var sum uint32
	for i := 0; i < len(callID); i++ {
		sum += uint32(int8(callID[i])) // C's char: signed on x86
	}
	sum &= 0xff
	skipped := func(n *Node) bool {
		for _, k := range skip {
			if k == n {
				return true
			}
		}
		return false
	}
	forced := false
	for {
		weights := 0
		for _, n := range set.Nodes {
			if !s.test(ctx, n, false) && !skipped(n) {
				weights += n.Weight
			}
		}
		if weights == 0 {
			if forced || !s.Aggressive {
				return nil
			}
			forced = true
			for _, n := range set.Nodes {
				s.test(ctx, n, true)
			}
			continue
		}
		cut := int(sum) % weights
		for _, n := range set.Nodes {
			if !n.Enabled() || skipped(n) {
				continue
			}
			if cut < n.Weight {
				return n
			}
			cut -= n.Weight
		}
		return nil
	}
}

// ErrTimeout is a relay that did not answer in time.
var ErrTimeout = errors.New("timeout waiting for the reply")

// Send sends cmd (without cookie) to n and returns its reply (without
// cookie): retransmitted Retr times, each wait Tout long. A relay that does
// not answer is disabled for DisableTout (when disable is set, as
// rtpproxy's send_rtpp_command does; rtpengine disables in its caller).
func (s *Sets) Send(ctx context.Context, n *Node, cmd []byte, disable bool) ([]byte, error) {
	var (
		reply []byte
		err   error
	)
	if n.Network == "unix" {
		reply, err = sendStream(ctx, n.Addr, cmd, s.Tout)
	} else {
		reply, err = s.sendUDP(ctx, n, cmd)
	}
	if err != nil && disable {
		s.Disable(n)
	}
	return reply, err
}

func (s *Sets) sendUDP(ctx context.Context, n *Node, cmd []byte) ([]byte, error) {
	c := n.conn
	if c == nil {
		return nil, errors.New("relay socket not open")
	}
	cookie := s.prefix + strconv.FormatUint(s.seq.Add(1)-1, 10)
	buf := make([]byte, 0, len(cookie)+1+len(cmd))
	buf = append(append(append(buf, cookie...), ' '), cmd...)
	ch := c.expect(cookie)
	defer c.forget(cookie)
	retr := s.Retr
	if retr < 1 {
		retr = 1
	}
	for i := 0; i < retr; i++ {
		if _, err := c.uc.Write(buf); err != nil {
			return nil, fmt.Errorf("can't send command: %w", err)
		}
		t := time.NewTimer(s.Tout)
		select {
		case r := <-ch:
			t.Stop()
			if r != nil {
				return r, nil
			}
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
	return nil, ErrTimeout
}

func sendStream(ctx context.Context, path string, cmd []byte, tout time.Duration) ([]byte, error) {
	d := net.Dialer{Timeout: tout}
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("can't connect: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(tout))
	if _, err := c.Write(cmd); err != nil {
		return nil, fmt.Errorf("can't send command: %w", err)
	}
	buf := make([]byte, 1<<18)
	k, err := c.Read(buf)
	if err != nil {
		return nil, fmt.Errorf("can't read reply: %w", err)
	}
	return buf[:k], nil
}

// conn is one relay's UDP socket: a reader goroutine hands each reply to
// the command waiting for its cookie.
type conn struct {
	uc      *net.UDPConn
	mu      sync.Mutex
	pending map[string]chan []byte
	done    chan struct{}
}

func dial(network, addr string) (*conn, error) {
	ra, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		return nil, err
	}
	uc, err := net.DialUDP(network, nil, ra)
	if err != nil {
		return nil, err
	}
	c := &conn{uc: uc, pending: map[string]chan []byte{}, done: make(chan struct{})}
	go c.read()
	return c, nil
}

func (c *conn) read() {
	defer close(c.done)
	buf := make([]byte, 1<<18)
	for {
		k, err := c.uc.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// ICMP port unreachable: the tries waiting end now (as poll's
			// POLLERR ends Kamailio's wait), each sender tries again
			c.mu.Lock()
			for _, ch := range c.pending {
				select {
				case ch <- nil:
				default:
				}
			}
			c.mu.Unlock()
			continue
		}
		msg := buf[:k]
		sp := bytes.IndexByte(msg, ' ')
		cookie := msg
		rest := []byte(nil)
		if sp >= 0 {
			cookie, rest = msg[:sp], msg[sp+1:]
		}
		c.mu.Lock()
		ch := c.pending[string(cookie)]
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- append([]byte{}, rest...):
			default: // a retransmission's second reply
			}
		}
	}
}

func (c *conn) expect(cookie string) chan []byte {
	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.pending[cookie] = ch
	c.mu.Unlock()
	return ch
}

func (c *conn) forget(cookie string) {
	c.mu.Lock()
	delete(c.pending, cookie)
	c.mu.Unlock()
}

func (c *conn) close() {
	c.uc.Close()
	<-c.done
}

// Cookie returns Kamailio's cookie prefix for this process: "pid_".
func Cookie() string { return strconv.Itoa(os.Getpid()) + "_" }
