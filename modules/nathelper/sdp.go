package nathelper

import (
	"net/netip"
	"sort"
	"strings"

	"kemi/ksr"
)

// fix_nated_sdp's flag bits.
const (
	addADirection  = 0x01
	fixMedIP       = 0x02
	addANortpproxy = 0x04
	fixOrgIP       = 0x08
)

// sdpBody is extract_body: the message's body when its Content-Type is
// application/sdp (or absent), without its trailing CRLFs; ok is false
// for no body, another type (multipart bodies included: kemi does not
// look into them) or a body of line ends only.
func sdpBody(e *ksr.Env) (body, trailer string, ok bool) {
	msg := e.Msg.SIP()
	if msg == nil {
		return "", "", false
	}
	b := string(msg.Body())
	if b == "" {
		e.D.Log.Error("nathelper: message body has length zero")
		return "", "", false
	}
	if cts := msg.GetHeaders("content-type"); len(cts) > 0 {
		ct := cts[0]
		t := strings.ToLower(strings.TrimSpace(ct.Value()))
		if i := strings.IndexAny(t, "; \t"); i >= 0 {
			t = t[:i]
		}
		if t != "application/sdp" {
			e.D.Log.Error("nathelper: content type mismatching", "content-type", ct.Value())
			return "", "", false
		}
	}
	core := strings.TrimRight(b, "\r\n")
	if core == "" {
		e.D.Log.Error("nathelper: empty body")
		return "", "", false
	}
	return core, b[len(core):], true
}

// noBody says the message has no body: nat_uac_test's SDP tests read
// it through the core's parse_sdp, which finds no session there and logs
// nothing above debug (extract_body, for fix_nated_sdp, logs an error).
func noBody(e *ksr.Env) bool {
	msg := e.Msg.SIP()
	return msg == nil || len(msg.Body()) == 0
}

// sdpSection is one SDP session or media description: its c= address.
type sdpSection struct {
	ip string
	pf int // 4, 6 or 0 (none or another type)
}

// parseSDP reads the session's and each media description's c= line.
func parseSDP(body string) (session sdpSection, streams []sdpSection) {
	cur := &session
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "m="):
			streams = append(streams, sdpSection{})
			cur = &streams[len(streams)-1]
		case strings.HasPrefix(line, "c="):
			f := strings.Fields(line[2:])
			if len(f) >= 3 {
				cur.ip = f[2]
				if i := strings.IndexByte(cur.ip, '/'); i >= 0 {
					cur.ip = cur.ip[:i]
				}
				switch f[1] {
				case "IP4":
					cur.pf = 4
				case "IP6":
					cur.pf = 6
				}
			}
		}
	}
	return session, streams
}

// sdp1918 is sdp_1918: 1 when a media address is private, else 0; -1
// without an SDP body.
func (m *Module) sdp1918(e *ksr.Env) int {
	if noBody(e) {
		return 0 // parse_sdp: no body is no session, not an error
	}
	body, _, ok := sdpBody(e)
	if !ok {
		return -1
	}
	session, streams := parseSDP(body)
	for _, s := range streams {
		ip, pf := s.ip, s.pf
		if ip == "" {
			ip, pf = session.ip, session.pf
		}
		if pf != 4 || isNullAddr(ip, pf) {
			break
		}
		if m.is1918Str(ip) == 1 {
			return 1
		}
	}
	return 0
}

// sdpCLine is test_sdp_cline: the number of sessions whose c= address is
// not the source address (kemi reads one session per body); -1 on error.
func (m *Module) sdpCLine(e *ksr.Env, src netip.Addr) int {
	if noBody(e) {
		return 0 // parse_sdp: no body is no session, not an error
	}
	body, _, ok := sdpBody(e)
	if !ok {
		return -1
	}
	session, _ := parseSDP(body)
	if session.ip == "" {
		return 0
	}
	if session.pf != 4 && session.pf != 6 {
		return -1
	}
	a, err := netip.ParseAddr(session.ip)
	if err != nil {
		return -1
	}
	if a.Unmap() == src.Unmap() {
		return 0
	}
	return 1
}

func isNullAddr(s string, pf int) bool {
	if pf == 6 {
		return strings.Trim(s, "0:") == ""
	}
	return s == "0.0.0.0"
}

// edit is one change of the body, a data lump: delete n bytes at off,
// then insert text there. Edits apply in offset order, those at one
// offset in the order they were made, as Kamailio's lumps.
type edit struct {
	off, n int
	text   string
}

func applyEdits(body string, eds []edit) string {
	sort.SliceStable(eds, func(i, j int) bool { return eds[i].off < eds[j].off })
	var b strings.Builder
	at := 0
	for _, ed := range eds {
		if ed.off < at {
			continue // overlapping edits: Kamailio refuses them too
		}
		b.WriteString(body[at:ed.off])
		b.WriteString(ed.text)
		at = ed.off + ed.n
	}
	b.WriteString(body[at:])
	return b.String()
}

func (m *Module) fixNatedSDP(e *ksr.Env, level int) int { return m.fixNatedSDPIP(e, level, "") }

