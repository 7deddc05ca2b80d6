package usrloc

import (
	"context"
	"encoding/json"
	"hash/crc32"
	"strings"

	"kemi/jsonrpc"
)

// usrloc RPC commands with the reply shapes and fault messages of
// ul_rpc.c at 5.6.3. Keys are ordered as Kamailio adds them (a slice of
// key/value pairs marshalled in order).

// obj is a JSON object whose keys keep their order.
type obj []kv

type kv struct {
	K string
	V any
}

// MarshalJSON writes the pairs in order.
func (o obj) MarshalJSON() ([]byte, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, p := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := jsonMarshal(p.K)
		v, err := jsonMarshal(p.V)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return []byte(b.String()), nil
}

func fault(msg string) error { return &jsonrpc.Fault{Code: 500, Message: msg} }

// contactInfo is rpc_dump_contact's struct.
func (m *Module) contactInfo(c Contact, now int64) obj {
	var exp any = int(c.Expires - now)
	if c.Expires == 0 {
		exp = "permanent"
	} else if c.Expires <= now {
		exp = "expired"
	}
	q := -1.0
	if c.Q >= 0 {
		q = float64(c.Q) / 1000
	}
	state := "CS_NEW"
	if m.set.DBMode == 0 {
		state = "CS_NEW"
	} else if c.stored && !c.dirty {
		state = "CS_SYNC"
	} else if c.stored {
		state = "CS_DIRTY"
	}
	socket := c.Socket
	if socket == "" {
		socket = "[not set]"
	}
	or := func(s string) string {
		if s == "" {
			return "[not set]"
		}
		return s
	}
	methods := uint32(0xffffffff)
	if c.Methods >= 0 {
		methods = uint32(c.Methods)
	}
	return obj{{"Contact", obj{
		{"Address", c.Contact}, {"Expires", exp}, {"Q", q}, {"Call-ID", c.CallID}, {"CSeq", c.CSeq},
		{"User-Agent", or(c.UserAgent)}, {"Received", or(c.Received)}, {"Path", or(c.Path)}, {"State", state},
		{"Flags", uint32(c.Flags)}, {"CFlags", uint32(c.CFlags)}, {"Socket", socket}, {"Methods", methods},
		{"Ruid", c.Ruid}, {"Instance", or(c.Instance)}, {"Reg-Id", c.RegID}, {"Server-Id", 0}, {"Tcpconn-Id", -1},
		{"Keepalive", 0}, {"Last-Keepalive", int(c.Modified)}, {"KA-Roundtrip", 0}, {"Last-Modified", int(c.Modified)},
	}}}
}

// lookupArgs reads "SS" (table, AOR) and finds the domain.
func (m *Module) lookupArgs(p jsonrpc.Params) (*Domain, string, error) {
	table, ok1 := p.String(0)
	aor, ok2 := p.String(1)
	if !ok1 || !ok2 {
		return nil, "", fault("Not enough parameters (table and AOR to lookup)")
	}
	d := (*m.domains.Load())[table]
	if d == nil {
		return nil, "", fault("Domain table not found")
	}
	if m.set.UseDomain && !strings.Contains(aor, "@") {
		return nil, "", fault("Domain missing in AOR")
	}
	return d, aor, nil
}

