package siputils

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
)

// encodeURI is contact_ops.c's encode_uri: sip:user:pass@host:port;
// transport=proto becomes sip:PREFIX*user*pass*host*port*proto@ADDR (with
// sep for *). As in Kamailio, the scheme is taken as the three characters
// before the first ':' and the URI's other parameters are dropped. It
// returns Kamailio's error codes (-1, -2x, -3x) on failure.
func encodeURI(uri, prefix, addr string, sep byte) (string, int) {
	if len(uri) <= 1 {
		return "", -1
	}
	colon := strings.IndexByte(uri, ':')
	switch {
	case colon < 0:
		return "", -25
	case colon < 3:
		return "", -26
	}
	start := colon - 3
	u, ok := ParseURI(uri[start:])
	if !ok {
		return "", -31 // parse_uri's -1, minus 10, minus 20
	}
	transport, _ := u.Param("transport")
	s := string(sep)
	return uri[:start+4] + prefix + s + u.User + s + u.Passwd + s + u.Host + s + u.Port + s + transport + "@" + addr, 0
}

// decodeURI is contact_ops.c's decode_uri, encodeURI's inverse: the
// fields between the separators up to '@' become user:pass@host:port;
// transport=proto; what follows the public address from its first ';' or
// '>' is kept.
func decodeURI(uri string, sep byte) (string, int) {
	if uri == "" {
		return "", -1
	}
	colon := strings.IndexByte(uri, ':')
	if colon < 0 {
		return "", -22
	}
	first := colon + 1
	at := strings.IndexByte(uri[first:], '@')
	if at < 0 {
		return "", -23
	}
	at += first
	var fields []string // user, pass, ip, port; the prefix is skipped
	last := first
	for i := first; i < at; i++ {
		if uri[i] != sep {
			continue
		}
		if len(fields) == 5 {
			return "", -24 // more separators than fields
		}
		fields = append(fields, uri[last:i])
		last = i + 1
	}
	if len(fields) != 5 {
		return "", -26
	}
	user, pass, ip, port, proto := fields[1], fields[2], fields[3], fields[4], uri[last:at]
	second := len(uri)
	if i := strings.IndexAny(uri[at:], ";>"); i >= 0 {
		second = at + i
	}
	switch {
	case ip == "":
		return "", -2
	case pass != "" && user == "":
		return "", -3
	}
	var b strings.Builder
	b.WriteString(uri[:first])
	if user != "" {
		b.WriteString(user)
		if pass != "" {
			b.WriteByte(':')
		} else {
			b.WriteByte('@')
		}
	}
	if pass != "" {
		b.WriteString(pass)
		b.WriteByte('@')
	}
	b.WriteString(ip)
	if port != "" {
		b.WriteString(":" + port)
	}
	if proto != "" {
		b.WriteString(";transport=" + proto)
	}
	b.WriteString(uri[second:])
	return b.String(), 0
}

// rewriteContacts applies f to every Contact URI (none for "*") and
// puts new Contact headers in their places (a clone of the message shares
// the old ones): Kamailio's patch of each contact's URI text. kemi changes
// the header itself, so $ct shows the new value at once (in Kamailio only
// the message sent on does).
func rewriteContacts(e *ksr.Env, f func(string) (string, int)) int {
	m := e.Msg.SIP()
	if m == nil {
		return -1
	}
	type slot struct {
		i int
		c *sip.ContactHeader
	}
	var found []slot
	hs := headersOf(m)
	for i, h := range hs {
		if c, ok := h.(*sip.ContactHeader); ok {
			found = append(found, slot{i, c})
		}
	}
	if len(found) == 0 {
		e.D.Log.Error("no Contact header present")
		return -1
	}
	news := make([]*sip.ContactHeader, 0, len(found))
	for _, sl := range found {
		if sl.c.Address.Wildcard {
			return 1
		}
		nu, rc := f(sl.c.Address.String())
		if rc != 0 {
			e.D.Log.Error("failed encoding or decoding contact", "uri", sl.c.Address.String(), "code", rc)
			return rc
		}
		c := &sip.ContactHeader{DisplayName: sl.c.DisplayName, Params: sl.c.Params.Clone()}
		if err := sip.ParseUri(nu, &c.Address); err != nil {
			e.D.Log.Error("lumping failed in mangling contact", "uri", nu)
			return -2
		}
		news = append(news, c)
	}
	for k, sl := range found {
		if k == 0 {
			replaceHeader(m, news[0]) // the first one: also the message's Contact()
		} else {
			hs[sl.i] = news[k]
		}
	}
	return 1
}

// headersOf returns the message's header list (sipgo's own slice).
func headersOf(m sip.Message) []sip.Header {
	switch x := m.(type) {
	case *sip.Request:
		return x.Headers()
	case *sip.Response:
		return x.Headers()
	}
	return nil
}

func replaceHeader(m sip.Message, h sip.Header) {
	switch x := m.(type) {
	case *sip.Request:
		x.ReplaceHeader(h)
	case *sip.Response:
		x.ReplaceHeader(h)
	}
}

func (m *Module) encodeContact(e *ksr.Env, prefix, addr string) int {
	return rewriteContacts(e, func(u string) (string, int) { return encodeURI(u, prefix, addr, m.separator) })
}

func (m *Module) decodeContactHeader(e *ksr.Env) int {
	return rewriteContacts(e, func(u string) (string, int) { return decodeURI(u, m.separator) })
}

// decodeContact is ki_decode_contact: the R-URI, decoded.
func (m *Module) decodeContact(e *ksr.Env) int {
	s, ok := ruri(e)
	if !ok {
		return -1
	}
	nu, rc := decodeURI(s, m.separator)
	if rc != 0 {
		e.D.Log.Error("failed decoding contact", "uri", s, "code", rc)
		return rc
	}
	if !e.SetPVString("$ru", nu) {
		return -1
	}
	return 1
}
