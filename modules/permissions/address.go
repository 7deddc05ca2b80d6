package permissions

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"kemi/kdb"
)

// hashSize is PERM_HASH_SIZE.
const hashSize = 128

// entry is one address row: an address (addr), a subnet (addr/mask) or a
// domain name (domain), as Kamailio's addr_list, subnet and
// domain_name_list.
type entry struct {
	grp    uint32
	addr   netip.Addr
	mask   int
	port   uint32
	tag    string
	hasTag bool
	domain string
}

// tables is one loaded address table, never changed once published
// (Kamailio's perm_addr_table/perm_subnet_table/perm_domain_table, swapped
// on reload).
type tables struct {
	addrs   [hashSize][]*entry // per hash bucket, newest first (insertion prepends)
	subnets []*entry           // ordered by group, in load order within one
	domains [hashSize][]*entry // per hash bucket, newest first
}

// coreHash is Kamailio's core_hash(s, 0, size) (core/hashes.h): the
// bytes are C chars, signed on x86, and sign-extended as there.
func coreHash(s []byte, size uint32) uint32 {
	var h, v uint32
	c := func(i int) uint32 { return uint32(int32(int8(s[i]))) }
	p := 0
	for ; p+4 <= len(s); p += 4 {
		v = uint32(int32(int8(s[p])))<<24 + c(p+1)<<16 + c(p+2)<<8 + c(p+3)
		h += v ^ (v >> 3)
	}
	v = 0
	for ; p < len(s); p++ {
		v <<= 8
		v += c(p)
	}
	h += v ^ (v >> 3)
	h = (h + (h >> 11)) + ((h >> 13) + (h >> 23))
	return h & (size - 1)
}

// addrHash is perm_hash over the first four bytes of the address.
func addrHash(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return coreHash(b[:], hashSize)
	}
	b := a.As16()
	return coreHash(b[:4], hashSize)
}

// parseIP is strtoipX: an IPv6 address when s starts with '[' or has a
// ':', else an IPv4 one, parsed as Kamailio's str2ip/str2ip6 do (an IPv4
// octet wraps at 256, an empty one is 0).
func parseIP(s string) (netip.Addr, bool) {
	if s == "" {
		return netip.Addr{}, false
	}
	if s[0] == '[' || strings.IndexByte(s, ':') >= 0 {
		return parseIP6(s)
	}
	var b [4]byte
	i := 0
	for j := 0; j < len(s); j++ {
		switch c := s[j]; {
		case c == '.':
			i++
			if i > 3 {
				return netip.Addr{}, false
			}
		case c >= '0' && c <= '9':
			b[i] = b[i]*10 + c - '0'
		default:
			return netip.Addr{}, false
		}
	}
	if i < 3 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(b), true
}

