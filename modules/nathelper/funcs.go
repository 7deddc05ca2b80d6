package nathelper

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
)

// nat_uac_test's flag bits (NAT_UAC_TEST_* in nathelper.c).
const (
	testC1918    = 0x01  // Contact host is a private address
	testRcvd     = 0x02  // source address differs from the top Via's
	testV1918    = 0x04  // top Via host is a private address
	testS1918    = 0x08  // an SDP media address is private
	testRport    = 0x10  // source port differs from the top Via's
	testO1918    = 0x20  // source address is private
	testWS       = 0x40  // received over WebSocket
	testCPort    = 0x80  // source port differs from the Contact's
	testSDPCLine = 0x100 // an SDP session c= differs from the source
	testDest     = 0x200 // the destination differs from the R-URI (or 2nd Via)
)

// Kamailio's PROTO_* numbers, as the alias parameter encodes them.
const (
	protoNone = iota
	protoUDP
	protoTCP
	protoTLS
	protoSCTP
	protoWS
	protoWSS
)

func (m *Module) exports() []ksr.Export {
	f := func(name string, fn any, doc string, args ...string) ksr.Export {
		return ksr.Export{Name: name, Func: fn, Ret: ksr.Int, Args: args, Doc: doc}
	}
	return []ksr.Export{
		f("nat_uac_test", m.natUACTest, "1 when any test of the flags holds (1 Contact private, 2 Via address differs from source, 4 top Via private, 8 SDP private, 16 Via port differs from source port, 32 source private, 64 WebSocket, 128 Contact port differs from source port, 256 SDP c= differs from source, 512 destination differs from R-URI), else -1.", "flags"),
		f("fix_nated_contact", m.fixNatedContact, "Set the first Contact URI's host and port to the source address: 1, or -1 (no Contact, or the Contact already rewritten)."),
		f("fix_nated_register", m.fixNatedRegister, "Add the source address as a SIP URI to received_avp, which registrar saves as the contact's received: 1, -1 on error."),
		f("set_contact_alias", m.setContactAlias, "Add ;alias=ip~port~proto of the source to the first Contact URI: 1, or -1."),
		f("set_contact_alias_trim", m.setContactAliasTrim, "set_contact_alias, removing an alias parameter the URI already has first."),
		f("handle_ruri_alias", m.handleRURIAlias, "Move the R-URI's first alias parameter into $du: 1 done, 2 no alias, -1 error."),
		f("handle_ruri_alias_mode", m.handleRURIAliasMode, "handle_ruri_alias with the first (mode 0) or the last (mode 1) alias parameter.", "mode"),
		f("is_rfc1918", m.isRFC1918, "1 when ip is a private (RFC 1918, RFC 6598, RFC 7335) IPv4 address, else -1.", "ip"),
		f("add_contact_alias", m.addContactAlias, "Add ;alias=ip~port~proto of the source after the first Contact URI's host:port unless they match: 1 added, 2 not needed or no Contact, -1 error."),
		f("add_contact_alias_addr", m.addContactAliasAddr, "Add ;alias=ip~port~proto of the given address to the first Contact URI: 1, 2 no Contact, -1 error.", "ip", "port", "proto"),
		f("add_rcv_param", m.addRcvParam, "Add received=\"sip:ip:port\" of the source to every contact (as a URI parameter when flag is not 0, UDP only): 1, or -1.", "flag"),
		f("fix_nated_sdp", m.fixNatedSDP, "Rewrite the SDP by the flags (1 a=direction:active, 2 c= to the source address, 4 nortpproxy line, 8 o= to the source address): 1 changed an address, 2 none, -1 error.", "flags"),
		f("fix_nated_sdp_ip", m.fixNatedSDPIP, "fix_nated_sdp with ip instead of the source address.", "flags", "ip"),
		f("set_alias_to_pv", m.setAliasToPV, "Write the Contact's alias parameter as sip:ip:port;transport=proto into the pseudo-variable named pvname: 1, or -1.", "pvname"),
	}
}

// ---- the received message ----

