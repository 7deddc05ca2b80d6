package nathelper

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/modules/usrloc"
)

// usrlocSlots is usrloc's hash table size (hash_size 10): the keepalives
// of one second go to the contacts of every natping_interval-th slot.
const usrlocSlots = 1 << 10

// pinger is nh_timer: once a second of the engine's clock, the contacts
// of the slots due in this second of natping_interval get a keepalive.
type pinger struct {
	m         *Module
	iteration int
	next      atomic.Int64 // the next tick, Unix nanoseconds (Idle)
	start     time.Time

	sippingFlag, disableFlag, natFlag int

	// build_sipping's state: a random From tag counter, a random Call-ID
	// prefix and counter (init_sip_ping).
	fromTag    uint32
	callIDBase string
	callIDCnt  uint32
}

func newPinger(m *Module) *pinger {
	p := &pinger{m: m, fromTag: rand.Uint32(), callIDBase: reverseHex(rand.Uint32()), callIDCnt: rand.Uint32()}
	if m.set.SippingBflag >= 0 {
		p.sippingFlag = 1 << m.set.SippingBflag
	}
	if m.set.NatpingDisableBflag >= 0 {
		p.disableFlag = 1 << m.set.NatpingDisableBflag
	}
	if m.set.PingNatedOnly {
		p.natFlag = m.ul.NatFlag()
	}
	return p
}

