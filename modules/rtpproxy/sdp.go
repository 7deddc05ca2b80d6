package rtpproxy

import (
	"sort"
	"strings"
)

// The SDP as rtpproxy's force_rtp_proxy sees it (Kamailio's parse_sdp):
// sessions starting at v=, the o= and session c= addresses, and per m=
// line its port, transport, payload types, own c= address and a=rtcp
// port. Offsets are into the body, for edits made as Kamailio's lumps.

type span struct{ off, n int }

func (s span) ok() bool { return s.n > 0 }

type addr struct {
	ip span // the address
	af span // the "4"/"6" of IP4/IP6
	v6 bool
}

type stream struct {
	port      span
	transport string
	payloads  string
	c         addr
	hasC      bool
	rtcp      span
}

type session struct {
	o, c       addr
	hasO, hasC bool
	streams    []stream
}

// parseSDP returns the body's sessions; nil when it has no m= line.
func parseSDP(body string) []session {
	var out []session
	var cur *session
	var st *stream
	for off := 0; off < len(body); {
		end := strings.IndexByte(body[off:], '\n')
		next := len(body)
		if end >= 0 {
			next = off + end + 1
			end = off + end
		} else {
			end = len(body)
		}
		line := strings.TrimRight(body[off:end], "\r")
		switch {
		case strings.HasPrefix(line, "v="):
			out = append(out, session{})
			cur, st = &out[len(out)-1], nil
		case cur == nil:
		case strings.HasPrefix(line, "o="):
			if a, ok := lineAddr(line, off, 5); ok && !cur.hasO {
				cur.o, cur.hasO = a, true
			}
		case strings.HasPrefix(line, "c="):
			a, ok := lineAddr(line, off, 2)
			if !ok {
				break
			}
			if st != nil {
				st.c, st.hasC = a, true
			} else if !cur.hasC {
				cur.c, cur.hasC = a, true
			}
		case strings.HasPrefix(line, "m="):
			f := fields(line[2:], off+2)
			if len(f) < 3 {
				break
			}
			s := stream{port: f[1], transport: line[f[2].off-off : f[2].off-off+f[2].n]}
			if len(f) > 3 {
				s.payloads = line[f[3].off-off:]
			}
			cur.streams = append(cur.streams, s)
			st = &cur.streams[len(cur.streams)-1]
		case strings.HasPrefix(line, "a=rtcp:") && st != nil:
			// the whole value, "port [IN IP4 addr]", as Kamailio's
			// extract_rtcp takes it: rewritten to the port alone
			v := strings.TrimRight(line[7:], " \t")
			lead := len(v) - len(strings.TrimLeft(v, " \t"))
			if len(v) > lead {
				st.rtcp = span{off + 7 + lead, len(v) - lead}
			}
		}
		off = next
	}
	n := 0
	for _, s := range out {
		n += len(s.streams)
	}
	if n == 0 {
		return nil
	}
	return out
}

// fields splits s (starting at body offset base) on spaces.
func fields(s string, base int) []span {
	var out []span
	for i := 0; i < len(s); {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
		j := i
		for j < len(s) && s[j] != ' ' && s[j] != '\t' {
			j++
		}
		if j > i {
			out = append(out, span{base + i, j - i})
		}
		i = j
	}
	return out
}

// lineAddr finds "IN IP4 addr" in an o= (the 4th field on) or c= line.
func lineAddr(line string, off, skip int) (addr, bool) {
	f := fields(line[2:], off+2)
	at := 0
	if skip == 5 {
		at = 3
	}
	if len(f) < at+3 {
		return addr{}, false
	}
	typ := line[f[at+1].off-off : f[at+1].off-off+f[at+1].n]
	if typ != "IP4" && typ != "IP6" {
		return addr{}, false
	}
	ip := f[at+2]
	if k := strings.IndexByte(line[ip.off-off:ip.off-off+ip.n], '/'); k >= 0 {
		ip.n = k
	}
	return addr{ip: ip, af: span{f[at+1].off + 2, 1}, v6: typ == "IP6"}, true
}

// edit is a replacement of body[off:off+n], as a Kamailio lump.
type edit struct {
	off, n int
	s      string
}

type edits []edit

func (es *edits) add(sp span, s string) { *es = append(*es, edit{sp.off, sp.n, s}) }

// apply returns body with the edits made (later overlapping edits of one
// place are dropped, as lumps deleting the same text).
func (es edits) apply(body string) string {
	sort.SliceStable(es, func(i, j int) bool { return es[i].off < es[j].off })
	var b strings.Builder
	at := 0
	for _, e := range es {
		if e.off < at {
			continue
		}
		b.WriteString(body[at:e.off])
		b.WriteString(e.s)
		at = e.off + e.n
	}
	b.WriteString(body[at:])
	return b.String()
}

// isNullAddr is isnulladdr: 0.0.0.0, or an IPv6 address of only 0 and ':'.
func isNullAddr(ip string, v6 bool) bool {
	if v6 {
		return strings.Trim(ip, "0:") == ""
	}
	return ip == "0.0.0.0"
}

// alterIP is alter_mediaip (without preserve): the address replaced by
// ip, its family too when it changes; nothing for a null address of the
// same family or the same address.
func alterIP(es *edits, body string, a addr, ip string, v6 bool) {
	old := body[a.ip.off : a.ip.off+a.ip.n]
	if a.v6 == v6 && isNullAddr(old, a.v6) {
		return
	}
	if old == ip {
		return
	}
	if a.v6 == v6 {
		es.add(a.ip, ip)
		return
	}
	fam := "4 "
	if v6 {
		fam = "6 "
	}
	es.add(span{a.af.off, a.ip.off + a.ip.n - a.af.off}, fam+ip)
}
