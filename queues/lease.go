package queues

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Lease is a named lease held by at most one holder of a cluster at a time, kept in a
// JetStream key-value bucket of its own (KEMI_LEASE_<name>, one key "holder") whose entries
// expire TTL after their last write. It is meant for rtimer's cluster=one timers: before each
// tick the timer calls Try, and runs only when it returns true. The holder renews the lease at
// every Try; when it stops (dies, is partitioned away from the NATS cluster), the entry expires
// and the next Try of another node takes it, so a takeover happens within TTL plus one
// interval. Safe for concurrent use.
//
// What it guarantees is JetStream's compare-and-set: two holders cannot both succeed in the
// same revision, so at most one node believes it holds the lease after a successful Try, except
// that a holder cut off from NATS keeps believing it until its own TTL has passed since its
// last renewal (Held); a timer should not run longer than TTL per tick.
type Lease struct {
	j      *JetStream
	name   string
	holder string
	ttl    time.Duration

	mu      sync.Mutex
	kv      jetstream.KeyValue
	rev     uint64    // revision of our entry while we hold it
	renewed time.Time // last successful renewal
}

const leaseKey = "holder"

// LeaseBucket is the key-value bucket of the lease called name.
func LeaseBucket(name string) string { return "KEMI_LEASE_" + encodeName(name) }

// Lease returns the lease called name for holder (a string unique to this node, e.g.
// "host:port pid"), with the given TTL (>= 100 ms; a few timer intervals). The bucket is
// created on the first Try, with j's replicas.
func (j *JetStream) Lease(name, holder string, ttl time.Duration) (*Lease, error) {
	switch {
	case name == "":
		return nil, errors.New("lease: empty name")
	case holder == "":
		return nil, fmt.Errorf("lease %q: empty holder", name)
	case ttl < 100*time.Millisecond:
		return nil, fmt.Errorf("lease %q: ttl %v below 100ms", name, ttl)
	}
	return &Lease{j: j, name: name, holder: holder, ttl: ttl}, nil
}

// Try takes or renews the lease and reports whether this holder has it. An error (NATS
// unreachable, ...) also reports false, unless the lease is still Held from an earlier
// renewal: a node keeps running its timer through a short outage of NATS, never beyond TTL.
func (l *Lease) Try(ctx context.Context) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, l.j.opts.Timeout)
	defer cancel()
	held, err := l.try(ctx)
	if err != nil {
		return l.heldLocked(), fmt.Errorf("lease %q: %w", l.name, err)
	}
	return held, nil
}

func (l *Lease) try(ctx context.Context) (bool, error) {
	if l.kv == nil {
		kv, err := l.j.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      LeaseBucket(l.name),
			Description: "kemi lease " + l.name,
			TTL:         l.ttl,
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    l.j.opts.Replicas,
		})
		if err != nil {
			return false, err
		}
		l.kv = kv
	}
	now := time.Now()
	if l.rev != 0 {
		rev, err := l.kv.Update(ctx, leaseKey, []byte(l.holder), l.rev)
		if err == nil {
			l.rev, l.renewed = rev, now
			return true, nil
		}
		var apiErr jetstream.JetStreamError
		if !errors.As(err, &apiErr) {
			return false, err // not an answer: we may still hold it
		}
		l.rev = 0 // someone else wrote, or the entry expired: lost, try to take it below
	}
	rev, err := l.kv.Create(ctx, leaseKey, []byte(l.holder))
	if err == nil {
		l.rev, l.renewed = rev, now
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, err
	}
	e, err := l.kv.Get(ctx, leaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil // expired between the two calls: the next Try takes it
	}
	if err != nil {
		return false, err
	}
	if string(e.Value()) != l.holder {
		return false, nil
	}
	// Ours, from before a restart of this holder: renew it.
	rev, err = l.kv.Update(ctx, leaseKey, []byte(l.holder), e.Revision())
	if err != nil {
		return false, nil
	}
	l.rev, l.renewed = rev, now
	return true, nil
}

// Held reports whether the last successful Try took or renewed the lease less than TTL ago.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.heldLocked()
}

func (l *Lease) heldLocked() bool {
	return l.rev != 0 && time.Since(l.renewed) < l.ttl
}

// Release gives the lease up if this holder has it (at a graceful stop), so that another node
// takes it at its next Try rather than after TTL.
func (l *Lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rev == 0 || l.kv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.j.opts.Timeout)
	defer cancel()
	err := l.kv.Delete(ctx, leaseKey, jetstream.LastRevision(l.rev))
	l.rev = 0
	if err != nil {
		return fmt.Errorf("lease %q: release: %w", l.name, err)
	}
	return nil
}