// run ticks every second on the engine's clock until ctx ends.
func (p *pinger) run(ctx context.Context) {
	defer p.m.wg.Done()
	clock := p.m.host.Clock()
	p.start = clock.Now()
	next := p.start.Add(time.Second)
	for {
		p.next.Store(next.UnixNano())
		t := clock.NewTimer(next.Sub(clock.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		p.m.host.Hold(1)
		p.tick(clock.Now())
		p.m.host.Hold(-1)
		// a tick missed (a slow clock step) is skipped, as a timer process
		// that overslept
		now := clock.Now()
		for !next.After(now) {
			next = next.Add(time.Second)
		}
	}
}

// Idle is the keepalive goroutine waiting on its next tick (ksr.Idler).
func (m *Module) Idle(now time.Time, ds []time.Time) (int, []time.Time, string) {
	if m.pinger != nil {
		if n := m.pinger.next.Load(); n != 0 {
			ds = append(ds, time.Unix(0, n))
		}
	}
	return 0, ds, ""
}

// tick pings the contacts due now.
func (p *pinger) tick(now time.Time) {
	m := p.m
	iv := m.set.NatpingInterval
	defer func() {
		p.iteration++
		if p.iteration == iv {
			p.iteration = 0
		}
	}()
	if !m.enabled.Load() || m.set.NatpingProcesses <= 0 {
		return
	}
	for _, c := range m.ul.AllContacts(p.natFlag) {
		aorHash := coreHash(c.AOR)
		if int(aorHash&(usrlocSlots-1))%iv != p.iteration {
			continue
		}
		p.ping(&c, aorHash, now)
	}
}

// ping sends one contact its keepalive.
func (p *pinger) ping(c *usrloc.Contact, aorHash uint32, now time.Time) {
	m := p.m
	log := m.host.Logger()
	if c.CFlags&p.disableFlag != 0 {
		return
	}
	dstURI := c.Contact
	if c.Received != "" {
		dstURI = c.Received
	}
	sipPing := c.CFlags&p.sippingFlag != 0 || (!m.set.PingNatedOnly && p.sippingFlag != 0)
	if c.Path != "" && c.CFlags&p.sippingFlag != 0 {
		dstURI = firstPathURI(c.Path)
	}
	u, ok := splitURI(dstURI)
	if !ok {
		log.Error("nathelper: can't parse contact/received uri", "uri", dstURI)
		return
	}
	if u.proto != protoUDP && u.proto != protoNone {
		return
	}
	port := u.port
	if port == 0 {
		port = 5060
	}
	ip, ok := hostAddr(u.host)
	if !ok {
		ips, err := net.DefaultResolver.LookupNetIP(context.Background(), "ip", u.host)
		if err != nil || len(ips) == 0 {
			log.Error("nathelper: can't resolve_host", "host", u.host, "error", err)
			return
		}
		ip = ips[0]
	}
	dst := netip.AddrPortFrom(ip.Unmap(), uint16(port))
	socket := c.Socket
	if m.set.ForceSocket != "" {
		socket = m.set.ForceSocket
	}
	err := m.host.SendUDP(socket, dst, func(local netip.AddrPort) []byte {
		if sipPing {
			return p.buildSIPPing(c, local, aorHash, now)
		}
		return []byte{0, 0, 0, 0}
	})
	if err != nil {
		log.Error("nathelper: udp_send failed", "to", dst, "error", err)
		return
	}
	m.pingsSent.Add(1)
}

// firstPathURI is get_path_dst_uri: the first Path URI (its received
// parameter when it has one).
func firstPathURI(path string) string {
	s := path
	if i := strings.IndexByte(s, '<'); i >= 0 {
		s = s[i+1:]
		if j := strings.IndexByte(s, '>'); j >= 0 {
			s = s[:j]
		}
	} else if i := strings.IndexByte(s, ','); i >= 0 {
		s = s[:i]
	}
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err == nil {
		if r, ok := u.UriParams.Get("received"); ok && r != "" {
			return r
		}
	}
	return s
}

// buildSIPPing is build_sipping: the keepalive request, from the socket's
// address.
func (p *pinger) buildSIPPing(c *usrloc.Contact, local netip.AddrPort, aorHash uint32, now time.Time) []byte {
	m := p.m
	method := m.set.SippingMethod
	addr := ipText(local.Addr())
	var b strings.Builder
	b.WriteString(method + " " + c.Contact + " SIP/2.0\r\nVia: SIP/2.0/UDP ")
	b.WriteString(ipRef(local.Addr()) + ":" + strconv.Itoa(int(local.Port())))
	b.WriteString(";branch=z9hG4bK" + strconv.Itoa(1000000+rand.IntN(9999999-1000000)))
	if c.Path != "" {
		b.WriteString("\r\nRoute: " + c.Path)
	}
	b.WriteString("\r\nFrom: " + m.set.SippingFrom + ";tag=" + c.Ruid + "-" + reverseHex(aorHash) + "-" + reverseHex(p.fromTag))
	p.fromTag++
	b.WriteString("\r\nTo: " + c.Contact)
	ticks := uint32(now.Sub(p.start) / time.Second)
	b.WriteString("\r\nCall-ID: " + p.callIDBase + "-" + reverseHex(p.callIDCnt) + "-" + reverseHex(ticks) + "@" + addr)
	p.callIDCnt++
	b.WriteString("\r\nCSeq: 1 " + method + "\r\nContent-Length: 0\r\n\r\n")
	return []byte(b.String())
}

// AbsorbReply is sipping_rpl_filter: a reply with one Via, the ping's
// method in CSeq and the pings' Call-ID prefix is a reply to a keepalive,
// and goes no further (ksr.ReplyFilter).
func (m *Module) AbsorbReply(res *sip.Response) bool {
	p := m.pinger
	if p == nil || p.sippingFlag == 0 {
		return false
	}
	if len(res.GetHeaders("via")) != 1 {
		return false
	}
	cs := res.CSeq()
	if cs == nil || string(cs.MethodName) != m.set.SippingMethod {
		return false
	}
	id := res.CallID()
	return id != nil && len(*id) > len(p.callIDBase)+1 && strings.HasPrefix(string(*id), p.callIDBase+"-")
}

// reverseHex is int2reverse_hex: the hex digits of n, lowest first.
func reverseHex(n uint32) string {
	if n == 0 {
		return "0"
	}
	var b [8]byte
	i := 0
	for ; n != 0; n >>= 4 {
		d := byte(n & 0xf)
		if d >= 10 {
			b[i] = d - 10 + 'a'
		} else {
			b[i] = d + '0'
		}
		i++
	}
	return string(b[:i])
}

// coreHash is Kamailio's core_hash(s, NULL, 0): usrloc's aorhash.
func coreHash(s string) uint32 {
	var h, v uint32
	p := 0
	// the bytes are C chars: signed, as on x86
	ch := func(i int) uint32 { return uint32(int32(int8(s[i]))) }
	for ; p+4 <= len(s); p += 4 {
		v = ch(p)<<24 + ch(p+1)<<16 + ch(p+2)<<8 + ch(p+3)
		h += v ^ (v >> 3)
	}
	v = 0
	for ; p < len(s); p++ {
		v <<= 8
		v += ch(p)
	}
	h += v ^ (v >> 3)
	return (h + (h >> 11)) + ((h >> 13) + (h >> 23))
}