// RPC returns ul.dump, ul.lookup, ul.rm and ul.flush.
func (m *Module) RPC() []jsonrpc.Method {
	return []jsonrpc.Method{
		{Name: "ul.dump", Doc: "Dump user location tables", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			brief, _ := p.String(0)
			now := m.Now()
			doms := []any{}
			for _, d := range m.Domains() {
				aors := []any{}
				for _, aor := range m.AORs(d) {
					if brief == "brief" {
						aors = append(aors, obj{{"AoR", aor}})
						continue
					}
					cs := []any{}
					for _, c := range m.Contacts(d, aor) {
						cs = append(cs, m.contactInfo(c, now))
					}
					aors = append(aors, obj{{"Info", obj{{"AoR", aor}, {"HashID", crc32.ChecksumIEEE([]byte(aor))}, {"Contacts", cs}}}})
				}
				doms = append(doms, obj{{"Domain", obj{{"Domain", d.Name}, {"Size", 1024}, {"AoRs", aors},
					{"Stats", obj{{"Records", len(aors)}, {"Max-Slots", 1}}}}}})
			}
			return obj{{"Domains", doms}}, nil
		}},
		{Name: "ul.lookup", Doc: "Lookup one AOR in the usrloc location table", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			d, aor, err := m.lookupArgs(p)
			if err != nil {
				return nil, err
			}
			cs := m.Contacts(d, aor)
			if len(cs) == 0 {
				return nil, fault("AOR not found in location table")
			}
			now := m.Now()
			out := []any{}
			for _, c := range cs {
				out = append(out, m.contactInfo(c, now))
			}
			return obj{{"AoR", aor}, {"Contacts", out}}, nil
		}},
		{Name: "ul.rm", Doc: "Delete a address of record including its contacts", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			d, aor, err := m.lookupArgs(p)
			if err != nil {
				return nil, err
			}
			if err := m.Tx(d, aor, func([]*Contact) ([]*Contact, error) { return nil, nil }); err != nil {
				return nil, fault("Failed to delete AOR")
			}
			return nil, nil
		}},
		{Name: "ul.rm_contact", Doc: "Delete a contact from an AOR record", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			contact, ok := p.String(2)
			if !ok {
				return nil, fault("Not enough parameters (table, AOR and contact)")
			}
			d, aor, err := m.lookupArgs(p)
			if err != nil {
				return nil, err
			}
			found, missing := false, false
			err = m.Tx(d, aor, func(cs []*Contact) ([]*Contact, error) {
				if len(cs) == 0 {
					missing = true
					return cs, nil
				}
				out := cs[:0:0]
				for _, c := range cs {
					if c.Contact == contact {
						found = true
						continue
					}
					out = append(out, c)
				}
				return out, nil
			})
			switch {
			case err != nil:
				return nil, fault("Internal error (can't delete contact)")
			case missing:
				return nil, &jsonrpc.Fault{Code: 404, Message: "AOR not found"}
			case !found:
				return nil, &jsonrpc.Fault{Code: 404, Message: "Contact not found"}
			}
			return nil, nil
		}},
		{Name: "ul.add", Doc: "Add a new contact for an address of record", Handler: m.rpcAdd},
		{Name: "ul.flush", Doc: "Flush the usrloc memory cache to DB", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			return nil, m.Flush()
		}},
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// rpcAdd is ul.add: table, AOR, contact, expires (0 permanent), q, path,
// flags, cflags, methods[, received[, socket]] ("SSSdfSuuu*SS"); the
// contact gets the RPC's Call-ID, CSeq 1 and User-Agent, as Kamailio's.
func (m *Module) rpcAdd(ctx context.Context, p jsonrpc.Params) (any, error) {
	bad := fault("Not enough parameters or wrong format")
	var str [4]string
	for i, at := range []int{0, 1, 2, 5} {
		v, ok := p.String(at)
		if !ok {
			return nil, bad
		}
		str[i] = v
	}
	var num [5]float64
	for i, at := range []int{3, 4, 6, 7, 8} {
		if err := json.Unmarshal(p.Raw(at), &num[i]); err != nil {
			return nil, bad
		}
	}
	received, _ := p.String(9)
	socket, _ := p.String(10)
	d, aor, err := m.lookupArgs(p)
	if err != nil {
		return nil, err
	}
	now := m.Now()
	exp := int64(num[0])
	if exp != 0 {
		exp += now
	}
	q := int(num[1]*1000 + 0.5)
	if num[1] < 0 {
		q = -1
	}
	err = m.Tx(d, aor, func(cs []*Contact) ([]*Contact, error) {
		var c *Contact
		for i, o := range cs {
			if o.Contact == str[2] {
				cp := *o
				c, cs[i] = &cp, &cp
				break
			}
		}
		if c == nil {
			c = &Contact{Ruid: m.NewRuid(), AOR: aor, Contact: str[2]}
			cs = append(cs, c)
		}
		c.Expires, c.Q, c.Path, c.Flags, c.CFlags, c.Methods = exp, q, str[3], int(num[2]), int(num[3]), int64(num[4])
		c.Received, c.Socket, c.CallID, c.CSeq, c.UserAgent, c.Modified = received, socket, rpcCallID, 1, rpcUA, now
		return cs, nil
	})
	if err != nil {
		return nil, fault("Can't insert contact")
	}
	return nil, nil
}

// The Call-ID and User-Agent of contacts ul.add makes (ul_rpc.c).
const (
	rpcCallID = "dfjrewr12386fd6-343@kamailio.rpc"
	rpcUA     = "kamailio SIP Router - RPC Server"
)
