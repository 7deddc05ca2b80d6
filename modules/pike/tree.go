package pike

import (
	"slices"
	"sync"
)

// The IP tree of Kamailio's pike (ip_tree.c): one branch per first byte of
// the address, a node per byte of a prefix that has been hot. A node counts
// hits in the current and previous sampling unit; a full address (IP leaf)
// counts its own leaf hits and turns red when they reach the density.
// Prefix nodes grow one byte at a time, each once it gets a quarter of the
// density, so a flooding address is only tracked after a few requests, as
// in Kamailio.
//
// Time is in ticks, Kamailio's get_ticks(): whole seconds since start. The
// two timers of pike (swap_routine every sampling unit, clean_routine every
// tick) are applied to a branch when it is next used (and by the module's
// sweeper), in the order they would have run: what a check returns does not
// depend on when the maintenance ran.

const (
	prevPos = 0
	currPos = 1

	maxHits = 65535 // MAX_TYPE_VAL(unsigned short)

	// mark_node flags.
	flagNew    = 1 << 0 // NEW_NODE
	flagRed    = 1 << 1 // RED_NODE
	flagNewRed = 1 << 2 // NEWRED_NODE
	flagNoUpd  = 1 << 3 // NO_UPDATE
)

type node struct {
	b        byte
	hits     [2]uint16
	leafHits [2]uint16
	ipLeaf   bool // the node ends an address that was checked (NODE_IPLEAF_FLAG)
	red      bool // NODE_ISRED_FLAG
	inTimer  bool // NODE_INTIMER_FLAG: removed at expires unless hit again
	expires  int64
	dad      *node
	kids     []*node
}

type branch struct {
	mu    sync.Mutex
	root  *node
	epoch int64 // sampling unit of the last swap applied
	next  int64 // no node expires before this tick
	_     [24]byte
}

// tree is the whole IP tree with its settings.
type tree struct {
	branches [256]branch
	max      uint16 // reqs_density_per_unit, as Kamailio's unsigned short
	unit     int64  // sampling_time_unit, seconds (> 0)
	timeout  int64  // remove_latency, seconds
}

func newTree(density, unit, timeout int) *tree {
	if unit <= 0 {
		unit = 1
	}
	return &tree{max: uint16(density), unit: int64(unit), timeout: int64(timeout)}
}

func (t *tree) hotNonLeaf(n *node) bool {
	q := t.max >> 2
	return n.hits[prevPos] >= q || n.hits[currPos] >= q || (int(n.hits[prevPos])+int(n.hits[currPos]))>>1 >= int(q)
}

func (t *tree) hotLeaf(n *node) bool {
	return n.leafHits[prevPos] >= t.max || n.leafHits[currPos] >= t.max ||
		(int(n.leafHits[prevPos])+int(n.leafHits[currPos]))>>1 >= int(t.max)
}

func (t *tree) warmLeaf(n *node) bool { return n.hits[currPos] >= t.max>>2 }

// check is pike_check_ipaddr: it marks a hit of ip at tick and returns 1
// (allowed), -2 (the address has just become red) or -1 (it is red).
func (t *tree) check(ip []byte, tick int64) (code int, blocked bool) {
	b := &t.branches[ip[0]]
	b.mu.Lock()
	defer b.mu.Unlock()
	t.maintain(b, tick)
	n, father, flags := t.mark(b, ip)
	if flags&flagNew != 0 {
		t.arm(b, n, tick+t.timeout)
		if father != nil && !father.ipLeaf && len(father.kids) == 1 {
			father.inTimer = false // it has a kid now: it stays while the kid does
		}
	} else if (n.ipLeaf || len(n.kids) == 0) && flags&flagNoUpd == 0 {
		t.arm(b, n, tick+t.timeout)
	}
	switch {
	case flags&flagNewRed != 0:
		return -2, true
	case flags&flagRed != 0:
		return -1, false
	}
	return 1, false
}

func (t *tree) arm(b *branch, n *node, at int64) {
	n.inTimer, n.expires = true, at
	b.next = min(b.next, at)
}

func inc(h *uint16) {
	if *h < maxHits-1 {
		*h++
	}
}

