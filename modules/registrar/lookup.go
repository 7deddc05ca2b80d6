package registrar

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/modules/usrloc"
)

func (m *Module) lookup(e *ksr.Env, table string) int {
	// $ru (pvRURI): the R-URI as text, parsed again for its AOR as
	// Kamailio's lookup parses the R-URI's string.
	r := e.Msg.Request()
	if r == nil {
		return -3
	}
	return m.doLookup(e, table, uriString(&r.Recipient))
}

// uriString is u.String() in a buffer sized once.
func uriString(u *sip.Uri) string {
	var b strings.Builder
	b.Grow(48 + len(u.User) + len(u.Password) + len(u.Host))
	u.StringWrite(&b)
	return b.String()
}

func (m *Module) lookupURI(e *ksr.Env, table, uri string) int { return m.doLookup(e, table, uri) }

// doLookup is lookup_helper in its default mode: the R-URI becomes the
// first contact of uri's AOR (best q first) that accepts the request's
// method; its Path's first hop, else its received address, becomes $du
// (and the Path the path vector); the contact's cflags join branch 0's
// flags. With append_branches (the default) the other such contacts are
// added to the destination set, for t_relay to fork to in parallel.
// 1 found, -1 no valid contact, -2 contacts but none for the method,
// -3 error.
func (m *Module) doLookup(e *ksr.Env, table, uri string) int {
	return m.lookupHelper(e, table, uri, false)
}

// lookupToDset is lookup_to_dset(table, uri): lookup_helper in its
// destination-set mode for uri's AOR: the R-URI is kept
// and every contact for the method becomes a branch (when append_branches
// is on, as in Kamailio).
func (m *Module) lookupToDset(e *ksr.Env, table, uri string) int {
	return m.lookupHelper(e, table, uri, true) // "" has no AOR: -3, as regapi_lookup_to_dset
}

func (m *Module) lookupHelper(e *ksr.Env, table, uri string, toDset bool) int {
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
	cs := m.ul.Live(d, aor)
	method := string(e.Msg.Req.Msg.Method)
	ret, first := -1, -1
	for i := range cs {
		if m.allowed(method, cs[i]) {
			first = i
			break
		}
		ret = -2 // a contact that cannot handle the method
	}
	if first < 0 {
		return ret
	}
	rest := cs[first:]
	if !toDset {
		c := cs[first]
		if !e.SetPVString("$ru", c.Contact) {
			return -3
		}
		dst, path := hop(c)
		e.Msg.DstURI, e.Msg.PathVec = dst, path // reset_dst_uri, then Path or received
		e.Msg.BFlags |= uint32(c.CFlags)
		rest = cs[first+1:]
	}
	if !m.set.AppendBranches {
		return 1
	}
	for _, c := range rest {
		if !m.allowed(method, c) {
			continue
		}
		dst, path := hop(c)
		if !e.Msg.AppendBranch(ksr.Branch{URI: c.Contact, DstURI: dst, Path: path, Q: c.Q, Flags: uint32(c.CFlags),
			Instance: c.Instance, Ruid: c.Ruid, UserAgent: c.UserAgent}) {
			e.D.Log.Error("registrar: failed to append a branch: max nr of branches exceeded", "aor", aor)
		}
	}
	return 1
}

// allowed is allowed_method: with method_filtering, a contact whose
// methods (its methods parameter or REGISTER's Allow) lack the method's
// bit is skipped.
func (m *Module) allowed(method string, c *usrloc.Contact) bool {
	return !m.set.MethodFiltering || c.Methods < 0 || uint32(c.Methods)&ksr.MethodBit(method) != 0
}

// hop is where a request to c goes: the first hop of its Path (with the
// Path as the path vector), else its received address.
func hop(c *usrloc.Contact) (dst, path string) {
	if c.Path == "" {
		return c.Received, ""
	}
	h := strings.TrimSpace(splitList(c.Path)[0])
	h = strings.TrimSuffix(strings.TrimPrefix(h, "<"), ">")
	if i := strings.IndexByte(h, '>'); i >= 0 {
		h = h[:i]
	}
	return h, c.Path
}