// source is the message's source address and Kamailio protocol number.
func source(e *ksr.Env) (netip.AddrPort, int, bool) {
	if e.Msg == nil {
		return netip.AddrPort{}, 0, false
	}
	var src netip.AddrPort
	proto := "udp"
	switch {
	case e.Msg.Req != nil:
		src = e.Msg.Req.Src
		if e.Msg.Req.Listener != nil {
			proto = e.Msg.Req.Listener.Proto
		}
	case e.Msg.Res != nil:
		src = e.Msg.Res.Src
		if e.Msg.Res.Listener != nil {
			proto = e.Msg.Res.Listener.Proto
		}
	default:
		return src, 0, false
	}
	return netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), protoNum(proto), src.IsValid()
}

func protoNum(p string) int { return ksr.ProtoNum(strings.ToLower(p)) }

// protoName is proto_type_to_str: ws for both WebSocket protocols, "" for
// an unknown one.
func protoName(p int) string {
	switch p {
	case protoUDP:
		return "udp"
	case protoTCP:
		return "tcp"
	case protoTLS:
		return "tls"
	case protoSCTP:
		return "sctp"
	case protoWS, protoWSS:
		return "ws"
	}
	return ""
}

// ipText is ip_addr2a: an IPv6 address without brackets.
func ipText(a netip.Addr) string { return a.Unmap().String() }

// ipRef is an address as a URI host: IPv6 in brackets.
func ipRef(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// srcURI is get_src_uri(tmode 0): sip:ip:port, with ;transport= for
// anything but UDP.
func srcURI(src netip.AddrPort, proto int) string {
	s := "sip:" + ipRef(src.Addr()) + ":" + strconv.Itoa(int(src.Port()))
	if proto != protoUDP && proto != protoNone {
		p := protoName(proto)
		if proto == protoWSS {
			p = "wss"
		}
		s += ";transport=" + p
	}
	return s
}

// uriParts is a SIP URI's text cut around its host:port, as parse_uri
// finds it.
type uriParts struct {
	head     string // "sip:user@"
	hostport string
	tail     string // ";params?headers"
	host     string // as written (IPv6 with brackets)
	port     int    // 0: none
	hasPort  bool
	params   string // the URI parameters, without the leading ';'
	proto    int    // transport parameter; protoNone without one
	maddr    string
}

// splitURI parses a sip:/sips: URI; ok is false when it has no host.
func splitURI(s string) (u uriParts, ok bool) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return u, false
	}
	scheme := strings.ToLower(s[:i])
	if scheme != "sip" && scheme != "sips" {
		return u, false
	}
	rest := s[i+1:]
	start := i + 1
	if at := strings.LastIndexByte(cutAny(rest, "?"), '@'); at >= 0 {
		start += at + 1
	}
	end := start
	for end < len(s) && s[end] != ';' && s[end] != '?' {
		if s[end] == '[' {
			if j := strings.IndexByte(s[end:], ']'); j >= 0 {
				end += j
			}
		}
		end++
	}
	u.head, u.hostport, u.tail = s[:start], s[start:end], s[end:]
	u.host = u.hostport
	if strings.HasPrefix(u.hostport, "[") {
		j := strings.IndexByte(u.hostport, ']')
		u.host = u.hostport[:j+1]
		if rest := u.hostport[j+1:]; strings.HasPrefix(rest, ":") {
			u.port, _ = strconv.Atoi(rest[1:])
			u.hasPort = true
		}
	} else if j := strings.LastIndexByte(u.hostport, ':'); j >= 0 {
		u.host = u.hostport[:j]
		u.port, _ = strconv.Atoi(u.hostport[j+1:])
		u.hasPort = true
	}
	if u.host == "" {
		return u, false
	}
	p := u.tail
	if q := strings.IndexByte(p, '?'); q >= 0 {
		p = p[:q]
	}
	u.params = strings.TrimPrefix(p, ";")
	for rest := u.params; rest != ""; {
		var kv string
		kv, rest, _ = strings.Cut(rest, ";")
		k, v, _ := strings.Cut(kv, "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "transport":
			u.proto = protoNum(v)
			if u.proto == protoNone {
				u.proto = -1 // PROTO_OTHER
			}
		case "maddr":
			u.maddr = kv
		}
	}
	return u, true
}

func cutAny(s, chars string) string {
	if i := strings.IndexAny(s, chars); i >= 0 {
		return s[:i]
	}
	return s
}

// hostAddr is the URI host as an IP address (IPv6 with or without
// brackets), if it is one.
func hostAddr(host string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"))
	return a, err == nil
}

