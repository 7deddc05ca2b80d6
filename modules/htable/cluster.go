package htable

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"kemi/config"
	"kemi/jsonrpc"
	"kemi/ksr"
	"kemi/queues"
)

// Replication across nodes (docs/cluster.md): a table declared with
// dmqreplicate=1 is mirrored, as Kamailio does through DMQ, through a NATS
// JetStream key-value bucket (queues.Replica) when the node has a NATS
// connection: htable's own nats_url, else mqueue's nats:// db_url (the
// engine's hook, SetCluster). Every change of the table (a set, an
// increment, an expiry change, a delete, a removal by name or value, a
// reset) writes the item's whole state, or its deletion, to the bucket; every
// node applies the bucket's changes in the bucket's order (its revisions),
// its own included, without writing them again. While a key has changes of
// this node in flight (slot.pending), a change read for it waits for their
// acknowledgements, which give their revisions: it is applied only if it is
// not older. So a node reads its own writes at once, and every node ends
// with the bucket's last value of each key (last writer wins).

// replicator is what a replicated table writes to (a *queues.Replica).
type replicator interface {
	Put(key string, val []byte) error
	Delete(key string) error
	Expire(key string, rev uint64) error
}

// Cluster is htable's hook to a NATS connection it does not open itself,
// set by the engine: mqueue's nats:// db_url.
type Cluster interface {
	// Configured reports, once the configuration is read, whether there is
	// a connection.
	Configured() bool
	// JetStream returns the connection once started (mqueue starts before
	// htable and stops after it), nil if it is not up.
	JetStream() *queues.JetStream
}

// Replica returns the table's replica once started, nil for a table that
// is not replicated.
func (t *Table) Replica() *queues.Replica { return t.replica }

// NATS returns the connection of nats_url once started, nil without one
// (the RPC and tests read its state).
func (m *Module) NATS() *queues.JetStream { return m.js }

// SetCluster sets the hook used when htable has no nats_url.
func (m *Module) SetCluster(c Cluster) { m.cluster = c }

func (m *Module) natsParams() []ksr.Param {
	return []ksr.Param{
		{Name: "nats_url", Set: func(_ *ksr.Setup, st config.Stmt) error {
			u := st.Value.String()
			if _, err := queues.ParseNATSURLs(u); err != nil {
				return config.Errorf(st.Pos, "modparam htable nats_url: %v", err)
			}
			m.set.NATSURL = u
			return nil
		}},
		{Name: "nats_replicas", Set: func(_ *ksr.Setup, st config.Stmt) (err error) {
			m.set.NATSReplicas, err = config.IntParam(st, "htable", 1, 5)
			return err
		}},
		{Name: "nats_start_wait", Set: func(_ *ksr.Setup, st config.Stmt) error {
			n, err := config.IntParam(st, "htable", 0, 3600*1000)
			m.set.NATSStartWait = time.Duration(n) * time.Millisecond
			return err
		}},
	}
}

// finishCluster decides which tables are replicated: with dmqreplicate
// and a NATS connection. Without one, dmqreplicate is ignored with a notice
// (a Kamailio configuration keeps running, each node on its own).
func (m *Module) finishCluster(c *ksr.Setup) {
	if m.connected() {
		return
	}
	for _, s := range m.set.Tables {
		if s.DMQReplicate != 0 {
			c.Notice(m.set.Pos[s.Name], "htable %q: dmqreplicate ignored: kemi replicates through NATS JetStream "+
				"and there is no nats:// URL (modparam(\"htable\", \"nats_url\", ...) or mqueue's db_url, docs/cluster.md)", s.Name)
		}
	}
}

// connected reports whether the configuration gives a NATS connection.
func (m *Module) connected() bool {
	return m.set.NATSURL != "" || (m.cluster != nil && m.cluster.Configured())
}