// lookupBranches is lookup_branches(table): lookup of the R-URI, then of
// each branch of the destination set that is still a bare URI (no $du,
// path or flags), which takes the first found contact's attributes (and
// appends the AOR's other contacts). 1 when any lookup found a contact,
// else the last lookup's code.
func (m *Module) lookupBranches(e *ksr.Env, table string) int {
	msg := e.Msg
	if msg == nil || msg.Req == nil {
		return -3
	}
	start := len(msg.Branches)
	ret := m.lookup(e, table)
	if start == 0 {
		return ret
	}
	found := ret > 0
	r := msg.Req.Msg
	ruri, du, pv, bf := r.Recipient, msg.DstURI, msg.PathVec, msg.BFlags
	for i := 0; i < start; i++ {
		b := msg.Branches[i]
		if b.URI == "" || b.DstURI != "" || b.Path != "" || b.Flags != 0 {
			continue
		}
		msg.DstURI, msg.PathVec, msg.BFlags = "", "", 0
		if !e.SetPVString("$ru", b.URI) {
			ret = -3
			break
		}
		if ret = m.lookup(e, table); ret > 0 {
			found = true
			b.URI = r.Recipient.String()
			b.DstURI, b.Path, b.Flags = msg.DstURI, msg.PathVec, msg.BFlags
			msg.Branches[i] = b
		}
	}
	r.Recipient, msg.DstURI, msg.PathVec, msg.BFlags = ruri, du, pv, bf
	msg.RuriConsumed = false // ruri_mark_new
	if found {
		return 1
	}
	return ret
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
	if d == nil || len(m.ul.Live(d, aor)) == 0 {
		return -1
	}
	return 1
}

// registeredFlags is registered_flags: registered3 matches on Call-ID,
// received or Contact only with values from xavp_cfg, which kemi ignores,
// so it is registered_uri of uri, or of the R-URI (a reply's To URI) when
// uri is "".
func (m *Module) registeredFlags(e *ksr.Env, table, uri string, _ int) int {
	if uri == "" {
		if e.Msg != nil && e.Msg.Res != nil {
			if to := e.Msg.Res.Msg.To(); to != nil {
				uri = to.Address.String()
			}
		} else if ru, ok := e.PVString("$ru"); ok {
			uri = ru
		}
	}
	return m.registeredURI(e, table, uri)
}

func (m *Module) registeredAction(e *ksr.Env, table, uri string, flags, _ int) int {
	return m.registeredFlags(e, table, uri, flags)
}

// unregisterRuid is ki_unregister_ruid: the contact with that ruid in
// uri's AOR is removed. 1 done, -1 empty or bad uri or unknown table, -2
// usrloc error, -3 no such contact.
func (m *Module) unregisterRuid(e *ksr.Env, table, uri, ruid string) int {
	return m.unregisterWhere(e, table, uri, func(c *usrloc.Contact) bool { return c.Ruid == ruid }, -3)
}

// unregister removes every contact of uri's AOR: 1 done, -1 bad uri,
// -2 usrloc error.
func (m *Module) unregister(e *ksr.Env, table, uri string) int {
	return m.unregisterWhere(e, table, uri, func(*usrloc.Contact) bool { return true }, 1)
}

// unregisterWhere removes the contacts of uri's AOR that gone selects;
// none is notFound's result.
func (m *Module) unregisterWhere(e *ksr.Env, table, uri string, gone func(*usrloc.Contact) bool, notFound int) int {
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
	found := false
	err := m.ul.Tx(d, aor, func(old []*usrloc.Contact) ([]*usrloc.Contact, error) {
		var keep []*usrloc.Contact
		for _, c := range old {
			if gone(c) {
				found = true
				continue
			}
			keep = append(keep, c)
		}
		return keep, nil
	})
	switch {
	case err != nil:
		return -2
	case !found:
		return notFound
	}
	return 1
}