// firstContact is get_contact_uri: the first contact of the first Contact
// header, and its position in the message's headers.
func firstContact(e *ksr.Env) (*sip.ContactHeader, int) {
	m := e.Msg.SIP()
	if m == nil {
		return nil, -1
	}
	for i, h := range ksr.Headers(m) {
		if c, ok := h.(*sip.ContactHeader); ok {
			return c, i
		}
	}
	return nil, -1
}

// contactURI returns the first contact and its URI parts; ok is false
// when get_contact_uri fails (no Contact, "*", a URI without host).
func contactURI(e *ksr.Env) (*sip.ContactHeader, int, uriParts, bool) {
	c, i := firstContact(e)
	if c == nil || c.Address.Wildcard {
		return nil, -1, uriParts{}, false
	}
	u, ok := splitURI(c.Address.String())
	return c, i, u, ok
}

// contactState is the per-VM memory of the message whose Contact URI was
// replaced (Kamailio's check that the contact URI still points into the
// received buffer).
type contactState struct{ msg *ksr.Msg }

func (m *Module) rewritten(e *ksr.Env) bool {
	return ksr.LocalOf[contactState](e, m.local).msg == e.Msg
}

// replaceContact puts uri in place of the first contact's URI (the
// header itself changes, so later reads and the forwarded copy see it).
func (m *Module) replaceContact(e *ksr.Env, c *sip.ContactHeader, at int, uri string, mark bool) bool {
	nc := &sip.ContactHeader{DisplayName: c.DisplayName, Params: c.Params.Clone()}
	if err := sip.ParseUri(uri, &nc.Address); err != nil {
		e.D.Log.Error("nathelper: the new Contact URI does not parse", "uri", uri, "error", err)
		return false
	}
	msg := e.Msg.SIP()
	hs := ksr.Headers(msg)
	if at == firstIndex(hs) {
		switch x := msg.(type) {
		case *sip.Request:
			x.ReplaceHeader(nc)
		case *sip.Response:
			x.ReplaceHeader(nc)
		}
	} else {
		hs[at] = nc
	}
	if mark {
		ksr.LocalOf[contactState](e, m.local).msg = e.Msg
	}
	return true
}

func firstIndex(hs []sip.Header) int {
	for i, h := range hs {
		if strings.EqualFold(h.Name(), "contact") {
			return i
		}
	}
	return -1
}

// ---- private addresses ----

type netaddr struct {
	net  uint32
	mask uint32
}

var nets1918 = []netaddr{
	{0x0a000000, 0xff000000}, // 10.0.0.0/8
	{0xac100000, 0xfff00000}, // 172.16.0.0/12
	{0xc0a80000, 0xffff0000}, // 192.168.0.0/16
	{0x64400000, 0xffc00000}, // 100.64.0.0/10 as nathelper writes it (rfc6598)
	{0xc0000000, 0xfffffff8}, // 192.0.0.0/29 (rfc7335)
}

var netsExtra = []netaddr{{0xc0000000, 0xffffff00}} // 192.0.0.0/24

func (m *Module) is1918(a netip.Addr) bool {
	a = a.Unmap()
	if !a.Is4() {
		return false
	}
	b := a.As4()
	hl := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	for _, n := range nets1918 {
		if hl&n.mask == n.net&n.mask {
			return true
		}
	}
	if m.set.NatAddrMode == 1 {
		for _, n := range netsExtra {
			if hl&n.mask == n.net {
				return true
			}
		}
	}
	return false
}

// is1918Str is is1918addr: 1 private, 0 public, -1 not an IPv4 address.
func (m *Module) is1918Str(s string) int {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return -1
	}
	if m.is1918(a) {
		return 1
	}
	return 0
}

func (m *Module) isRFC1918(e *ksr.Env, ip string) int {
	if m.is1918Str(ip) == 1 {
		return 1
	}
	return -1
}

// ---- nat_uac_test ----