// startCluster connects the replicated tables to their buckets, each
// loaded with the bucket's content before Start returns (DMQ's sync).
func (m *Module) startCluster(ctx context.Context) error {
	var tables []*Table
	for _, t := range m.order {
		if t.DMQReplicate != 0 && m.connected() {
			tables = append(tables, t)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	wait := m.set.NATSStartWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var js *queues.JetStream
	if m.set.NATSURL != "" {
		var err error
		js, err = queues.OpenJetStream(ctx, m.set.NATSURL, queues.JetStreamOptions{Replicas: m.set.NATSReplicas, Name: "kemi htable"})
		if err != nil {
			return fmt.Errorf("htable: nats_url: %w", err)
		}
		m.js = js
	} else if m.cluster != nil {
		js = m.cluster.JetStream()
	}
	if js == nil {
		return fmt.Errorf("htable: replicated tables: mqueue's nats db_url is not connected")
	}
	for _, t := range tables {
		t.repFail = m.repFailed(t)
		r, err := js.Replicate(ctx, t.Name, queues.ReplicaOptions{OnAck: t.acked, OnError: t.sentFailed, OnResume: t.resend}, t.apply)
		if err != nil {
			m.stopCluster(ctx)
			return fmt.Errorf("htable: table %q: %w", t.Name, err)
		}
		t.replica, t.rep = r, r
	}
	return nil
}

// stopCluster waits (a little) for the changes in flight, then closes the
// buckets' watches and the own connection.
func (m *Module) stopCluster(ctx context.Context) {
	for _, t := range m.order {
		if t.replica == nil {
			continue
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		_ = t.replica.Flush(fctx)
		cancel()
		_ = t.replica.Close()
		t.replica, t.rep = nil, nil // a later change stays local
	}
	if m.js != nil {
		m.js.Close()
		m.js = nil
	}
}

// repFailed logs (at most once a second per table) and counts a change that
// could not be sent to the cluster: it stays on this node only.
func (m *Module) repFailed(t *Table) func(string, error) {
	var last atomic.Int64
	return func(key string, err error) {
		t.repErrors.Add(1)
		now := time.Now().Unix()
		if l := last.Load(); l != now && last.CompareAndSwap(l, now) {
			m.host.Logger().Error("htable replication failed: the change stays on this node", "table", t.Name, "key", key, "error", err)
		}
	}
}

// sendSet writes c's state to the cluster; s is c's slot, locked.
func (t *Table) sendSet(s *slot, c *cell) {
	if t.rep == nil {
		return
	}
	if err := t.rep.Put(c.name, encodeCell(c)); err != nil {
		s.markDirty(c.name)
		t.repFail(c.name, err)
		return
	}
	s.sent(c.name)
}

// sendDel writes the deletion of name to the cluster; s is its slot, locked.
func (t *Table) sendDel(s *slot, name string) {
	if t.rep == nil {
		return
	}
	if err := t.rep.Delete(name); err != nil {
		s.markDirty(name)
		t.repFail(name, err)
		return
	}
	s.sent(name)
}

// sendExpire removes an item the sweep removed here from the bucket too,
// unless it changed meanwhile: every node sweeps, the first one's delete
// wins (queues.Replica.Expire).
func (t *Table) sendExpire(s *slot, c *cell) {
	if t.rep == nil || c.rev == 0 || s.pending[c.name] != nil {
		return
	}
	_ = t.rep.Expire(c.name, c.rev)
}

// pend is what a slot knows of a key's changes made by this node that the
// bucket's changes read since may not have overtaken yet.
type pend struct {
	unacked int32                // sent, neither acknowledged nor failed
	rev     uint64               // the highest revision of those acknowledged
	later   *queues.ReplicaEntry // the last change read while some were unacked
}

func (s *slot) markDirty(key string) {
	if s.dirty == nil {
		s.dirty = map[string]struct{}{}
	}
	s.dirty[key] = struct{}{}
}

// resend sends again the state of the keys whose change could not be sent
// (the connection is back): this node's last change of each wins.
func (t *Table) resend() {
	for i := range t.slots {
		s, locked := t.lock(uint32(i), nil)
		names := make([]string, 0, len(s.dirty))
		for name := range s.dirty {
			names = append(names, name)
		}
		for _, name := range names {
			if c := s.cells[name]; c != nil {
				t.sendSet(s, c)
			} else {
				t.sendDel(s, name)
			}
		}
		s.unlock(locked)
	}
}

func (s *slot) sent(key string) {
	delete(s.dirty, key)
	p := s.pending[key]
	if p == nil {
		if s.pending == nil {
			s.pending = map[string]*pend{}
		}
		p = &pend{}
		s.pending[key] = p
	}
	p.unacked++
}

// acked is the bucket's acknowledgement of a change of key: its revision.
func (t *Table) acked(key string, rev uint64) {
	s, locked := t.lock(hash(key)&uint32(t.Size-1), nil)
	defer s.unlock(locked)
	if p := s.pending[key]; p != nil {
		p.unacked--
		p.rev = max(p.rev, rev)
		t.settle(s, key, p)
	}
}

// sentFailed is called when a change sent without error was refused or not
// acknowledged: it stays on this node.
func (t *Table) sentFailed(key string, err error) {
	s, locked := t.lock(hash(key)&uint32(t.Size-1), nil)
	if p := s.pending[key]; p != nil {
		p.unacked--
		t.settle(s, key, p)
	}
	s.markDirty(key)
	s.unlock(locked)
	t.repFail(key, err)
}

// settle decides, once every change of key sent by this node is
// acknowledged (or failed), about the change read meanwhile: applied if it
// is not older than them, else dropped; key is then free once the bucket's
// changes read reach this node's last one.
func (t *Table) settle(s *slot, key string, p *pend) {
	if p.unacked > 0 {
		return
	}
	if l := p.later; l != nil && l.Rev >= p.rev {
		delete(s.pending, key)
		t.applyLocked(s, *l)
		return
	}
	p.later = nil
	if p.rev == 0 {
		delete(s.pending, key) // nothing of ours in the bucket
	}
}

// apply applies a change read from the bucket (the watch's goroutine): at
// once, unless this node has changes of the key in flight (decided when
// they are acknowledged) or the change is older than this node's last one.
func (t *Table) apply(e queues.ReplicaEntry) {
	s, locked := t.lock(hash(e.Key)&uint32(t.Size-1), nil)
	defer s.unlock(locked)
	if p := s.pending[e.Key]; p != nil {
		if p.unacked > 0 {
			if p.later == nil || e.Rev > p.later.Rev {
				p.later = &e
			}
			return
		}
		if e.Rev < p.rev {
			return // overtaken by this node's last change
		}
		delete(s.pending, e.Key)
	}
	t.applyLocked(s, e)
}

func (t *Table) applyLocked(s *slot, e queues.ReplicaEntry) {
	c := s.cells[e.Key]
	if e.Deleted {
		if c != nil {
			delete(s.cells, e.Key)
		}
		return
	}
	isStr, sv, nv, exp, ok := decodeCell(e.Value)
	if !ok {
		return
	}
	if c == nil {
		c = &cell{name: e.Key, hid: hash(e.Key)}
		t.insert(s, c)
	}
	c.isStr, c.s, c.n, c.expire, c.rev = isStr, sv, nv, exp, e.Rev
}

// encodeCell is an item's state in the bucket: 's' or 'i', the expiry
// (Unix seconds, 8 bytes), the integer (4 bytes), then the string.
func encodeCell(c *cell) []byte {
	b := make([]byte, 13, 13+len(c.s))
	b[0] = 'i'
	if c.isStr {
		b[0] = 's'
	}
	binary.BigEndian.PutUint64(b[1:], uint64(c.expire))
	binary.BigEndian.PutUint32(b[9:], uint32(c.n))
	return append(b, c.s...)
}

func decodeCell(b []byte) (isStr bool, s string, n int32, expire int64, ok bool) {
	if len(b) < 13 || (b[0] != 's' && b[0] != 'i') {
		return false, "", 0, 0, false
	}
	return b[0] == 's', string(b[13:]), int32(binary.BigEndian.Uint32(b[9:])), int64(binary.BigEndian.Uint64(b[1:])), true
}

// rpcCluster is htable.cluster (kemi's): the replicated tables' state.
func (m *Module) rpcCluster(context.Context, jsonrpc.Params) (any, error) {
	type table struct {
		Name string `json:"name"`
		queues.ReplicaState
		Errors int64 `json:"errors"`
	}
	out := struct {
		NATS   *queues.JetStreamState `json:"nats,omitempty"`
		Tables []table                `json:"tables"`
	}{Tables: []table{}}
	if m.js != nil {
		st := m.js.State()
		out.NATS = &st
	}
	for _, t := range m.order {
		if t.replica != nil {
			out.Tables = append(out.Tables, table{Name: t.Name, ReplicaState: t.replica.State(), Errors: t.repErrors.Load()})
		}
	}
	return out, nil
}