// mark is mark_node.
func (t *tree) mark(b *branch, ip []byte) (n, father *node, flags int) {
	pos := 0
	for kids := []*node{b.root}; b.root != nil && pos < len(ip); {
		var k *node
		for _, c := range kids {
			if c.b == ip[pos] {
				k = c
				break
			}
		}
		if k == nil {
			break
		}
		n, kids = k, k.kids
		pos++
	}
	switch {
	case pos == len(ip):
		n.ipLeaf = true
		inc(&n.leafHits[currPos])
		if !n.red {
			if t.hotLeaf(n) {
				flags |= flagRed | flagNewRed
				n.red = true
			}
		} else {
			flags |= flagRed
		}
	case pos == 0:
		n = &node{b: ip[0]}
		n.hits[currPos] = 1
		b.root = n
		flags = flagNew
	default:
		inc(&n.hits[currPos])
		if t.hotNonLeaf(n) {
			flags = flagNew
			father = n
			n = split(n, ip[pos])
		} else if !t.warmLeaf(n) {
			flags = flagNoUpd
		}
	}
	return n, father, flags
}

// split is split_node: the new kid inherits part of its father's hits
// (with Kamailio's arithmetic, unsigned short wrap included).
func split(dad *node, b byte) *node {
	n := &node{b: b, dad: dad}
	if dad.hits[currPos] >= 1 {
		n.hits[currPos] = dad.hits[currPos] - 1
	}
	if dad.leafHits[currPos] >= 1 {
		n.leafHits[prevPos] = dad.leafHits[prevPos] - 1
	}
	dad.kids = append([]*node{n}, dad.kids...)
	return n
}

// maintain applies to b the timers due by tick: the swaps of the sampling
// units begun since the last one, then the removal of expired nodes.
func (t *tree) maintain(b *branch, tick int64) {
	if ep := tick / t.unit; ep > b.epoch {
		for range min(ep-b.epoch, 2) {
			t.refresh(b.root)
		}
		b.epoch = ep
	}
	if b.root != nil && b.next <= tick {
		t.clean(b, tick)
	}
}

// refresh is refresh_node for a whole branch (swap_routine).
func (t *tree) refresh(n *node) {
	if n == nil {
		return
	}
	n.hits[prevPos], n.hits[currPos] = n.hits[currPos], 0
	n.leafHits[prevPos], n.leafHits[currPos] = n.leafHits[currPos], 0
	if n.red && !t.hotLeaf(n) {
		n.red = false
	}
	for _, k := range n.kids {
		t.refresh(k)
	}
}

// clean is clean_routine for one branch: nodes in the timer whose expiry
// has passed go, in expiry order; a father left without kids goes into the
// timer from its last kid's expiry.
func (t *tree) clean(b *branch, tick int64) {
	for {
		var due []*node
		walk(b.root, func(n *node) {
			if n.inTimer && n.expires <= tick {
				due = append(due, n)
			}
		})
		if len(due) == 0 {
			break
		}
		slices.SortStableFunc(due, func(x, y *node) int { return int(x.expires - y.expires) })
		for _, n := range due {
			exp := n.expires
			n.inTimer, n.expires = false, 0
			if len(n.kids) > 0 { // an IP leaf that is also a prefix: it only stops being a leaf
				n.ipLeaf = false
				n.leafHits[currPos] = 0
				continue
			}
			if d := n.dad; d != nil {
				if len(d.kids) == 1 && !d.ipLeaf {
					d.inTimer, d.expires = true, exp+t.timeout
				}
				d.kids = slices.DeleteFunc(d.kids, func(k *node) bool { return k == n })
			} else {
				b.root = nil
			}
		}
	}
	b.next = 1<<63 - 1
	walk(b.root, func(n *node) {
		if n.inTimer {
			b.next = min(b.next, n.expires)
		}
	})
}

func walk(n *node, f func(*node)) {
	if n == nil {
		return
	}
	f(n)
	for _, k := range n.kids {
		walk(k, f)
	}
}

// sweep maintains every branch at tick (the module's timer).
func (t *tree) sweep(tick int64) {
	for i := range t.branches {
		b := &t.branches[i]
		b.mu.Lock()
		if b.root != nil {
			t.maintain(b, tick)
		}
		b.mu.Unlock()
	}
}

// nodes counts the tree's nodes (tests).
func (t *tree) nodes() int {
	n := 0
	for i := range t.branches {
		b := &t.branches[i]
		b.mu.Lock()
		walk(b.root, func(*node) { n++ })
		b.mu.Unlock()
	}
	return n
}
