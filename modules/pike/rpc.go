package pike

import (
	"context"
	"net/netip"
	"strings"

	"kemi/jsonrpc"
)

// pike.top (and its alias pike.list) as pike_rpc.c at 5.6.3: the
// addresses the tree tracks whose status is asked for ("HOT", the default,
// or "ALL"; "WARM" is accepted and, as in Kamailio, lists nothing).

type topItem struct {
	IP           string `json:"ip_addr"`
	LeafHitsPrev int    `json:"leaf_hits_prev"`
	LeafHitsCurr int    `json:"leaf_hits_curr"`
	Expires      int    `json:"expires"`
	Status       string `json:"status"`
}

type topReply struct {
	MaxHits int       `json:"max_hits"`
	List    []topItem `json:"list"`
	Rows    int       `json:"number_of_rows"`
}

// Node statuses (pike_node_status_t) and their names (node_status_array).
const (
	statusOK   = 0
	statusWarm = 1
	statusHot  = 2
	statusAll  = 3
)

var statusNames = [...]string{"", "WARM", "HOT", "ALL"}

func (t *tree) status(n *node) int {
	switch {
	case t.hotLeaf(n):
		return statusHot
	case t.warmLeaf(n):
		return statusWarm
	}
	return statusOK
}

// top is collect_data + pike_top: the tree's IP leaves, in Kamailio's
// order (its list is built by prepending, so the last leaf found comes
// first).
func (t *tree) top(options int, tick int64) []topItem {
	var out []topItem
	var ip [16]byte
	var walk func(n *node, depth int)
	walk = func(n *node, depth int) {
		if depth >= len(ip) {
			return
		}
		ip[depth] = n.b
		if n.ipLeaf {
			st := t.status(n)
			if options == statusAll || options == statusHot && st&statusHot != 0 {
				out = append(out, topItem{IP: addrString(ip[:depth+1]), LeafHitsPrev: int(n.leafHits[prevPos]),
					LeafHitsCurr: int(n.leafHits[currPos]), Expires: int(int32(uint32(n.expires - tick))), Status: statusNames[st]})
			}
		}
		for _, k := range n.kids {
			walk(k, depth+1)
		}
	}
	for i := range t.branches {
		b := &t.branches[i]
		b.mu.Lock()
		t.maintain(b, tick)
		if b.root != nil {
			walk(b.root, 0)
		}
		b.mu.Unlock()
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// addrString is pike_top_print_addr: inet_ntop for 4 and 16 bytes.
func addrString(b []byte) string {
	if a, ok := netip.AddrFromSlice(b); ok {
		return a.String()
	}
	return ""
}

// RPC returns pike.top and pike.list.
func (m *Module) RPC() []jsonrpc.Method {
	h := func(ctx context.Context, p jsonrpc.Params) (any, error) {
		opts, ok := p.String(0)
		if !ok {
			opts = "HOT"
		}
		var options int
		switch u := strings.ToUpper(opts); {
		case strings.Contains(u, "ALL"):
			options = statusAll
		case strings.Contains(u, "HOT"):
			options = statusHot
		case strings.Contains(u, "WARM"):
			options = statusWarm
		default:
			return nil, &jsonrpc.Fault{Code: 500, Message: "Bad argument. Select: ALL, HOT or WARM"}
		}
		list := m.tree.top(options, m.tick())
		if list == nil {
			list = []topItem{}
		}
		return topReply{MaxHits: int(m.tree.max), List: list, Rows: len(list)}, nil
	}
	doc := "pike.top Dump parts of the pike table"
	return []jsonrpc.Method{
		{Name: "pike.top", Doc: doc, Handler: h},
		{Name: "pike.list", Doc: doc, Handler: h},
	}
}
