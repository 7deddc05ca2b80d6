package registrar

import (
	"strings"

	"kemi/ksr"
	"kemi/modules/usrloc"
)

func (m *Module) lookup(e *ksr.Env, table string) int {
	ru, ok := e.PVString("$ru")
	if !ok {
		return -3
	}
	return m.doLookup(e, table, ru)
}

func (m *Module) lookupURI(e *ksr.Env, table, uri string) int { return m.doLookup(e, table, uri) }

// doLookup is lookup_helper in its default mode: the R-URI becomes the
// best contact of uri's AOR; its Path's first hop, else its received
// address, becomes $du; the contact's cflags become branch flags.
// 1 found, -1 no valid contact, -3 error.
func (m *Module) doLookup(e *ksr.Env, table, uri string) int {
	if e.Msg == nil || e.Msg.Req == nil {
		return -3
	}
	d := m.domain(e, table)
	if d == nil {
		return -1 // regapi_lookup: usrloc domain not found
	}
	aor, rerrno := m.aor(uri)
	if rerrno != 0 {
		return -3
	}
	cs := m.ul.Contacts(d, aor)
	if len(cs) == 0 {
		return -1
	}
	c := cs[0]
	if !e.SetPVString("$ru", c.Contact) {
		return -3
	}
	switch {
	case c.Path != "":
		hop := strings.TrimSpace(splitList(c.Path)[0])
		hop = strings.TrimSuffix(strings.TrimPrefix(hop, "<"), ">")
		if i := strings.IndexByte(hop, '>'); i >= 0 {
			hop = hop[:i]
		}
		e.SetPVString("$du", hop)
	case c.Received != "":
		e.SetPVString("$du", c.Received)
	}
	e.Msg.BFlags |= uint32(c.CFlags)
	return 1
}

func (m *Module) registered(e *ksr.Env, table string) int {
	ru, ok := e.PVString("$ru")
	if !ok {
		return -1
	}
	return m.registeredURI(e, table, ru)
}

// registeredURI is 1 when uri's AOR has a valid contact, else -1.
func (m *Module) registeredURI(e *ksr.Env, table, uri string) int {
	aor, rerrno := m.aor(uri)
	if rerrno != 0 {
		return -1
	}
	d := m.domain(e, table)
	if d == nil || len(m.ul.Contacts(d, aor)) == 0 {
		return -1
	}
	return 1
}

// unregister removes every contact of uri's AOR: 1 done, -1 bad uri,
// -2 usrloc error.
func (m *Module) unregister(e *ksr.Env, table, uri string) int {
	if uri == "" {
		return -1
	}
	d := m.domain(e, table)
	if d == nil {
		return -1
	}
	aor, rerrno := m.aor(uri)
	if rerrno != 0 {
		return -1
	}
	if err := m.ul.Tx(d, aor, func([]*usrloc.Contact) ([]*usrloc.Contact, error) { return nil, nil }); err != nil {
		return -2
	}
	return 1
}
