package htable

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"kemi/jsonrpc"
)

// htable RPC commands, with the reply shapes, fault codes and messages of
// htable.c's htable_rpc_* at 5.6.3 (typos included).

// rpcItem is htable.get's item.
type rpcItem struct {
	Name   string `json:"name"`
	Value  any    `json:"value"`
	Flags  int    `json:"flags"`
	Expire string `json:"expire"`
}

// rpcDumpItem is one item of htable.dump.
type rpcDumpItem struct {
	Name  string `json:"name"`
	Value any    `json:"value"`
	Type  string `json:"type"`
}

// rpcSlot is one non-empty slot of htable.dump.
type rpcSlot struct {
	Entry int           `json:"entry"`
	Size  int           `json:"size"`
	Slot  []rpcDumpItem `json:"slot"`
}

type rpcTableInfo struct {
	Name         string `json:"name"`
	DBTable      string `json:"dbtable"`
	DBMode       int    `json:"dbmode"`
	Expire       int    `json:"expire"`
	UpdateExpire int    `json:"updateexpire"`
	Size         int    `json:"size"`
	DMQReplicate int    `json:"dmqreplicate"`
}

type rpcStats struct {
	Name  string `json:"name"`
	Slots int    `json:"slots"`
	All   int    `json:"all"`
	Min   int    `json:"min"`
	Max   int    `json:"max"`
}

const avpValStr = 2 // AVP_VAL_STR: htable.get's flags of a string item

func fault(code int, msg string) error { return &jsonrpc.Fault{Code: code, Message: msg} }

