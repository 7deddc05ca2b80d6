package mqueue

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/queues"
)

// The cluster backend (docs/cluster.md): a db_url of the nats scheme puts
// every dbmode=4 queue in a JetStream stream shared by every node with the
// same URL and queue name. The queues package holds the NATS code; this
// file chooses it from the URL and adds the settings, the take/ack exports
// and the RPC that go with it.

// natsSettings are the kemi-only modparams of the JetStream backend.
type natsSettings struct {
	replicas  int           // nats_replicas, default 1
	ackWait   time.Duration // nats_ack_wait (ms), default 30 s
	timeout   time.Duration // nats_timeout (ms), default 2 s
	startWait time.Duration // nats_start_wait (ms), default 30 s
}

func (m *Module) natsParams() []ksr.Param {
	ms := func(dst *time.Duration, min, max int) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error {
			n, err := config.IntParam(st, "mqueue", min, max)
			*dst = time.Duration(n) * time.Millisecond
			return err
		}
	}
	return []ksr.Param{
		{Name: "nats_replicas", Set: func(_ *ksr.Setup, st config.Stmt) (err error) {
			m.nats.replicas, err = config.IntParam(st, "mqueue", 1, 5)
			return err
		}},
		{Name: "nats_ack_wait", Set: ms(&m.nats.ackWait, 100, 24*3600*1000)},
		{Name: "nats_timeout", Set: ms(&m.nats.timeout, 10, 600*1000)},
		{Name: "nats_start_wait", Set: ms(&m.nats.startWait, 0, 3600*1000)},
	}
}

// checkNATSURL validates a nats db_url at config time, with file:line.
func checkNATSURL(st config.Stmt, url string) error {
	if _, err := queues.ParseNATSURLs(url); err != nil {
		return config.Errorf(st.Pos, "modparam mqueue db_url: %v", err)
	}
	return nil
}

// finishNATS refuses what the JetStream backend cannot do.
func (m *Module) finishNATS() error {
	if !queues.IsNATSURL(m.set.DBURL) {
		return nil
	}
	for _, q := range m.set.Queues {
		switch {
		case q.DBMode != queues.DBModeNone && q.DBMode != queues.DBModeDurable:
			return config.Errorf(m.set.Pos[q.Name], "modparam mqueue mqueue: queue %q: dbmode %d with a nats db_url: only dbmode 4 (a JetStream stream) or 0 (memory)", q.Name, q.DBMode)
		case q.DBMode == queues.DBModeDurable && q.AddMode != queues.AddModeAppend:
			return config.Errorf(m.set.Pos[q.Name], "modparam mqueue mqueue: queue %q: addmode %d with a nats db_url: a JetStream queue only appends (addmode 0)", q.Name, q.AddMode)
		}
	}
	return nil
}

// startNATS connects and makes the durable queues streams, waiting up to
// nats_start_wait for the servers (a cluster may be electing its leaders).
func (m *Module) startNATS(ctx context.Context) error {
	wait := m.nats.startWait
	if wait == 0 {
		wait = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	j, err := queues.OpenJetStream(ctx, m.set.DBURL, queues.JetStreamOptions{
		Replicas: m.nats.replicas,
		AckWait:  m.nats.ackWait,
		Timeout:  m.nats.timeout,
		Name:     "kemi mqueue",
	})
	if err != nil {
		return fmt.Errorf("open db_url: %w", err)
	}
	if err := m.reg.Connect(ctx, j); err != nil {
		j.Close()
		return fmt.Errorf("db_url %s: %w", j.Servers(), err)
	}
	m.js = j
	return nil
}

// rateLog counts the errors it logs, per message, for mqueue.backend. The
// engine's logger already limits them to one line per second and kind (with
// the count suppressed), on the engine's clock: a backend that is down does
// not flood the log at the rate of traffic.
type rateLog struct {
	mu    sync.Mutex
	total map[string]int64
}

func (r *rateLog) error(log *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	if r.total == nil {
		r.total = map[string]int64{}
	}
	r.total[msg]++
	r.mu.Unlock()
	log.Error(msg, args...)
}

// totals returns how many times each message was reported.
func (r *rateLog) totals() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int64, len(r.total))
	for k, v := range r.total {
		out[k] = v
	}
	return out
}

// take is mq_take (a kemi extension): like mq_fetch, but the item stays
// owed until mq_ack; waits up to timeout_ms for one. 1 taken, -1 unknown
// queue or backend error, -2 nothing came. An item still taken by this VM
// is put back first (mq_nack).
func (m *Module) take(e *ksr.Env, queue string, timeoutMS int) int {
	s := m.slot(e, queue)
	if s == nil {
		e.D.Log.Error("mqueue not found", "queue", queue)
		return -1
	}
	if s.taken != nil {
		e.D.Log.Warn("mqueue take: the previous item was neither acked nor nacked, putting it back", "queue", s.q.Name())
		if err := s.taken.Nack(); err != nil {
			m.errs.error(e.D.Log, "mqueue nack failed", "queue", s.q.Name(), "error", err)
		}
		s.taken = nil
	}
	s.free()
	t, err := s.q.Take(context.Background(), time.Duration(max(timeoutMS, 0))*time.Millisecond)
	if err == queues.ErrEmpty {
		return -2
	}
	if err != nil {
		m.errs.error(e.D.Log, "mqueue take failed", "queue", s.q.Name(), "error", err)
		return -1
	}
	s.taken, s.it, s.fetched = t, t.Item, true
	return 1
}

// ack is mq_ack: 1 acknowledged, -1 unknown queue or the acknowledgement
// failed (the item stays owed: retry, or it is delivered again), -2 nothing
// taken.
func (m *Module) ack(e *ksr.Env, queue string) int {
	return m.settle(e, queue, "ack", (*queues.Taken).Ack)
}

// nack is mq_nack: as mq_ack, putting the item back instead.
func (m *Module) nack(e *ksr.Env, queue string) int {
	return m.settle(e, queue, "nack", (*queues.Taken).Nack)
}

func (m *Module) settle(e *ksr.Env, queue, what string, fn func(*queues.Taken) error) int {
	s := m.slot(e, queue)
	if s == nil {
		e.D.Log.Error("mqueue not found", "queue", queue)
		return -1
	}
	if s.taken == nil {
		return -2
	}
	if err := fn(s.taken); err != nil {
		m.errs.error(e.D.Log, "mqueue "+what+" failed", "queue", s.q.Name(), "error", err)
		return -1
	}
	s.taken = nil
	return 1
}

// backendState is the reply of mqueue.backend.
func (m *Module) backendState() map[string]any {
	out := map[string]any{"backend": "memory"}
	switch {
	case m.js != nil:
		out["backend"] = "jetstream"
		out["nats"] = m.js.State()
	case m.store != nil:
		out["backend"] = "sqlite"
	}
	var qs []map[string]any
	for _, q := range m.reg.Queues() {
		e := map[string]any{"name": q.Name(), "backend": q.Backend()}
		if n, err := q.Size(); err != nil {
			e["size"], e["error"] = -1, err.Error()
		} else {
			e["size"] = n
		}
		qs = append(qs, e)
	}
	out["queues"] = qs
	out["errors"] = m.errs.totals()
	return out
}

// JetStream returns the NATS connection of a nats:// db_url once started,
// nil otherwise. It is the hook for rtimer's cluster=one timers
// (queues.JetStream.Lease), so that a node keeps one connection.
func (m *Module) JetStream() *queues.JetStream { return m.js }
