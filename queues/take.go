package queues

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Taken is an item handed out by Queue.Take and not yet settled: Ack removes it for good,
// Nack puts it back. Until then it is out of the queue but not gone:
//
//   - in memory (DBModeNone and modes 1-3), it is lost with the process;
//   - in a durable queue on a Store (DBModeDurable), its row stays in the table, so after a
//     restart it is queued again (at-least-once);
//   - on JetStream, the server delivers it again, to any node, AckWait after the take.
//
// A Taken is settled once; later Ack or Nack calls return ErrSettled. Not safe for concurrent
// use.
type Taken struct {
	Item
	q       *Queue
	id      int64         // row of a durable queue on a Store
	msg     jetstream.Msg // JetStream message
	settled bool
}

// ErrSettled: Ack or Nack of a Taken already acknowledged or put back.
var ErrSettled = errors.New("item already acknowledged or put back")

// takePoll is how often Take looks again at an empty in-process queue while it waits.
const takePoll = 2 * time.Millisecond

// Take removes the oldest item like Fetch but keeps it until Ack (at-least-once), waiting up
// to wait for one when the queue is empty (wait <= 0: not at all; an in-process queue is
// polled every 2 ms). ErrEmpty when none came, or ctx's error when it ended first.
func (q *Queue) Take(ctx context.Context, wait time.Duration) (*Taken, error) {
	if q.remote != nil {
		m, err := q.remote.next(wait)
		if err != nil {
			return nil, err
		}
		return &Taken{Item: itemOf(m), q: q, msg: m}, nil
	}
	var deadline time.Time
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	for {
		if t := q.takeLocal(); t != nil {
			return t, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil, ErrEmpty
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(left, takePoll)):
		}
	}
}

func (q *Queue) takeLocal() *Taken {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return nil
	}
	e := q.remove(0)
	return &Taken{Item: Item{e.key, e.val}, q: q, id: e.id}
}

// Ack removes the taken item for good: a durable queue's row is deleted, a JetStream message
// acknowledged (and the server's confirmation awaited). On error the item is not settled and
// Ack may be called again; meanwhile a JetStream item may be delivered again after AckWait.
func (t *Taken) Ack() error {
	if t.settled {
		return ErrSettled
	}
	switch {
	case t.msg != nil:
		if err := t.q.remote.ack(t.msg); err != nil {
			return fmt.Errorf("ack in queue %q: %w", t.q.opts.Name, err)
		}
	case t.id != 0 && t.q.journal != nil:
		if err := t.q.journal.Delete(context.Background(), t.q.opts.Name, t.id); err != nil {
			return fmt.Errorf("ack in queue %q: %w", t.q.opts.Name, err)
		}
	}
	t.settled = true
	return nil
}

// Nack puts the taken item back. An in-process queue puts it back at the head, as the oldest
// item, under the queue's rules: a bounded queue that filled up meanwhile drops it (it is the
// oldest), and under AddModeKeepNewest a newer item with the same key wins. JetStream delivers
// it again at once, to any node.
func (t *Taken) Nack() error {
	if t.settled {
		return ErrSettled
	}
	if t.msg != nil {
		if err := t.msg.Nak(); err != nil {
			return fmt.Errorf("nack in queue %q: %w", t.q.opts.Name, err)
		}
		t.settled = true
		return nil
	}
	q := t.q
	q.mu.Lock()
	dropped := q.opts.AddMode == AddModeKeepNewest && q.index[t.Key] > 0 ||
		q.opts.Size > 0 && q.n >= q.opts.Size
	if !dropped {
		q.pushFront(entry{t.Key, t.Val, t.id})
	}
	q.mu.Unlock()
	t.settled = true
	if dropped && t.id != 0 && q.journal != nil {
		// Evicted as the oldest: its row goes, as an evicted item's does.
		_ = q.journal.Delete(context.Background(), q.opts.Name, t.id)
	}
	return nil
}

// pushFront inserts e before the head; q.mu is held and the queue has room.
func (q *Queue) pushFront(e entry) {
	if q.n == len(q.ring) {
		q.grow()
	}
	q.head--
	if q.head < 0 {
		q.head = len(q.ring) - 1
	}
	q.ring[q.head] = e
	q.n++
	if q.index != nil {
		q.index[e.key]++
	}
}

// Size returns the number of queued items, or the error that kept a JetStream queue from
// answering. Items taken and not acknowledged count on JetStream (they are still in the
// stream), not in process.
func (q *Queue) Size() (int, error) {
	if q.remote != nil {
		return q.remote.size()
	}
	return q.Len(), nil
}