// RPC returns the htable.* commands.
func (m *Module) RPC() []jsonrpc.Method {
	// args reads n string parameters ("S" of Kamailio's rpc->scan; after
	// conv, ".S": a number is converted), or fails with Kamailio's message.
	args := func(p jsonrpc.Params, n int, msg string, conv ...int) ([]string, error) {
		out := make([]string, n)
		for i := range out {
			s, ok := scanStr(p, i, slices.Contains(conv, i))
			if !ok {
				return nil, fault(500, msg)
			}
			out[i] = s
		}
		return out, nil
	}
	table := func(name string) (*Table, error) {
		t := m.table(nil, name)
		if t == nil {
			return nil, fault(500, "No such htable")
		}
		return t, nil
	}
	// strsInt reads "SS.d"-style parameters: strings, then an integer.
	strsInt := func(p jsonrpc.Params, strs int, msg string, conv ...int) ([]string, int, error) {
		a, err := args(p, strs, msg, conv...)
		if err != nil {
			return nil, 0, err
		}
		n, ok := scanInt(p, strs)
		if !ok {
			return nil, 0, fault(500, msg)
		}
		return a, n, nil
	}
	// tableArgs reads the string parameters of a command whose first one
	// names the table, and finds the table.
	tableArgs := func(p jsonrpc.Params, n int, msg string, conv ...int) (*Table, []string, error) {
		a, err := args(p, n, msg, conv...)
		if err != nil {
			return nil, nil, err
		}
		t, err := table(a[0])
		return t, a, err
	}
	// tableStrsInt is tableArgs for "SS.d"-style parameters.
	tableStrsInt := func(p jsonrpc.Params, strs int, msg string, conv ...int) (*Table, []string, int, error) {
		a, n, err := strsInt(p, strs, msg, conv...)
		if err != nil {
			return nil, nil, 0, err
		}
		t, err := table(a[0])
		return t, a, n, err
	}
	return []jsonrpc.Method{
		{Name: "htable.dump", Doc: "Dump the contents of hash table.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t, _, err := tableArgs(p, 1, "No htable name given")
			if err != nil {
				return nil, err
			}
			out := []rpcSlot{}
			for _, s := range t.Snapshot() {
				rs := rpcSlot{Entry: s.Slot, Size: len(s.Items), Slot: make([]rpcDumpItem, len(s.Items))}
				for i, it := range s.Items {
					rs.Slot[i] = rpcDumpItem{Name: it.Name, Value: it.Int, Type: "int"}
					if it.IsStr {
						rs.Slot[i] = rpcDumpItem{Name: it.Name, Value: it.Str, Type: "str"}
					}
				}
				out = append(out, rs)
			}
			return out, nil
		}},
		{Name: "htable.delete", Doc: "Delete one key from a hash table.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t, a, err := tableArgs(p, 2, "Not enough parameters (htable name & key name")
			if err != nil {
				return nil, err
			}
			if !t.Delete(a[1], nil) {
				return nil, fault(404, "Key not found in htable.")
			}
			return "Ok. Key deleted.", nil
		}},
		{Name: "htable.get", Doc: "Get one key from a hash table.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t, a, err := tableArgs(p, 2, "Not enough parameters (htable name and key name)")
			if err != nil {
				return nil, err
			}
			it, ok := t.Get(a[1], m.now(nil), nil)
			if !ok {
				return nil, fault(500, "Key name doesn't exist in htable.")
			}
			item := rpcItem{Name: it.Name, Value: it.Int, Expire: "NEVER"}
			if it.IsStr {
				item.Value, item.Flags = it.Str, avpValStr
			}
			if it.Expire != 0 {
				item.Expire = time.Unix(it.Expire, 0).Local().Format("2006-01-02 15:04:05")
			}
			return map[string]rpcItem{"item": item}, nil
		}},
		{Name: "htable.sets", Doc: "Set one key in a hash table to a string value.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t, a, err := tableArgs(p, 3, "Not enough parameters (htable name, key name and value)", 2)
			if err != nil {
				return nil, err
			}
			t.Set(a[1], true, a[2], 0, 0, m.now(nil), nil)
			return "Ok. Key set to new value.", nil
		}},
		{Name: "htable.seti", Doc: "Set one key in a hash table to an integer value.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t, a, n, err := tableStrsInt(p, 2, "Not enough parameters (htable name, key name and value)")
			if err != nil {
				return nil, err
			}
			t.Set(a[1], false, "", int32(n), 0, m.now(nil), nil)
			return "Ok. Key set to new value.", nil
		}},
		{Name: "htable.setex", Doc: "Set expire in a hash table for the item referenced by key.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t, a, n, err := tableStrsInt(p, 2, "Not enough parameters (htable name, item name and expire)")
			if err != nil {
				return nil, err
			}
			t.SetExpire(a[1], int(int32(n)), m.now(nil), nil)
			return "Ok", nil
		}},
		{Name: "htable.setxs", Doc: "Set one key in a hash table to a string value and its expire value.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			a, n, err := strsInt(p, 3, "Not enough parameters (htable name, key name, value and expire)", 2)
			if err != nil {
				return nil, err
			}
			t := m.table(nil, a[0])
			if t == nil {
				return nil, fault(500, "Failed to set the item")
			}
			t.Set(a[1], true, a[2], 0, int(int32(n)), m.now(nil), nil)
			return "Ok. Key set to new value.", nil
		}},
		{Name: "htable.setxi", Doc: "Set one key in a hash table to an integer value and its expire value.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			msg := "Not enough parameters (htable name, key name, value and expire)"
			a, v, err := strsInt(p, 2, msg)
			if err != nil {
				return nil, err
			}
			n, ok := scanInt(p, 3)
			if !ok {
				return nil, fault(500, msg)
			}
			t := m.table(nil, a[0])
			if t == nil {
				return nil, fault(500, "Failed to set the item")
			}
			t.Set(a[1], false, "", int32(v), int(int32(n)), m.now(nil), nil)
			return "Ok. Key set to new value.", nil
		}},
		{Name: "htable.listTables", Doc: "List all htables.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			if len(m.order) == 0 {
				return nil, fault(500, "No htables")
			}
			out := make([]rpcTableInfo, 0, len(m.order))
			for i := len(m.order) - 1; i >= 0; i-- { // Kamailio lists the last defined first
				t := m.order[i]
				ue := 0
				if t.UpdateExpire {
					ue = 1
				}
				out = append(out, rpcTableInfo{Name: t.Name, DBTable: t.DBTable, DBMode: t.DBMode, Expire: t.AutoExpire,
					UpdateExpire: ue, Size: t.Size, DMQReplicate: t.DMQReplicate})
			}
			return out, nil
		}},
		{Name: "htable.stats", Doc: "Statistics about htables.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			if len(m.order) == 0 {
				return nil, fault(500, "No htables")
			}
			out := make([]rpcStats, 0, len(m.order))
			for i := len(m.order) - 1; i >= 0; i-- {
				t := m.order[i]
				all, lo, hi := t.SlotStats()
				out = append(out, rpcStats{Name: t.Name, Slots: t.Size, All: all, Min: lo, Max: hi})
			}
			return out, nil
		}},
		{Name: "htable.flush", Doc: "Flush hash table.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t, _, err := tableArgs(p, 1, "No htable name given")
			if err != nil {
				return nil, err
			}
			t.Reset(nil)
			return "Ok. Htable flushed.", nil
		}},
		{Name: "htable.reload", Doc: "Reload hash table from database.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t, db, err := m.dbTable(p)
			if err != nil {
				return nil, err
			}
			items, err := db.load(ctx, t, m.set.DBExpires && t.AutoExpire > 0, m.set.ArraySuffix, m.now(nil))
			if err != nil {
				m.host.Logger().Error("htable reload failed", "table", t.Name, "error", err)
				return nil, fault(500, "Htable reload failed")
			}
			t.Replace(items, m.now(nil))
			return "Ok. Htable reloaded.", nil
		}},
		{Name: "htable.store", Doc: "Store hash table to database.", Handler: func(ctx context.Context, p jsonrpc.Params) (any, error) {
			t, db, err := m.dbTable(p)
			if err != nil {
				return nil, err
			}
			if err := db.save(ctx, t, m.set.DBExpires, m.now(nil)); err != nil {
				m.host.Logger().Error("htable store failed", "table", t.Name, "error", err)
				return nil, fault(500, "Storing htable failed")
			}
			return "Ok. Htable successfully stored to DB.", nil
		}},
		{Name: "htable.cluster", Doc: "kemi: the replicated tables (dmqreplicate through NATS JetStream) and their counters.", Handler: m.rpcCluster},
	}
}

