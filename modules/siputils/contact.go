package siputils

import (
	"encoding/base64"
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
	hs := ksr.Headers(m)
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

// b64Encode is Kamailio's base64url_enc with the padding dropped, as
// contact_param_encode does.
func b64Encode(s string) string {
	return strings.TrimRight(base64.URLEncoding.EncodeToString([]byte(s)), "=")
}

// b64Decode pads to a multiple of 4 and decodes base64url; false when the
// text does not decode (or decodes to nothing).
func b64Decode(s string) (string, bool) {
	if n := len(s) % 4; n != 0 {
		s += strings.Repeat("=", 4-n)
	}
	b, err := base64.URLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}

// uriParamOf returns the value of the URI parameter name (any case) of the
// URI text s, and whether it has one.
func uriParamOf(s, name string) (string, bool) {
	u, ok := ParseURI(s)
	if !ok {
		return "", false
	}
	return u.Param(name)
}

// contactParamEncode is ki_contact_param_encode: each contact URI longer
// than 4 characters becomes saddr;nparam=<the URI in base64url, unpadded>.
// No Contact is not an error (1).
func contactParamEncode(e *ksr.Env, nparam, saddr string) int {
	if !hasContact(e) {
		return 1
	}
	return rewriteContacts(e, func(u string) (string, int) {
		if len(u) <= 4 {
			return u, 0
		}
		return saddr + ";" + nparam + "=" + b64Encode(u), 0
	})
}

// contactParamDecode is ki_contact_param_decode: a contact URI with the
// parameter nparam (any case, with a value) is replaced by that value
// decoded; -1 when it does not decode.
func contactParamDecode(e *ksr.Env, nparam string) int {
	if !hasContact(e) {
		return 1
	}
	rc := rewriteContacts(e, func(u string) (string, int) {
		v, ok := uriParamOf(u, nparam)
		if !ok || v == "" {
			return u, 0
		}
		d, ok := b64Decode(v)
		if !ok {
			return "", -1
		}
		return d, 0
	})
	if rc == -2 { // the decoded text is no URI: Kamailio patches it in anyway
		return 1
	}
	return rc
}

// contactParamDecodeRURI is ki_contact_param_decode_ruri: the same for the
// R-URI (1 when it has no such parameter).
func contactParamDecodeRURI(e *ksr.Env, nparam string) int {
	u, s, ok := ruriParsed(e)
	if !ok {
		return -1
	}
	v, ok := u.Param(nparam)
	if !ok || v == "" {
		return 1
	}
	d, ok := b64Decode(v)
	if !ok {
		e.D.Log.Error("failed to decode uri", "uri", s)
		return -1
	}
	if !e.SetPVString("$ru", d) {
		return -1
	}
	return 1
}

// contactParamRm is ki_contact_param_rm: the parameter nparam (any case)
// goes from every contact URI; 1 in any case.
func contactParamRm(e *ksr.Env, nparam string) int {
	if !hasContact(e) {
		return 1
	}
	rewriteContacts(e, func(s string) (string, int) {
		u, ok := ParseURI(s)
		if !ok {
			return "", -1
		}
		for _, p := range splitParams(u.Params) {
			if strings.EqualFold(p.name, nparam) {
				base := strings.LastIndex(s, ";"+u.Params) + 1
				return s[:base+p.start-1] + s[base+p.end:], 0
			}
		}
		return s, 0
	})
	return 1
}

func hasContact(e *ksr.Env) bool {
	m := e.Msg.SIP()
	return m != nil && len(m.GetHeaders("contact")) > 0
}