// parseIP6 is str2ip6buf.
func parseIP6(s string) (netip.Addr, bool) {
	if s[0] == '[' {
		if s[len(s)-1] != ']' || len(s) < 2 {
			return netip.Addr{}, false
		}
		s = s[1 : len(s)-1]
	}
	var start, end [8]uint16
	addr := &start
	i, idx1, colons := 0, 0, 0
	double := false
	for j := 0; j < len(s); j++ {
		c := s[j]
		if c == ':' {
			colons++
			if colons > 7 {
				return netip.Addr{}, false
			}
			if double {
				idx1 = i
				i = 0
				if addr == &end {
					return netip.Addr{}, false
				}
				addr = &end
			} else {
				double = true
				i++
			}
			continue
		}
		h := hexVal(c)
		if h < 0 {
			return netip.Addr{}, false
		}
		if i > 7 {
			return netip.Addr{}, false
		}
		addr[i] = addr[i]*16 + uint16(h)
		double = false
	}
	if !double {
		i++
	}
	if addr == &end {
		rest := 8 - i - idx1
		if rest < 0 {
			return netip.Addr{}, false
		}
		copy(start[idx1+rest:], end[:i])
	} else if colons < 7 {
		return netip.Addr{}, false
	}
	var b [16]byte
	for k, w := range start {
		b[2*k], b[2*k+1] = byte(w>>8), byte(w)
	}
	return netip.AddrFrom16(b), true
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// matchNet is ip_addr_match_net: a and n agree on the first mask bits.
func matchNet(a, n netip.Addr, mask int) bool {
	if a.Is4() != n.Is4() {
		return false
	}
	ab, nb := a.AsSlice(), n.AsSlice()
	if mask > len(ab)*8 {
		return false
	}
	full := mask / 8
	for i := 0; i < full; i++ {
		if ab[i] != nb[i] {
			return false
		}
	}
	bits := mask % 8
	if bits == 0 {
		return true
	}
	m := byte(0xff << (8 - bits))
	return ab[full]&m == nb[full]&m
}

// insert is reload_address_insert: an address with a full mask goes to
// the address table, another one to the subnet table, a name to the
// domain table. A mask out of range fails the whole reload, as in
// Kamailio; a subnet table already holding max entries drops the row
// with a log line (subnet_table_insert's "subnet table is full").
func (t *tables) insert(grp uint32, ip string, mask, port uint32, tag *string, max int, full func()) error {
	e := &entry{grp: grp, port: port}
	if tag != nil {
		e.tag, e.hasTag = *tag, true
	}
	a, ok := parseIP(ip)
	if !ok {
		e.domain = ip
		h := coreHash([]byte(ip), hashSize)
		t.domains[h] = append([]*entry{e}, t.domains[h]...)
		return nil
	}
	bits := uint32(32)
	if !a.Is4() {
		bits = 128
	}
	if int32(mask) < 0 || mask > bits {
		return fmt.Errorf("invalid mask %d for %s", int32(mask), ip)
	}
	if mask == 0 {
		mask = bits
	}
	e.addr, e.mask = a, int(mask)
	if mask == bits {
		h := addrHash(a)
		t.addrs[h] = append([]*entry{e}, t.addrs[h]...)
		return nil
	}
	if len(t.subnets) >= max {
		full()
		return nil
	}
	i := len(t.subnets)
	for i > 0 && t.subnets[i-1].grp > grp {
		i--
	}
	t.subnets = append(t.subnets, nil)
	copy(t.subnets[i+1:], t.subnets[i:])
	t.subnets[i] = e
	return nil
}

// load builds the tables from the database (reload_address_db_table) or
// from address_file (reload_address_file_table).
func (m *Module) load() (*tables, error) {
	t := &tables{}
	full := func() { m.log().Error("permissions: subnet table is full", "max_subnets", m.set.MaxSubnets) }
	if m.set.AddressFile != "" {
		return t, m.loadFile(t, full)
	}
	db, err := kdb.Open(m.set.DBURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Addresses(m.set.AddressTable, m.set.Cols)
	if err != nil {
		return nil, err
	}
	for i, r := range rows {
		switch {
		case !r.Grp.Valid || r.Grp.Int64 <= 0:
			return nil, fmt.Errorf("table %q row %d: invalid group (database problem - invalid record)", m.set.AddressTable, i+1)
		case !r.IPAddr.Valid:
			return nil, fmt.Errorf("table %q row %d: NULL address (database problem - invalid record)", m.set.AddressTable, i+1)
		case !r.Mask.Valid || !r.Port.Valid:
			return nil, fmt.Errorf("table %q row %d: NULL mask or port (database problem - invalid record)", m.set.AddressTable, i+1)
		}
		var tag *string
		if r.Tag.Valid {
			tag = &r.Tag.String
		}
		if err := t.insert(uint32(r.Grp.Int64), r.IPAddr.String, uint32(r.Mask.Int64), uint32(r.Port.Int64), tag, m.set.MaxSubnets, full); err != nil {
			return nil, fmt.Errorf("table %q row %d: %w (database problem - invalid record)", m.set.AddressTable, i+1, err)
		}
	}
	return t, nil
}

// loadFile reads address_file: lines "group address [mask [port [tag]]]",
// '#' starting a comment, as Kamailio's PERM_FADDR_* parser.
func (m *Module) loadFile(t *tables, full func()) error {
	f, err := os.Open(m.set.AddressFile)
	if err != nil {
		return fmt.Errorf("can't open list file [%s]: %w", m.set.AddressFile, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		p := sc.Text()
		skip := func() { p = strings.TrimLeft(p, " \t\r\n") }
		eod := func() bool { return p == "" || p[0] == '#' }
		num := func() uint32 {
			var v uint32
			for p != "" && p[0] >= '0' && p[0] <= '9' {
				v = v*10 + uint32(p[0]-'0')
				p = p[1:]
			}
			return v
		}
		str := func() string {
			i := strings.IndexAny(p, " \t\r\n#")
			if i < 0 {
				i = len(p)
			}
			s := p[:i]
			p = p[i:]
			return s
		}
		skip()
		if eod() {
			continue
		}
		gid := num()
		skip()
		if eod() {
			return fmt.Errorf("%s:%d: no address", m.set.AddressFile, n)
		}
		ip := str()
		var mask, port uint32
		var tag *string
		if skip(); !eod() {
			mask = num()
			if skip(); !eod() {
				port = num()
				if skip(); !eod() {
					s := str()
					tag = &s
				}
			}
		}
		if err := t.insert(gid, ip, mask, port, tag, m.set.MaxSubnets, full); err != nil {
			return fmt.Errorf("%s:%d: %w", m.set.AddressFile, n, err)
		}
	}
	return sc.Err()
}

// matchAddr is match_addr_hash_table and, with any,
// find_group_in_addr_hash_table: the first entry of a's bucket with a's
// address, the port or port 0, and the group.
func (t *tables) matchAddr(any bool, group uint32, a netip.Addr, port uint32) *entry {
	for _, e := range t.addrs[addrHash(a)] {
		if (any || e.grp == group) && (e.port == 0 || e.port == port) && e.addr == a {
			return e
		}
	}
	return nil
}

// matchSubnet is match_subnet_table and, with any,
// find_group_in_subnet_table (the first match: the lowest group).
func (t *tables) matchSubnet(any bool, group uint32, a netip.Addr, port uint32) *entry {
	for _, e := range t.subnets {
		if !any && e.grp < group {
			continue
		}
		if !any && e.grp > group {
			return nil
		}
		if (e.port == port || e.port == 0) && matchNet(a, e.addr, e.mask) {
			return e
		}
	}
	return nil
}

// matchDomain is match_domain_name_table and
// find_group_in_domain_name_table: the name compared exactly.
func (t *tables) matchDomain(any bool, group uint32, name string, port uint32) *entry {
	for _, e := range t.domains[coreHash([]byte(name), hashSize)] {
		if (any || e.grp == group) && (e.port == 0 || e.port == port) && e.domain == name {
			return e
		}
	}
	return nil
}