// dbTable checks what htable.reload and htable.store need, in Kamailio's
// order: a db_url, a table name, the table, its dbtable.
func (m *Module) dbTable(p jsonrpc.Params) (*Table, *store, error) {
	if m.set.DBURL == "" {
		return nil, nil, fault(500, "No htable db_url")
	}
	name, ok := p.String(0)
	if !ok {
		return nil, nil, fault(500, "No htable name given")
	}
	t := m.table(nil, name)
	if t == nil {
		return nil, nil, fault(500, "No such htable")
	}
	db := m.db.Load()
	if t.DBTable == "" || db == nil {
		return nil, nil, fault(500, "No database htable")
	}
	return t, db, nil
}

// scanStr is jsonrpcs's "S" scan of parameter i: a JSON string; with conv
// (after "." in the format) a number is converted as int2str of an
// unsigned long. Anything else, or a missing parameter, fails.
func scanStr(p jsonrpc.Params, i int, conv bool) (string, bool) {
	if s, ok := p.String(i); ok {
		return s, true
	}
	if !conv {
		return "", false
	}
	var f float64
	if err := json.Unmarshal(p.Raw(i), &f); err != nil {
		return "", false
	}
	return strconv.FormatUint(uint64(int64(f)), 10), true
}

// scanInt is jsonrpcs's "d" scan of parameter i: a number truncated to a
// C int; any other JSON value gives 0 (srjson's valueint); only a missing
// parameter fails.
func scanInt(p jsonrpc.Params, i int) (int, bool) {
	raw := p.Raw(i)
	if len(raw) == 0 {
		return 0, false
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, true
	}
	return int(int32(int64(f))), true
}
