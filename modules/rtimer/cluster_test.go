package rtimer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kemi/config"
	"kemi/ksr/ksrtest"
	"kemi/timers"
)

// fakeCluster hands out one fakeLease, which the test holds or not.
type fakeCluster struct {
	configured bool
	lease      fakeLease
	mu         sync.Mutex
	name       string
	ttl        time.Duration
}

func (c *fakeCluster) Configured() bool { return c.configured }

func (c *fakeCluster) Lease(name string, ttl time.Duration) (Lease, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.name, c.ttl = name, ttl
	return &c.lease, nil
}

type fakeLease struct {
	held     atomic.Bool
	tries    atomic.Int32
	released atomic.Bool
}

func (l *fakeLease) Try(context.Context) (bool, error) {
	l.tries.Add(1)
	return l.held.Load(), nil
}

func (l *fakeLease) Release(context.Context) error {
	l.released.Store(true)
	return nil
}

// TestClusterOneTicksOnlyWithTheLease: a cluster=one timer tries its lease
// before each tick, runs only while it holds it (the other ticks count as
// standby, not as runs), and releases it at Stop.
func TestClusterOneTicksOnlyWithTheLease(t *testing.T) {
	cl := &fakeCluster{configured: true}
	m, _, err := configureWith(t, `
modparam("rtimer", "timer", "name=Cleanup;interval=2;cluster=one")
modparam("rtimer", "exec", "timer=cleanup;route=tick")
`, cl)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1000, 0)
	clk := timers.NewFake(start)
	var log syncBuf
	ksrtest.DepsWith(t, &log, ksrtest.Options{Clock: clk, Script: `
function tick() KSR.pv.seti("$shv(runs)", (KSR.pv.get("$shv(runs)") or 0) + 1) end
`}, m)
	ctx := t.Context()
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if cl.name != "rtimer-cleanup" || cl.ttl != 6*time.Second {
		t.Fatalf("lease %q ttl %v, want rtimer-cleanup and 3 intervals", cl.name, cl.ttl)
	}
	step := func() {
		t.Helper()
		if err := clk.BlockUntilContext(ctx, 1); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Second)
		if err := clk.BlockUntilContext(ctx, 1); err != nil { // the tick is over
			t.Fatal(err)
		}
	}
	step() // another node holds it
	cl.lease.held.Store(true)
	step()
	step()
	cl.lease.held.Store(false)
	step()
	st := m.Stats()[0]
	if st.Ticks != 2 || st.Standby != 2 || !st.Cluster || cl.lease.tries.Load() != 4 {
		t.Fatalf("stats %+v after %d tries, want 2 runs and 2 in standby", st, cl.lease.tries.Load())
	}
	if got := m.host.Deps().Shv.Get("runs"); got != int64(2) {
		t.Fatalf("the route ran %v times, want 2", got)
	}
	c := map[string]int64{}
	m.Counters(c)
	if c["rtimer_ticks"] != 2 || c["rtimer_standby"] != 2 {
		t.Fatalf("counters %v", c)
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if !cl.lease.released.Load() {
		t.Fatal("the lease was not released at Stop")
	}
}

// TestClusterOneNeedsAConnection: without a cluster connection, a
// cluster=one timer is a configuration error at the timer's line.
func TestClusterOneNeedsAConnection(t *testing.T) {
	for _, cl := range []Cluster{nil, &fakeCluster{}} {
		_, _, err := configureWith(t, `
modparam("rtimer", "timer", "name=a;interval=1")
modparam("rtimer", "timer", "name=c;interval=1;cluster=one")
`, cl)
		var ce *config.Error
		if !errors.As(err, &ce) || ce.Pos.Line != 3 || !strings.Contains(err.Error(), "cluster=one needs a NATS connection") {
			t.Errorf("cluster %v: error %v, want a config error at kemi.cfg:3", cl, err)
		}
	}
}
