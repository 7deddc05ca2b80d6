package registrar

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/modules/usrloc"
)

// save flags (registrar.h).
const (
	flagMemOnly = 1 << 0 // REG_SAVE_MEM_FL: kemi writes the database anyway (see docs)
	flagNoReply = 1 << 1 // REG_SAVE_NORPL_FL
	flagReplace = 1 << 2 // REG_SAVE_REPL_FL: one contact per AOR
)

// contact is one Contact entry of a REGISTER.
type contact struct {
	uri    string
	params map[string]string
	star   bool
}

// splitList splits a header value on commas outside <> and quotes.
func splitList(v string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '"' && (i == 0 || v[i-1] != '\\'):
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			depth--
		case c == ',' && depth == 0:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}

// parseContact reads one Contact entry: name-addr or addr-spec, then its
// header parameters.
func parseContact(s string) (contact, bool) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return contact{star: true}, true
	}
	var uri, rest string
	if i := strings.IndexByte(s, '<'); i >= 0 {
		j := strings.IndexByte(s[i:], '>')
		if j < 0 {
			return contact{}, false
		}
		uri, rest = s[i+1:i+j], s[i+j+1:]
	} else {
		uri, rest, _ = strings.Cut(s, ";")
		rest = ";" + rest
	}
	c := contact{uri: strings.TrimSpace(uri), params: map[string]string{}}
	for _, p := range strings.Split(rest, ";") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		c.params[strings.ToLower(strings.TrimSpace(k))] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return c, c.uri != ""
}

func (m *Module) save(e *ksr.Env, table string, flags int) int { return m.doSave(e, table, flags, "") }

func (m *Module) saveURI(e *ksr.Env, table string, flags int, uri string) int {
	return m.doSave(e, table, flags, uri)
}

func (m *Module) doSave(e *ksr.Env, table string, flags int, uri string) int {
	msg := e.Msg
	if msg == nil || msg.Req == nil {
		e.D.Log.Error("registrar: save needs a request")
		return -1
	}
	req := msg.Req.Msg
	var shown []usrloc.Contact // the record's contacts an error reply lists
	fail := func(r rerr) int {
		if flags&flagNoReply == 0 && msg.Route == ksr.RouteRequest {
			m.reply(e, r, shown)
		}
		if r == errTooMany {
			return -2
		}
		return -1
	}
	// regapi_save: an unknown table is -1, without a reply.
	d := m.domain(e, table)
	if d == nil {
		return -1
	}
	if uri == "" {
		to := req.To()
		if to == nil {
			return fail(errParse)
		}
		uri = to.Address.String()
	}
	aor, rerrno := m.aor(uri)
	if rerrno != 0 {
		return fail(rerrno)
	}
	// Contacts, the star and each one's expires and q.
	var cs []contact
	star := false
	for _, h := range req.GetHeaders("Contact") {
		for _, part := range splitList(h.Value()) {
			c, ok := parseContact(part)
			if !ok {
				return fail(errParse)
			}
			star = star || c.star
			cs = append(cs, c)
		}
	}
	hdrExp, hasHdrExp := -1, false
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n >= 0 {
			hdrExp, hasHdrExp = n, true
		}
	}
	if star {
		if len(cs) > 1 {
			return fail(errStarCont)
		}
		if !hasHdrExp || hdrExp != 0 {
			return fail(errStarExp)
		}
	}
	now := m.ul.Now()
	expiresOf := func(c contact) (int64, rerr) {
		var n int
		if v, ok := c.params["expires"]; ok {
			x, err := strconv.Atoi(v)
			if err != nil || x < 0 {
				return 0, errInvExp
			}
			n = x
		} else if hasHdrExp {
			n = hdrExp
		} else {
			n = m.set.DefaultExpires
		}
		if n == 0 {
			return 0, 0
		}
		if n < m.set.MinExpires {
			n = m.set.MinExpires
		}
		if m.set.MaxExpires > 0 && n > m.set.MaxExpires {
			n = m.set.MaxExpires
		}
		return now + int64(n), 0
	}
	callID, cseq, ua := "", 0, ""
	if h := req.CallID(); h != nil {
		callID = h.Value()
	}
	if h := req.CSeq(); h != nil {
		cseq = int(h.SeqNo)
	}
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	if ua == "" {
		ua = "n/a" // Kamailio's no_ua
	}
	received := ""
	if m.set.ReceivedAVP != "" {
		received, _ = e.PVString(m.set.ReceivedAVP)
	}
	// the socket the REGISTER came in on (pack_ci's rcv.bind_address):
	// nathelper's keepalives leave from it
	socket := ""
	if ln := msg.Req.Listener; ln != nil {
		socket = strings.ToLower(ln.Proto) + ":" + ln.Addr.String()
	}
	path := ""
	if m.set.UsePath {
		var ps []string
		for _, h := range req.GetHeaders("Path") {
			ps = append(ps, h.Value())
		}
		path = strings.Join(ps, ",")
	}
	// The methods a contact accepts: its methods parameter, else the
	// REGISTER's Allow headers, else all (-1).
	allowed := int64(-1)
	if hs := req.GetHeaders("Allow"); len(hs) > 0 {
		var bits uint32
		for _, h := range hs {
			b, _ := ksr.MethodSet(h.Value())
			bits |= b
		}
		allowed = int64(bits)
	}
	qOver, hasQOver := m.qFor(e)
	ret := 1
	var failed rerr
	var final []usrloc.Contact
	err := m.ul.Tx(d, aor, func(old []*usrloc.Contact) ([]*usrloc.Contact, error) {
		if star {
			ret = 3
			return nil, nil
		}
		if len(cs) == 0 {
			ret = 4
			final = copyAll(old)
			return old, nil
		}
		out := old
		if flags&flagReplace != 0 {
			out = nil
		}
		existed := len(old) > 0
		if existed {
			// An error while updating an existing record replies with
			// its contacts (add_contacts' build_contact).
			shown = copyAll(old)
		}
		rc := 0
		for _, c := range cs {
			exp, bad := expiresOf(c)
			if bad != 0 {
				failed = bad
				return old, nil
			}
			q := m.set.DefaultQ
			if v, ok := qOver, hasQOver; ok { // set_q_override (save.c pack_ci)
				q = v
			} else if v, ok := c.params["q"]; ok {
				if q, ok = ksr.ParseQ(v); !ok {
					failed = errInvQ
					return old, nil
				}
			}
			methods := allowed
			if v, ok := c.params["methods"]; ok {
				b, ok := ksr.MethodSet(v)
				if !ok {
					failed = errParse
					return old, nil
				}
				methods = int64(b)
			}
			idx := -1
			for i, o := range out {
				if o.Contact == c.uri {
					idx = i
					break
				}
			}
			if idx < 0 {
				if exp == 0 {
					continue
				}
				if m.set.MaxContacts > 0 && len(out) >= m.set.MaxContacts {
					failed = errTooMany
					return old, nil
				}
				nc := &usrloc.Contact{Ruid: m.ul.NewRuid(), AOR: aor, Contact: c.uri, RegID: atoi(c.params["reg-id"]),
					Instance: c.params["+sip.instance"]}
				fill(nc, exp, q, callID, cseq, ua, received, path, now, msg.BFlags)
				nc.Methods = methods
				nc.Socket = socket
				out = append(out, nc)
				rc = 1
				continue
			}
			o := out[idx]
			if o.CallID == callID && cseq < o.CSeq {
				continue // an old CSeq: Kamailio skips it
			}
			if exp == 0 {
				out = append(out[:idx:idx], out[idx+1:]...)
				rc = 3
				continue
			}
			nc := *o
			fill(&nc, exp, q, callID, cseq, ua, received, path, now, msg.BFlags)
			nc.Methods = methods
			nc.Socket = socket
			out[idx] = &nc
			rc = 2
		}
		if existed && rc != 0 {
			ret = rc
		}
		final = copyAll(out)
		return out, nil
	})
	if failed != 0 {
		return fail(failed)
	}
	if err != nil {
		e.D.Log.Error("registrar: save failed", "aor", aor, "error", err)
		return fail(errUL)
	}
	if flags&flagNoReply == 0 && (msg.Route == ksr.RouteRequest || msg.Route == ksr.RouteFailure) {
		// The Path vector goes back when the UA supports path (path_mode 1, 2).
		if path != "" && m.set.PathMode != 0 && supports(req, "path") {
			msg.ReplyHdrs = append(msg.ReplyHdrs, sip.NewHeader("Path", path))
		}
		if m.reply(e, 0, sortByQ(final)) < 0 {
			return -1
		}
	}
	return ret
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