// fixNatedSDPIP is ki_fix_nated_sdp_ip.
func (m *Module) fixNatedSDPIP(e *ksr.Env, level int, ip string) int {
	body, trailer, ok := sdpBody(e)
	if !ok {
		e.D.Log.Error("nathelper: cannot extract body from msg!")
		return -1
	}
	var eds []edit
	if level&addADirection != 0 {
		for i := strings.Index(body, "\r\nm="); i >= 0; {
			i += 4
			next := strings.Index(body[i:], "\r\nm=")
			end := len(body)
			if next >= 0 {
				end = i + next
			}
			eds = append(eds, edit{off: end, text: "\r\na=direction:active"})
			if next < 0 {
				break
			}
			i = end
		}
	}
	if level&addANortpproxy != 0 && m.set.NortpproxyStr != "" {
		eds = append(eds, edit{off: len(body), text: "\r\n" + strings.TrimRight(m.set.NortpproxyStr, "\r\n")})
	}
	count := 0
	if level&(fixMedIP|fixOrgIP) != 0 {
		newIP := ip
		if newIP == "" {
			src, _, ok := source(e)
			if !ok {
				return -1
			}
			newIP = ipText(src.Addr())
		}
		lines := []struct {
			prefix  string
			canOmit bool
			on      bool
		}{{"a=rtcp", true, true}, {"c=", false, level&fixMedIP != 0}, {"o=", false, level&fixOrgIP != 0}}
		for _, l := range lines {
			if !l.on {
				continue
			}
			n, more, ok := m.replaceSDPIP(body, l.prefix, newIP, l.canOmit)
			eds = append(eds, more...)
			if !ok {
				// the changes made before stay, as Kamailio's lumps do
				e.D.Log.Error("nathelper: no `IP[4|6]' in SDP field, or mismatching address families", "field", l.prefix)
				setBody(e, body, trailer, eds)
				return -1
			}
			count += n
		}
	}
	setBody(e, body, trailer, eds)
	if count > 0 {
		return 1
	}
	return 2
}

// setBody applies eds to the body.
func setBody(e *ksr.Env, body, trailer string, eds []edit) {
	if len(eds) == 0 {
		return
	}
	out := applyEdits(body, eds) + trailer
	if msg, ok := e.Msg.SIP().(interface{ SetBody([]byte) }); ok {
		msg.SetBody([]byte(out))
	}
}

// replaceSDPIP is replace_sdp_ip over every line starting with prefix:
// the edits replacing their address with newIP (and, with
// append_sdp_oldmediaip, the a=oldmediaip lines at the body's end), the
// number of addresses changed; ok is false for a line without an address
// that may not be omitted, or lines of different address families (with
// the edits of the lines before it, which Kamailio keeps).
func (m *Module) replaceSDPIP(body, prefix, newIP string, canOmit bool) (count int, eds []edit, ok bool) {
	pf1 := 0
	for from := 0; from < len(body); {
		i := findLine(body, prefix, from)
		if i < 0 {
			break
		}
		ipOff, ipLen, pf := mediaIP(body, i+len(prefix))
		if ipOff < 0 {
			if canOmit {
				from = i + len(prefix)
				continue
			}
			return count, eds, false
		}
		if pf1 == 0 {
			pf1 = pf
		} else if pf != pf1 {
			return count, eds, false
		}
		from = ipOff + ipLen
		old := body[ipOff : ipOff+ipLen]
		if isNullAddr(old, pf) || old == newIP {
			continue
		}
		if m.set.AppendSDPOldMediaIP {
			a := "\r\na=oldmediaip:"
			if pf == 6 {
				a = "\r\na=oldmediaip6:"
			}
			eds = append(eds, edit{off: len(body), text: a + old})
		}
		eds = append(eds, edit{off: ipOff, n: ipLen, text: newIP})
		count++
	}
	return count, eds, true
}

// findLine is the first prefix at a line's start at or after from.
func findLine(body, prefix string, from int) int {
	for from < len(body) {
		j := strings.Index(body[from:], prefix)
		if j < 0 {
			return -1
		}
		at := from + j
		if at == 0 || body[at-1] == '\n' || body[at-1] == '\r' {
			return at
		}
		from = at + len(prefix)
	}
	return -1
}

// mediaIP is nh_extract_mediaip past the line's prefix: the token after
// IP4 or IP6, its offset and length, and the family; -1 when there is
// none.
func mediaIP(body string, at int) (off, n, pf int) {
	end := at
	for end < len(body) && body[end] != '\n' {
		end++
	}
	nextIsIP := 0
	for p := at; p < end; {
		for p < end && isSpace(body[p]) {
			p++
		}
		q := p
		for q < end && !isSpace(body[q]) {
			q++
		}
		if q == p {
			break
		}
		tok := body[p:q]
		if nextIsIP == 1 {
			return p, q - p, pf
		}
		if len(tok) == 3 && tok[:2] == "IP" {
			switch tok[2] {
			case '4':
				nextIsIP, pf = 1, 4
			case '6':
				nextIsIP, pf = 1, 6
			}
		}
		p = q
	}
	return -1, 0, 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
