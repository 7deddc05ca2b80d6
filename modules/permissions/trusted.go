package permissions

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"kemi/kdb"
	"kemi/ksr"
)

// trustedEntry is one row of the trusted table (Kamailio's trusted_list).
type trustedEntry struct {
	src             string
	proto           string // lower case: any, udp, tcp, tls, sctp, ws, wss
	from, ruri, tag *string
	priority        int
}

// trusted is a loaded trusted table (db_mode 1): the rows of each source
// address, highest priority first, in load order within one priority (as
// hash_table_insert keeps a bucket), and the order the rows were loaded
// in for trustedDump.
type trusted struct {
	bySrc map[string][]*trustedEntry
	all   []*trustedEntry
}

// protoNum is Kamailio's number of a protocol a trusted row may name
// (PROTO_NONE for any), or -1 ("none" rows are skipped).
func protoNum(p string) int {
	if p == "any" {
		return 0
	}
	if n := ksr.ProtoNum(p); n > 0 {
		return n
	}
	return -1
}

// loadTrusted is reload_trusted_table: a row with a NULL address or
// protocol, or an unknown protocol, fails the whole load.
func (m *Module) loadTrusted() (*trusted, error) {
	db, err := kdb.Open(m.set.DBURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.TrustedRows(m.set.TrustedTable, m.trustedCols(), nil)
	if err != nil {
		return nil, err
	}
	t := &trusted{bySrc: map[string][]*trustedEntry{}}
	for i, r := range rows {
		if !r.Src.Valid || !r.Proto.Valid {
			return nil, fmt.Errorf("table %q row %d: NULL source or protocol (database problem)", m.set.TrustedTable, i+1)
		}
		p := strings.ToLower(r.Proto.String)
		if p == "none" {
			continue
		}
		if protoNum(p) < 0 {
			return nil, fmt.Errorf("table %q row %d: unknown protocol %q", m.set.TrustedTable, i+1, r.Proto.String)
		}
		e := &trustedEntry{src: r.Src.String, proto: p, from: str(r.From.String, r.From.Valid),
			ruri: str(r.Ruri.String, r.Ruri.Valid), tag: str(r.Tag.String, r.Tag.Valid), priority: int(r.Priority.Int64)}
		t.all = append(t.all, e)
		t.bySrc[e.src] = append(t.bySrc[e.src], e)
	}
	for _, es := range t.bySrc {
		sort.SliceStable(es, func(i, j int) bool { return es[i].priority > es[j].priority })
	}
	return t, nil
}

func str(s string, ok bool) *string {
	if !ok {
		return nil
	}
	return &s
}

func (m *Module) trustedCols() kdb.TrustedColumns {
	return kdb.TrustedColumns{Src: m.set.SourceCol, Proto: m.set.ProtoCol, From: m.set.FromCol, Ruri: m.set.RuriCol,
		Tag: m.set.Cols.Tag, Priority: m.set.PriorityCol}
}

// regexCache holds the patterns compiled so far, by their POSIX text.
type regexCache struct{ m sync.Map }

// match reports whether the POSIX basic regular expression pattern (as
// regcomp without REG_EXTENDED compiles it) is found in s; a pattern
// that does not compile matches nothing.
func (c *regexCache) match(pattern, s string) bool {
	if v, ok := c.m.Load(pattern); ok {
		re, _ := v.(*regexp.Regexp)
		return re != nil && re.MatchString(s)
	}
	re, err := regexp.Compile(breToRE2(pattern))
	if err != nil {
		re = nil
	}
	c.m.Store(pattern, re)
	return re != nil && re.MatchString(s)
}

// breToRE2 translates a POSIX basic regular expression (GNU flavour: \(
// \) \{ \} \| \+ \? are operators, ( ) { } | + ? are literals, * is
// literal first, ^ and $ anchor only at the ends) into Go's syntax.
func breToRE2(p string) string {
	var b strings.Builder
	atStart := true // where * is literal and ^ an anchor
	for i := 0; i < len(p); i++ {
		c := p[i]
		start := atStart
		atStart = false
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			n := p[i]
			switch n {
			case '(':
				b.WriteByte('(')
				atStart = true
			case ')', '{', '}', '|', '+', '?':
				b.WriteByte(n)
				atStart = n == '|'
			case '<', '>':
				b.WriteString(`\b`)
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		case c == '*' && start:
			b.WriteString(`\*`)
		case c == '^' && !start:
			b.WriteString(`\^`)
		case c == '^':
			b.WriteByte('^')
			atStart = true
		case c == '$' && i != len(p)-1 && !strings.HasPrefix(p[i+1:], `\)`) && !strings.HasPrefix(p[i+1:], `\|`):
			b.WriteString(`\$`)
		case strings.IndexByte("+?|(){}", c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '[':
			// A bracket expression as it is, a backslash in it literal.
			j := i + 1
			if j < len(p) && p[j] == '^' {
				j++
			}
			if j < len(p) && p[j] == ']' {
				j++
			}
			for j < len(p) && p[j] != ']' {
				if p[j] == '[' && j+1 < len(p) && (p[j+1] == ':' || p[j+1] == '.' || p[j+1] == '=') {
					if k := strings.Index(p[j+2:], string(p[j+1])+"]"); k >= 0 {
						j += k + 4
						continue
					}
				}
				j++
			}
			if j >= len(p) {
				b.WriteString(p[i:]) // unterminated: Go refuses it too
				return b.String()
			}
			b.WriteString(strings.ReplaceAll(p[i:j+1], `\`, `\\`))
			i = j
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// trustedMatch is match_hash_table (cached) or match_res (db_mode 0) on
// rows: the protocol, then the From URI and original R-URI patterns; a
// match sets the tag AVP. It returns 1 on the first match, or with
// peer_tag_mode 1 the number of matches; -1 when none.
func (m *Module) trustedMatch(e *ksr.Env, rows []*trustedEntry, proto, from, ruri string) int {
	n := 0
	for _, r := range rows {
		if r.proto != "any" && r.proto != proto {
			continue
		}
		if r.from != nil && !m.re.match(*r.from, from) {
			continue
		}
		if r.ruri != nil && !m.re.match(*r.ruri, ruri) {
			continue
		}
		if r.tag != nil && m.set.PeerTagAVP != "" {
			if m.tagged(e, &entry{tag: *r.tag, hasTag: true}) < 0 {
				return -1
			}
		}
		if m.set.PeerTagMode == 0 {
			return 1
		}
		n++
	}
	if n == 0 {
		return -1
	}
	return n
}

// allowTrusted is ki_allow_trusted: the source address, protocol, From
// URI and R-URI of the request against the trusted table.
func (m *Module) allowTrusted(e *ksr.Env) int {
	a, _, ok := source(e)
	req := e.Msg.Request()
	if !ok || req == nil {
		return -1
	}
	src := a.String()
	from, _ := e.PVString("$fu")
	// Kamailio matches the R-URI of the first line as received; kemi keeps
	// no copy of it and matches the current one (docs/permissions.md).
	ruri, _ := e.PVString("$ru")
	proto, _ := e.PVString("$pr")
	proto = strings.ToLower(proto)
	if m.set.DBMode == 1 {
		t := m.trusted.Load()
		if t == nil {
			return -1
		}
		return m.trustedMatch(e, t.bySrc[src], proto, from, ruri)
	}
	db := m.tdb.Load()
	if db == nil {
		m.log().Error("permissions: no connection to database")
		return -1
	}
	rows, err := db.TrustedRows(m.set.TrustedTable, m.trustedCols(), &src)
	if err != nil {
		m.log().Error("permissions: failed to query database", "error", err)
		return -1
	}
	var es []*trustedEntry
	for _, r := range rows {
		// match_res skips a row whose protocol is NULL.
		if !r.Proto.Valid {
			continue
		}
		es = append(es, &trustedEntry{proto: strings.ToLower(r.Proto.String), from: str(r.From.String, r.From.Valid),
			ruri: str(r.Ruri.String, r.Ruri.Valid), tag: str(r.Tag.String, r.Tag.Valid)})
	}
	return m.trustedMatch(e, es, proto, from, ruri)
}

// trustedDump is hash_table_rpc_print: one object whose keys repeat, the
// rows by hash bucket of their address, highest priority first.
func (t *trusted) dump() obj {
	out := obj{}
	for i := uint32(0); i < hashSize; i++ {
		var es []*trustedEntry
		for _, e := range t.all {
			if coreHash([]byte(e.src), hashSize) == i {
				es = append(es, e)
			}
		}
		sort.SliceStable(es, func(a, b int) bool { return es[a].priority > es[b].priority })
		for _, e := range es {
			or := func(p *string) string {
				if p == nil {
					return "NULL"
				}
				return *p
			}
			tag := "NULL"
			if e.tag != nil && *e.tag != "" {
				tag = *e.tag
			}
			out = append(out, kv{"table", i}, kv{"item", obj{{"ip", e.src}, {"proto", protoNum(e.proto)},
				{"pattern", or(e.from)}, {"ruri_pattern", or(e.ruri)}, {"tag", tag}, {"priority", e.priority}}})
		}
	}
	return out
}
