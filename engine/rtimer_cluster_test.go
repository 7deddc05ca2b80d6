package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/modules/rtimer"
	"kemi/queues/queuestest"
)

// rtimer's cluster=one across nodes: two engines on one embedded NATS
// server (mqueue's nats:// db_url), each on its own virtual clock, with the
// same timer. Each tick is one AdvanceNext of that engine's clock, waited
// for (rtimerRig.next): the lease's Try runs inside the tick. Only the
// takeover after the holder stops renewing waits for real time, as the
// lease's TTL is NATS's own.

const clusterTimerScript = `
function ksr_request_route() end
function on_tick()
	KSR.mqueue.mq_add("out", "tick", KSR.pv.get("$TV(Sn)"))
end
`

func clusterTimerNode(t *testing.T, url string) *rtimerRig {
	return startRtimer(t, 1, clusterTimerScript,
		fmt.Sprintf(`modparam("mqueue", "db_url", %q)`, url),
		`modparam("rtimer", "timer", "name=cleanup;interval=100000u;cluster=one")`,
		`modparam("rtimer", "exec", "timer=cleanup;route=on_tick")`)
}

func TestRtimerClusterOne(t *testing.T) {
	srv := queuestest.NATSServer(t)
	a := clusterTimerNode(t, srv.ClientURL())
	b := clusterTimerNode(t, srv.ClientURL())
	check := func(r *rtimerRig, node string, ticks, standby uint64) {
		t.Helper()
		st := r.stat("cleanup")
		if st.Ticks != ticks || st.Standby != standby || !st.Cluster {
			t.Fatalf("node %s: %+v, want %d runs and %d ticks in standby", node, st, ticks, standby)
		}
	}

	// a ticks first and takes the lease; at every interval a runs, b waits.
	for k := uint64(1); k <= 3; k++ {
		a.next()
		b.next()
		check(a, "a", k, 0)
		check(b, "b", 0, k)
	}
	if got := len(a.out()); got != 3 {
		t.Fatalf("a ran %d times, want 3", got)
	}
	if got := b.out(); len(got) != 0 {
		t.Fatalf("b ran: %q", got)
	}

	// a stops renewing (a dead node: its clock no longer moves). b takes the
	// lease once it expired, within the TTL (real time, NATS's) of a's last
	// renewal plus b's next tick.
	renewed := time.Now()
	ttl := rtimer.LeaseTTL(100 * time.Millisecond)
	for b.stat("cleanup").Ticks == 0 {
		if time.Since(renewed) > ttl+5*time.Second {
			t.Fatalf("b did not take over %v after a's last renewal (ttl %v)", time.Since(renewed), ttl)
		}
		time.Sleep(ttl / 10)
		b.next()
	}
	took := time.Since(renewed)
	if took < ttl-100*time.Millisecond { // renewed was read just after a's renewal
		t.Fatalf("b took the lease %v after a's last renewal, before the ttl %v", took, ttl)
	}
	t.Logf("b took over %v after a's last renewal (ttl %v)", took, ttl)
	before := a.stat("cleanup")
	a.next() // a comes back: b holds the lease now
	check(a, "a", before.Ticks, before.Standby+1)

	// A graceful stop releases the lease: a takes it at its next tick.
	ctx, cancel := context.WithTimeout(context.Background(), enginetest.Patience)
	defer cancel()
	if err := b.e.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	a.next()
	check(a, "a", before.Ticks+1, before.Standby+1)
}