func (m *Module) natUACTest(e *ksr.Env, flags int) int {
	msg := e.Msg.SIP()
	src, proto, ok := source(e)
	if msg == nil || !ok {
		return -1
	}
	via := msg.Via()
	if flags&testRport != 0 && via != nil {
		vp := via.Port
		if vp == 0 {
			vp = 5060
		}
		if int(src.Port()) != vp {
			return 1
		}
	}
	if flags&testRcvd != 0 && via != nil && !sameHost(src.Addr(), via.Host) {
		return 1
	}
	if flags&testC1918 != 0 {
		if _, _, u, ok := contactURI(e); ok && m.is1918Str(u.host) == 1 {
			return 1
		}
	}
	if flags&testS1918 != 0 && m.sdp1918(e) > 0 {
		return 1
	}
	if flags&testV1918 != 0 && via != nil && m.is1918Str(via.Host) == 1 {
		return 1
	}
	if flags&testO1918 != 0 && m.is1918(src.Addr()) {
		return 1
	}
	if flags&testWS != 0 && (proto == protoWS || proto == protoWSS) {
		return 1
	}
	if flags&testCPort != 0 {
		if _, _, u, ok := contactURI(e); ok {
			p := u.port
			if p == 0 {
				p = 5060
			}
			if int(src.Port()) != p {
				return 1
			}
		}
	}
	if flags&testSDPCLine != 0 && m.sdpCLine(e, src.Addr()) > 0 {
		return 1
	}
	if flags&testDest != 0 && testDestination(e) > 0 {
		return 1
	}
	return -1
}

// sameHost is check_via_address without DNS: the Via host is the source
// address as text (an IPv6 one with or without brackets, any case).
func sameHost(a netip.Addr, host string) bool {
	var buf [64]byte
	s := a.Unmap().AppendTo(buf[:0])
	if a.Unmap().Is6() {
		h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		return strings.EqualFold(h, string(s))
	}
	return host == string(s)
}

// sipPort is GET_SIP_PORT: the port, else 5061 for TLS, else 5060.
func sipPort(port, proto int) int {
	if port != 0 {
		return port
	}
	if proto == protoTLS {
		return 5061
	}
	return 5060
}

// testDestination is nh_test_destination: 1 when the request goes
// somewhere else than its R-URI says ($du), or to a WebSocket; for a
// reply, when the 2nd Via's received/rport differ from its sent-by.
func testDestination(e *ksr.Env) int {
	if e.Msg.Res != nil {
		vias := e.Msg.Res.Msg.GetHeaders("via")
		if len(vias) < 2 {
			return 0
		}
		second, ok := vias[1].(*sip.ViaHeader)
		if !ok {
			return -1
		}
		vp := protoNum(second.Transport)
		if vp == protoWS || vp == protoWSS {
			return 1
		}
		if rp, ok := second.Params.Get("rport"); ok && rp != "" {
			dport, err := strconv.Atoi(rp)
			if err != nil {
				return -1
			}
			if dport != 0 && dport != sipPort(second.Port, vp) {
				return 1
			}
		}
		rcv, ok := second.Params.Get("received")
		if !ok {
			return 0
		}
		return hostsDiffer(rcv, second.Host)
	}
	ru, _ := e.PVString("$ru")
	r, rok := splitURI(ru)
	if e.Msg.DstURI == "" {
		if rok && (r.proto == protoWS || r.proto == protoWSS) {
			return 1
		}
		return 0
	}
	d, ok := splitURI(e.Msg.DstURI)
	if !ok {
		return -1
	}
	if d.proto == protoWS || d.proto == protoWSS {
		return 1
	}
	if !rok {
		return -1
	}
	if sipPort(d.port, d.proto) != sipPort(r.port, r.proto) {
		return 1
	}
	return hostsDiffer(d.host, r.host)
}

func hostsDiffer(dhost, rhost string) int {
	if dhost == "" {
		return 0
	}
	da, dok := hostAddr(dhost)
	ra, rok := hostAddr(rhost)
	switch {
	case !dok && !rok:
		if rhost == "" || rhost == dhost {
			return 0
		}
		return 1
	case !dok || !rok:
		return 1
	case da.Unmap() == ra.Unmap():
		return 0
	}
	return 1
}

// ---- Contact rewrites ----

