package rtimer

import (
	"context"
	"strings"
	"time"

	"kemi/config"
)

// cluster=one (a kemi extension, issue 19; docs/rtimer.md, docs/cluster.md):
// a timer with this attribute fires on one node of the cluster at a time.
// Before each tick the timer tries a lease in a NATS JetStream key-value
// bucket (queues.Lease, on the connection of mqueue's nats:// db_url); only
// the node that holds it runs the exec routes, the others let the tick pass
// (counted as standby). The holder renews the lease at every tick; when it
// stops renewing (the node died or lost NATS), the entry expires after the
// TTL and the next tick of another node takes it. A graceful stop releases
// the lease, so another node takes it at its next tick.

// Lease is a lease held by at most one node at a time (queues.Lease).
type Lease interface {
	// Try takes or renews the lease and reports whether this node holds
	// it; an error also says whether it is still held from an earlier
	// renewal less than TTL ago.
	Try(ctx context.Context) (bool, error)
	// Release gives the lease up if this node holds it.
	Release(ctx context.Context) error
}

// Cluster is the rtimer module's hook to the cluster connection, set by the
// engine (SetCluster): mqueue's nats:// db_url.
type Cluster interface {
	// Configured reports, once the configuration is read, whether it has a
	// cluster connection; Finish refuses a cluster=one timer without one.
	Configured() bool
	// Lease returns the lease called name for this node, expiring ttl
	// after its last renewal. It is called by Start, once the connection
	// is up (mqueue starts before rtimer and stops after it).
	Lease(name string, ttl time.Duration) (Lease, error)
}

// SetCluster sets the cluster hook that cluster=one timers need.
func (m *Module) SetCluster(c Cluster) { m.cluster = c }

// minLeaseTTL is the shortest lease of a cluster=one timer.
const minLeaseTTL = time.Second

// LeaseTTL is the lease TTL of a cluster=one timer: three intervals, at
// least a second. The holder renews it at every tick, so it survives two
// missed renewals (a slow NATS answer, a run that overran); another node
// takes over within TTL plus one interval of the holder's last tick.
func LeaseTTL(interval time.Duration) time.Duration {
	return max(3*interval, minLeaseTTL)
}

// LeaseName is the name of a cluster=one timer's lease (its bucket is
// queues.LeaseBucket(LeaseName(timer))): timer names compare
// case-insensitively, as in Kamailio.
func LeaseName(timer string) string { return "rtimer-" + strings.ToLower(timer) }

// finishCluster refuses cluster=one timers without a cluster connection.
func (m *Module) finishCluster() error {
	for _, t := range m.set.Timers {
		if t.Cluster && (m.cluster == nil || !m.cluster.Configured()) {
			return config.Errorf(t.Pos, "modparam rtimer timer %q: cluster=one needs a NATS connection: "+
				"set modparam(\"mqueue\", \"db_url\", \"nats://host:4222\") (the timer's lease lives in NATS JetStream, docs/cluster.md)", t.Name)
		}
	}
	return nil
}

// leader reports whether this node runs t's tick: t is not cluster=one, or
// its lease is held. A lease error is logged (rate-limited per timer by the
// engine's logger); the tick then runs only if the lease is still held from
// an earlier renewal.
func (m *Module) leader(ctx context.Context, j *job, t *timer) bool {
	if t.lease == nil {
		return true
	}
	ok, err := t.lease.Try(ctx)
	if err != nil && ctx.Err() == nil {
		m.host.Logger().Warn("rtimer: cluster lease unavailable", "timer", t.spec.Name, "worker", j.name, "held", ok, "error", err)
	}
	if !ok {
		t.standby.Add(1)
	}
	return ok
}

// releaseLeases gives up the leases of the cluster=one timers (at Stop,
// once no tick runs), so another node takes over at its next tick. A
// failure is only logged: the lease then expires after its TTL.
func (m *Module) releaseLeases(ctx context.Context) {
	for _, t := range m.run.timers {
		if t.lease == nil {
			continue
		}
		if err := t.lease.Release(ctx); err != nil {
			m.host.Logger().Warn("rtimer: cannot release the cluster lease; another node takes over when it expires", "timer", t.spec.Name, "error", err)
		}
	}
}