func fill(c *usrloc.Contact, exp int64, q int, callID string, cseq int, ua, received, path string, now int64, bflags uint32) {
	c.Expires, c.Q, c.CallID, c.CSeq, c.UserAgent, c.Received, c.Path, c.Modified = exp, q, callID, cseq, ua, received, path, now
	c.CFlags = int(bflags) // the branch flags (nat_bflag among them), as pack_ci takes them
}

func copyAll(cs []*usrloc.Contact) []usrloc.Contact {
	out := make([]usrloc.Contact, len(cs))
	for i, c := range cs {
		out[i] = *c
	}
	return out
}

// sortByQ orders contacts as usrloc keeps them: highest q first, stable.
func sortByQ(cs []usrloc.Contact) []usrloc.Contact {
	for i := 1; i < len(cs); i++ {
		for j := i; j > 0 && cs[j].Q > cs[j-1].Q; j-- {
			cs[j], cs[j-1] = cs[j-1], cs[j]
		}
	}
	return cs
}

// reply sends registrar's reply (reg_send_reply): 200 OK with the
// Contact list, or the error's code with P-Registrar-Error.
func (m *Module) reply(e *ksr.Env, r rerr, cs []usrloc.Contact) int {
	var hdrs []sip.Header
	{
		now := m.ul.Now()
		var parts []string
		for _, c := range cs {
			if !c.Valid(now) {
				continue
			}
			p := "<" + c.Contact + ">"
			if c.Q >= 0 {
				p += ";q=" + ksr.QString(c.Q)
			}
			p += ";expires=" + strconv.FormatInt(c.Expires-now, 10)
			if m.set.ReceivedParam != "" && c.Received != "" {
				p += ";" + m.set.ReceivedParam + "=\"" + c.Received + "\""
			}
			parts = append(parts, p)
		}
		if len(parts) > 0 {
			hdrs = append(hdrs, sip.NewHeader("Contact", strings.Join(parts, ", ")))
		}
	}
	if r == 0 {
		return e.ReplyWith(200, "OK", hdrs, false)
	}
	code, info := r.reply()
	hdrs = append(hdrs, sip.NewHeader("P-Registrar-Error", info))
	if code >= 500 && m.set.RetryAfter > 0 {
		hdrs = append(hdrs, sip.NewHeader("Retry-After", strconv.Itoa(m.set.RetryAfter)))
	}
	reason := "Bad Request"
	switch code {
	case 500:
		reason = "Server Internal Error"
	case 503:
		reason = "Service Unavailable"
	}
	return e.ReplyWith(code, reason, hdrs, false)
}

// supports reports whether the request's Supported headers list tag.
func supports(req *sip.Request, tag string) bool {
	for _, h := range req.GetHeaders("Supported") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}