func (m *Module) fixNatedContact(e *ksr.Env) int {
	src, _, ok := source(e)
	c, at, u, cok := contactURI(e)
	if !ok || !cok {
		return -1
	}
	if m.rewritten(e) {
		e.D.Log.Error("nathelper: you can't call fix_nated_contact twice, check your config!")
		return -1
	}
	hp := ipRef(src.Addr()) + ":" + strconv.Itoa(int(src.Port()))
	tail := u.tail
	if u.maddr != "" {
		// skip the maddr parameter: it makes no sense any more
		i := strings.Index(tail, u.maddr)
		before := strings.TrimRight(tail[:i], " \t;")
		tail = before + tail[i+len(u.maddr):]
	}
	if !m.replaceContact(e, c, at, u.head+hp+tail, true) {
		return -1
	}
	return 1
}

// aliasValue is ip~port~proto of the source (IPv6 in brackets).
func aliasValue(src netip.AddrPort, proto int) string {
	return ipRef(src.Addr()) + "~" + strconv.Itoa(int(src.Port())) + "~" + strconv.Itoa(proto)
}

func (m *Module) setContactAlias(e *ksr.Env) int     { return m.doSetContactAlias(e, false) }
func (m *Module) setContactAliasTrim(e *ksr.Env) int { return m.doSetContactAlias(e, true) }
func (m *Module) doSetContactAlias(e *ksr.Env, trim bool) int {
	src, proto, ok := source(e)
	c, at, _, cok := contactURI(e)
	if !ok || !cok {
		return -1
	}
	if m.rewritten(e) {
		e.D.Log.Error("nathelper: you can't update contact twice, check your config!")
		return -1
	}
	uri := c.Address.String()
	if trim {
		if t, ok := m.trimAlias(uri); ok {
			uri = t
		}
	}
	if !m.replaceContact(e, c, at, uri+m.salias+aliasValue(src, proto), true) {
		return -1
	}
	return 1
}

// trimAlias is uri_trim_rcv_alias: the URI without its last well-formed
// alias parameter, searched from the end.
func (m *Module) trimAlias(uri string) (string, bool) {
	sa := m.salias
	if len(uri) < len(sa)+16 {
		return "", false
	}
	skip := -1
	for p := len(uri) - len(sa) - 11; p > 5; p-- {
		if strings.HasPrefix(uri[p:], sa) {
			skip = p
			break
		}
	}
	if skip < 0 {
		return "", false
	}
	p := skip + len(sa)
	t := strings.IndexByte(uri[p:], '~')
	if t < 0 {
		return "", false
	}
	p += t + 1
	if p >= len(uri) {
		return "", false
	}
	t = strings.IndexByte(uri[p:], '~')
	if t < 0 {
		return "", false
	}
	p += t + 1
	if p >= len(uri) {
		return "", false
	}
	p++ // the proto
	if p != len(uri) && uri[p] != ';' {
		return "", false
	}
	return uri[:skip] + uri[p:], true
}

func (m *Module) addContactAlias(e *ksr.Env) int {
	src, proto, ok := source(e)
	if !ok {
		return -1
	}
	c, _ := firstContact(e)
	if c == nil {
		return 2
	}
	c, at, u, cok := contactURI(e)
	if !cok {
		e.D.Log.Error("nathelper: failed to get contact uri")
		return -1
	}
	if a, isIP := hostAddr(u.host); isIP {
		if a.Unmap() == src.Addr() && (int(src.Port()) == u.port || (!u.hasPort && src.Port() == 5060)) && u.proto == proto {
			return 2
		}
	}
	if m.rewritten(e) {
		e.D.Log.Error("nathelper: you can't call add_contact_alias twice, check your config!")
		return -1
	}
	if proto < protoUDP || proto > protoWSS {
		e.D.Log.Error("nathelper: invalid transport protocol")
		return -1
	}
	if !m.replaceContact(e, c, at, u.head+u.hostport+m.salias+aliasValue(src, proto)+u.tail, false) {
		return -1
	}
	return 1
}

func (m *Module) addContactAliasAddr(e *ksr.Env, ip, port, proto string) int {
	c, _ := firstContact(e)
	if c == nil {
		return 2
	}
	c, at, u, cok := contactURI(e)
	if !cok {
		e.D.Log.Error("nathelper: failed to get contact uri")
		return -1
	}
	if _, isIP := hostAddr(ip); !isIP || strings.HasPrefix(ip, "[") != strings.HasSuffix(ip, "]") {
		e.D.Log.Error("nathelper: ip param value is not valid IP address", "ip", ip)
		return -1
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		e.D.Log.Error("nathelper: port param value is not valid port", "port", port)
		return -1
	}
	pn := protoNum(proto)
	if pn == protoNone {
		e.D.Log.Error("nathelper: proto param value is not a known protocol", "proto", proto)
		return -1
	}
	if m.rewritten(e) {
		e.D.Log.Error("nathelper: you can't call alias_contact twice, check your config!")
		return -1
	}
	if !m.replaceContact(e, c, at, u.head+u.hostport+m.salias+ip+"~"+port+"~"+strconv.Itoa(pn)+u.tail, false) {
		return -1
	}
	return 1
}

