package siputils

import (
	"strconv"
	"strings"
)

// URI types of Kamailio's parse_uri.
const (
	sipURI = iota + 1
	sipsURI
	telURI
	urnURI
)

// URI is a URI split the way Kamailio's parse_uri splits it: the parts
// are kept as written (no unescaping, no normalisation), so comparisons
// can follow Kamailio's byte by byte.
type URI struct {
	Type    int
	User    string
	Passwd  string
	Host    string // IPv6 references keep their brackets
	Port    string // as written, "" when absent
	PortNo  int
	Params  string // after the first ';' of the host part, up to '?'
	Headers string // after '?'
}

// Param returns the value of the URI parameter name (case-insensitive,
// as Kamailio's known parameters user, ttl, method, maddr, transport, gr)
// and whether it is present.
func (u *URI) Param(name string) (string, bool) {
	for _, p := range splitParams(u.Params) {
		if strings.EqualFold(p.name, name) {
			return p.value, true
		}
	}
	return "", false
}

// ParseURI parses s as Kamailio's parse_uri does, in its essentials: the
// schemes sip, sips, tel and urn; at least 5 characters; a sip or sips URI
// needs a host; a port is at most 5 digits and below 65536.
func ParseURI(s string) (*URI, bool) {
	if len(s) < 5 {
		return nil, false
	}
	u := &URI{}
	var rest string
	switch l := strings.ToLower(s[:5]); {
	case strings.HasPrefix(l, "sip:"):
		u.Type, rest = sipURI, s[4:]
	case l == "sips:":
		u.Type, rest = sipsURI, s[5:]
	case strings.HasPrefix(l, "tel:"):
		u.Type, rest = telURI, s[4:]
	case strings.HasPrefix(l, "urn:"):
		u.Type, rest = urnURI, s[4:]
	default:
		return nil, false
	}
	if strings.ContainsAny(rest, " \t\r\n") {
		return nil, false
	}
	if i := strings.IndexByte(rest, '?'); i >= 0 {
		rest, u.Headers = rest[:i], rest[i+1:]
	}
	if u.Type == telURI || u.Type == urnURI {
		// the number in the user, no host (parse_uri moves it)
		u.User = rest
		if i := strings.IndexByte(rest, ';'); i >= 0 {
			u.User, u.Params = rest[:i], rest[i+1:]
		}
		return u, u.User != ""
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		ui := rest[:i]
		rest = rest[i+1:]
		u.User = ui
		if j := strings.IndexByte(ui, ':'); j >= 0 {
			u.User, u.Passwd = ui[:j], ui[j+1:]
		}
	}
	hp := rest
	if i := strings.IndexByte(rest, ';'); i >= 0 {
		hp, u.Params = rest[:i], rest[i+1:]
	}
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return nil, false
		}
		u.Host, hp = hp[:end+1], hp[end+1:]
		if hp != "" {
			if hp[0] != ':' {
				return nil, false
			}
			u.Port = hp[1:]
		}
	} else if i := strings.IndexByte(hp, ':'); i >= 0 {
		u.Host, u.Port = hp[:i], hp[i+1:]
	} else {
		u.Host = hp
	}
	if u.Host == "" {
		return nil, false
	}
	if u.Port != "" {
		n, err := strconv.Atoi(u.Port)
		if err != nil || len(u.Port) > 5 || n < 0 || n > 65535 || strings.IndexFunc(u.Port, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
			return nil, false
		}
		u.PortNo = n
	}
	return u, true
}

type param struct {
	name, value string
	start, end  int // the parameter's bytes in the params string
}

// splitParams is parse_params with CLASS_ANY: ';'-separated name[=value],
// whitespace trimmed, a quoted value unquoted.
func splitParams(s string) []param {
	var out []param
	off := 0
	for off <= len(s) && s != "" {
		end := strings.IndexByte(s[off:], ';')
		if end < 0 {
			end = len(s)
		} else {
			end += off
		}
		item := s[off:end]
		p := param{start: off, end: end}
		if eq := strings.IndexByte(item, '='); eq >= 0 {
			p.name = strings.TrimSpace(item[:eq])
			p.value = strings.Trim(strings.TrimSpace(item[eq+1:]), "\"")
		} else {
			p.name = strings.TrimSpace(item)
		}
		if p.name != "" {
			out = append(out, p)
		}
		off = end + 1
	}
	return out
}

// cmpStr is Kamailio's cmp_str (strncmp over the shorter length, then the
// lengths); ci makes it cmpi_str.
func cmpStr(a, b string, ci bool) int {
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	}
	if ci {
		a, b = strings.ToLower(a), strings.ToLower(b)
	}
	return strings.Compare(a, b)
}

// cmpURI is cmp_uri_mode with mode 0 (RFC 3261 19.1.4): 0 match, >0 no
// match, <0 error.
func cmpURI(u1, u2 *URI) int {
	if u1.Type != u2.Type || len(u1.User) != len(u2.User) || len(u1.Host) != len(u2.Host) ||
		len(u1.Port) != len(u2.Port) || len(u1.Passwd) != len(u2.Passwd) {
		return 1
	}
	if cmpStr(u1.User, u2.User, false) != 0 || cmpStr(u1.Port, u2.Port, false) != 0 ||
		cmpStr(u1.Passwd, u2.Passwd, false) != 0 || cmpStr(u1.Host, u2.Host, true) != 0 {
		return 1
	}
	if u1.Params == "" && u2.Params == "" {
		return 0
	}
	special := func(u *URI) bool {
		for _, n := range []string{"user", "ttl", "method", "maddr"} {
			if v, ok := u.Param(n); ok && v != "" {
				return true
			}
		}
		return false
	}
	if u1.Params == "" && special(u2) || u2.Params == "" && special(u1) {
		return 1
	}
	// cmp_str_params: a parameter both have must have the same value.
	for _, p1 := range splitParams(u1.Params) {
		for _, p2 := range splitParams(u2.Params) {
			if strings.EqualFold(p1.name, p2.name) && !strings.EqualFold(p1.value, p2.value) {
				return 1
			}
		}
	}
	return 0
}

// cmpAoR is cmp_aor: user, host (any case) and port, a missing port
// matching 5060 only. As in Kamailio, two different explicit ports do not
// make a difference ("5060" and "5070" match).
func cmpAoR(u1, u2 *URI) int {
	if len(u1.User) != len(u2.User) || len(u1.Host) != len(u2.Host) {
		return 1
	}
	if cmpStr(u1.User, u2.User, false) != 0 {
		return 1
	}
	if cmpStr(u1.Port, u2.Port, false) != 0 {
		if u1.Port == "" && u2.PortNo != 5060 {
			return 1
		}
		if u2.Port == "" && u1.PortNo != 5060 {
			return 1
		}
	}
	if cmpStr(u1.Host, u2.Host, true) != 0 {
		return 1
	}
	return 0
}