// addRcvParam is ki_add_rcv_param: received="sip:ip:port" on every
// contact, as a header parameter, or (upos) as a URI parameter.
func (m *Module) addRcvParam(e *ksr.Env, upos int) int {
	src, proto, ok := source(e)
	if !ok || e.Msg.Req == nil {
		return -1
	}
	if upos != 0 && proto != protoUDP {
		e.D.Log.Error("nathelper: adding received parameter to Contact URI works only for UDP")
		return -1
	}
	uri := srcURI(src, proto)
	hs := ksr.Headers(e.Msg.SIP())
	first := firstIndex(hs)
	found := false
	for i, h := range hs {
		c, ok := h.(*sip.ContactHeader)
		if !ok || c.Address.Wildcard {
			continue
		}
		found = true
		nc := &sip.ContactHeader{DisplayName: c.DisplayName, Params: c.Params.Clone()}
		if upos != 0 {
			if err := sip.ParseUri(c.Address.String()+";received="+uri, &nc.Address); err != nil {
				return -1
			}
		} else {
			nc.Address = *c.Address.Clone()
			if nc.Params == nil {
				nc.Params = sip.NewParams()
			}
			nc.Params.Add("received", `"`+uri+`"`)
		}
		if i == first {
			e.Msg.Req.Msg.ReplaceHeader(nc)
		} else {
			hs[i] = nc
		}
	}
	_ = found // no contact: nothing to do, as contact_iterator finds none
	return 1
}

// fixNatedRegister is fix_nated_register: the source as a SIP URI in
// received_avp, for registrar's save.
func (m *Module) fixNatedRegister(e *ksr.Env) int {
	if m.set.ReceivedAVP == "" {
		return 1
	}
	src, proto, ok := source(e)
	if !ok {
		return -1
	}
	if !e.SetPVString(m.set.ReceivedAVP, srcURI(src, proto)) {
		e.D.Log.Error("nathelper: failed to create AVP", "avp", m.set.ReceivedAVP)
		return -1
	}
	return 1
}

// ---- R-URI alias ----

func (m *Module) handleRURIAlias(e *ksr.Env) int { return m.handleRURIAliasMode(e, 0) }

// handleRURIAliasMode is ki_handle_ruri_alias_mode, byte for byte: the
// same search, the same length arithmetic.
func (m *Module) handleRURIAliasMode(e *ksr.Env, mode int) int {
	if e.Msg == nil || e.Msg.Req == nil {
		return -1
	}
	cur, _ := e.PVString("$ru")
	u, ok := splitURI(cur)
	if !ok {
		e.D.Log.Error("nathelper: while parsing Request-URI")
		return -1
	}
	if u.params == "" {
		return 2
	}
	al := m.alias
	pstart := len(u.head) + len(u.hostport) + 1 // offset of the params in cur
	rest, restLen := pstart, len(u.params)
	start := -1
	for restLen > len(al)+4 {
		if strings.HasPrefix(cur[rest:rest+restLen], al) {
			start = rest
			if mode == 0 {
				break
			}
			rest += len(al)
			restLen -= len(al)
		}
		sep := strings.IndexByte(cur[rest:rest+restLen], ';')
		if sep < 0 {
			break
		}
		restLen -= sep + 1
		rest += sep + 1
	}
	if start < 0 {
		return 2
	}
	rest = start
	val := rest + len(al)
	valLen := restLen - len(al)
	if valLen < 0 {
		valLen = 0
	}
	window := func(from, n int) string {
		if n < 0 {
			n = 0
		}
		if from+n > len(cur) {
			n = len(cur) - from
		}
		return cur[from : from+n]
	}
	pt := strings.IndexByte(window(val, valLen), '~')
	if pt < 0 {
		e.D.Log.Error("nathelper: no '~' in alias param value")
		return -1
	}
	port := val + pt + 1
	// Kamailio writes ':' over that '~' in the URI itself: a failure
	// below leaves the R-URI changed so
	failed := func(msg string) int {
		e.D.Log.Error("nathelper: " + msg)
		e.SetPVString("$ru", cur[:port-1]+":"+cur[port:])
		return -1
	}
	tr := strings.IndexByte(window(port, valLen-(port-val)), '~')
	if tr < 0 {
		return failed("no second '~' in alias param value")
	}
	trans := port + tr
	ipPortLen := trans - val
	aliasLen := len(m.salias) + ipPortLen + 2
	dst := "sip:" + cur[val:port-1] + ":" + cur[port:trans]
	trans++
	if ipPortLen+2 > valLen || trans >= len(cur) || cur[trans] == ';' || cur[trans] == '?' {
		return failed("no proto in alias param")
	}
	pt2 := int(cur[trans]) - '0'
	if pt2 != protoUDP {
		name := protoName(pt2)
		if name == "" {
			return failed("unknown proto in alias param")
		}
		dst += ";transport=" + name
	}
	next := trans + 1
	if ipPortLen+2 < valLen && next < len(cur) && cur[next] != ';' && cur[next] != '?' {
		return failed("invalid alias param value")
	}
	e.Msg.DstURI = dst
	cut := rest - 1
	end := cut + aliasLen
	if end > len(cur) {
		end = len(cur)
	}
	if !e.SetPVString("$ru", cur[:cut]+cur[end:]) {
		return -1
	}
	return 1
}

// ---- set_alias_to_pv ----

func (m *Module) setAliasToPV(e *ksr.Env, pvname string) int {
	msg := e.Msg.SIP()
	if msg == nil {
		return -1
	}
	var cs []*sip.ContactHeader
	for _, h := range ksr.Headers(msg) {
		if c, ok := h.(*sip.ContactHeader); ok {
			cs = append(cs, c)
		}
	}
	// the first contact (sipgo splits a header's contacts, so kemi cannot
	// tell Kamailio's "more than one contact in the first header")
	if len(cs) == 0 {
		return -1
	}
	text := cs[0].Value()
	sa := m.salias
	host, port := "", ""
	found := false
	for i := 0; i < len(text)-len(sa)-5; i++ {
		if strings.HasPrefix(text[i:], sa) {
			i += len(sa)
			t := strings.IndexByte(text[i:], '~')
			if t < 0 {
				e.D.Log.Error("nathelper: No alias parameter found for host")
				return -1
			}
			host = text[i : i+t]
			rest := text[i+t+1:]
			if rest == "" {
				e.D.Log.Error("nathelper: Alias port is not set")
				return -1
			}
			t2 := strings.IndexByte(rest, '~')
			if t2 < 0 {
				e.D.Log.Error("nathelper: Alias sign couldn't be found for proto")
				return -1
			}
			port = rest[:t2]
			proto := atoiPrefix(rest[t2+1:])
			uri := "sip:" + host + ":" + port + ";transport=" + protoName(proto)
			if !e.SetPVString(pvname, uri) {
				e.D.Log.Error("nathelper: Destination pseudo-variable is not writable", "pv", pvname)
				return -1
			}
			found = true
			break
		}
	}
	if !found {
		e.D.Log.Error("nathelper: Alias sign couldn't be found")
		return -1
	}
	return 1
}

// atoiPrefix is atoi: the leading digits.
func atoiPrefix(s string) int {
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// ---- $rr_count, $rr_top_count ----

func rrCount(e *ksr.Env, _ string) lua.LValue {
	msg := e.Msg.SIP()
	if msg == nil {
		return lua.LNil
	}
	return lua.LNumber(len(msg.GetHeaders("record-route")))
}

func rrTopCount(e *ksr.Env, _ string) lua.LValue {
	msg := e.Msg.SIP()
	if msg == nil {
		return lua.LNil
	}
	rr := msg.GetHeaders("record-route")
	if len(rr) == 0 {
		return lua.LNumber(0)
	}
	if h, ok := rr[0].(*sip.RecordRouteHeader); ok && h.Address.UriParams.Has("r2") {
		return lua.LNumber(2)
	}
	return lua.LNumber(1)
}
