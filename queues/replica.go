package queues

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A Replica is a map mirrored by every node through one JetStream key-value bucket
// (KEMI_HT_<name>, history 1): each node writes its changes to the bucket (Put, Delete) and
// receives, in the bucket's order (its revisions), the bucket's changes, its own included,
// through the apply function given to Replicate. A node that opens the bucket first gets its
// current content (as Kamailio's DMQ sync does), then the changes live. It is meant for
// htable's dmqreplicate tables (docs/cluster.md); the values are opaque here.
//
// The watch gives the latest state of each key, not every change: a change already replaced
// in the bucket by a newer one of the same key when the watch reaches it is skipped. So a
// writer learns the revision of its own change from its acknowledgement (OnAck), not from the
// watch.
//
// Writes are asynchronous, as DMQ's are: Put and Delete hand the change to the connection and
// return; the acknowledgement (OnAck) or an error reported by the server or a missing
// acknowledgement (OnError) comes later. While the connection is down they fail at once
// (nothing is buffered to be sent late). Safe for concurrent use.
type Replica struct {
	j      *JetStream
	js     jetstream.JetStream // the connection's, with this replica's async error handler
	kv     jetstream.KeyValue
	stream jetstream.Stream // the bucket's stream, for the stall probe
	name   string
	bucket string
	prefix string // "$KV.<bucket>."
	apply  func(ReplicaEntry)
	onAck  func(key string, rev uint64)
	onErr  func(key string, err error)
	resume func()

	lastRev  atomic.Uint64 // the last revision read
	kick     chan struct{} // the connection came back: watch again from lastRev+1
	quit     chan struct{} // Close
	done     chan struct{} // the watch's goroutine ended
	probed   chan struct{} // the probe's goroutine ended
	stalls   atomic.Int64
	once     sync.Once
	unhook   func()
	rewatchs atomic.Int64

	applied, acked, failed atomic.Int64
}

// ReplicaEntry is one change read from the bucket.
type ReplicaEntry struct {
	Key     string // as given to Put or Delete
	Value   []byte // what Put wrote; nil for a delete
	Deleted bool
	Rev     uint64 // the bucket's revision of this change, increasing
}

// ReplicaOptions configure Replicate.
type ReplicaOptions struct {
	// OnAck is called (from the connection's goroutine, which it must not block long) when
	// the bucket stored a Put or Delete, with the change's revision.
	OnAck func(key string, rev uint64)
	// OnError is called (the same way) when a Put or Delete that returned nil was refused or
	// not acknowledged in time: its change may be missing from the bucket. Each Put or
	// Delete that returned nil gets one OnAck or one OnError. Neither is called for Expire.
	OnError func(key string, err error)
	// OnResume is called (from the watch's goroutine) after the connection came back and the
	// watch resumed: the moment to send again what could not be sent meanwhile.
	OnResume func()
}

// ReplicaBucket is the key-value bucket of the replicated map called name.
func ReplicaBucket(name string) string { return "KEMI_HT_" + encodeName(name) }

// Replicate opens (creating it with j's replicas if needed) the bucket of the map called name,
// calls apply for each of its current entries (deleted ones included, with Deleted set), then
// returns, and calls apply for every later change from another goroutine until Close. apply
// is never called concurrently with itself.
func (j *JetStream) Replicate(ctx context.Context, name string, o ReplicaOptions, apply func(ReplicaEntry)) (*Replica, error) {
	r := &Replica{j: j, name: name, bucket: ReplicaBucket(name),
		apply: apply, onAck: o.OnAck, onErr: o.OnError, resume: o.OnResume,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{}), probed: make(chan struct{})}
	r.prefix = "$KV." + r.bucket + "."
	var err error
	r.js, err = jetstream.New(j.nc,
		jetstream.WithPublishAsyncErrHandler(r.asyncErr),
		jetstream.WithPublishAsyncAckHandler(r.asyncAck),
		jetstream.WithPublishAsyncTimeout(j.opts.Timeout),
		jetstream.WithPublishAsyncMaxPending(1<<16))
	if err != nil {
		return nil, fmt.Errorf("replica %q: %w", name, err)
	}
	err = j.retry(ctx, func(rctx context.Context) (err error) {
		r.kv, err = r.js.CreateOrUpdateKeyValue(rctx, jetstream.KeyValueConfig{
			Bucket:      r.bucket,
			Description: "kemi htable " + strconv.Quote(name),
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    j.opts.Replicas,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("replica %q: bucket %q: %w", name, r.bucket, err)
	}
	err = j.retry(ctx, func(rctx context.Context) (err error) {
		r.stream, err = r.js.Stream(rctx, "KV_"+r.bucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("replica %q: stream of %q: %w", name, r.bucket, err)
	}
	// The watch lives as long as the replica, not as ctx.
	w, err := r.kv.WatchAll(context.Background())
	if err != nil {
		return nil, fmt.Errorf("replica %q: watch %q: %w", name, r.bucket, err)
	}
	// The current content, up to the nil marker.
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fmt.Errorf("replica %q: watch %q closed during the initial load", name, r.bucket)
			}
			if e == nil {
				r.unhook = j.OnReconnect(r.kickWatch)
				go r.run(w)
				go r.probe()
				return r, nil
			}
			r.deliver(e)
		case <-ctx.Done():
			w.Stop()
			return nil, fmt.Errorf("replica %q: initial load of %q: %w", name, r.bucket, ctx.Err())
		}
	}
}

// run reads the bucket's changes until Close. After a reconnection, or when the probe finds
// the watch stalled, it watches again from the revision after the last one read: the server's
// consumer of the watch may be gone (a restarted server, a dead server of a cluster), and the
// library would only notice after missing its heartbeats.
func (r *Replica) run(w jetstream.KeyWatcher) {
	defer close(r.done)
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				w = r.rewatch(nil)
			} else if e != nil {
				r.deliver(e)
			}
		case <-r.kick:
			if w = r.rewatch(w); w != nil && r.resume != nil {
				r.resume()
			}
		case <-r.quit:
			stopWatch(w, nil)
			return
		}
		if w == nil {
			return
		}
	}
}

func (r *Replica) kickWatch() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// probe watches the watch: the server-side consumer behind it may be gone without this
// node's connection noticing (on a cluster, the server that held it died while this node is
// connected to another one), and the library would only notice after missing heartbeats for
// many seconds. Every probe interval it reads the bucket's last revision; when the watch has
// not reached, by the next probe, a revision that was already in the bucket, it is watched
// again.
func (r *Replica) probe() {
	defer close(r.probed)
	every := max(time.Second, r.j.opts.Timeout/2)
	t := time.NewTicker(every)
	defer t.Stop()
	var behind uint64 // the bucket's last revision at the previous probe, if the watch was behind it
	for {
		select {
		case <-r.quit:
			return
		case <-t.C:
		}
		if behind != 0 && r.lastRev.Load() < behind {
			r.stalls.Add(1)
			r.kickWatch()
			behind = 0
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), r.j.opts.Timeout)
		info, err := r.stream.Info(ctx)
		cancel()
		behind = 0
		if err == nil && r.lastRev.Load() < info.State.LastSeq {
			behind = info.State.LastSeq
		}
	}
}

// stopWatch stops w and reads what it still holds (passing it to deliver unless nil) until
// its channel is closed, at most a second: the library's goroutine may be blocked sending
// into it, and would never end.
func stopWatch(w jetstream.KeyWatcher, deliver func(jetstream.KeyValueEntry)) {
	_ = w.Stop()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e != nil && deliver != nil {
				deliver(e)
			}
		case <-t.C:
			return
		}
	}
}

// rewatch stops old (reading what it still holds) and watches from the revision after the
// last one read, retrying until it works or Close.
func (r *Replica) rewatch(old jetstream.KeyWatcher) jetstream.KeyWatcher {
	if old != nil {
		stopWatch(old, r.deliver)
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), r.j.opts.Timeout)
		w, err := r.kv.WatchAll(ctx, jetstream.ResumeFromRevision(r.lastRev.Load()+1))
		cancel()
		if err == nil {
			r.rewatchs.Add(1)
			return w
		}
		r.j.setErr(err)
		select {
		case <-r.quit:
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (r *Replica) deliver(e jetstream.KeyValueEntry) {
	key, ok := decodeKey(e.Key())
	if !ok {
		return // not written by a kemi node
	}
	re := ReplicaEntry{Key: key, Rev: e.Revision()}
	if re.Rev > r.lastRev.Load() {
		r.lastRev.Store(re.Rev)
	}
	if e.Operation() != jetstream.KeyValuePut {
		re.Deleted = true
	} else if re.Value = e.Value(); re.Value == nil {
		re.Value = []byte{}
	}
	r.applied.Add(1)
	r.apply(re)
}

// expectHdr marks an Expire's delete: its failure is expected when another node won.
const expectHdr = "Nats-Expected-Last-Subject-Sequence"

func (r *Replica) asyncAck(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
	if m == nil || m.Header.Get(expectHdr) != "" {
		return
	}
	r.acked.Add(1)
	if r.onAck == nil || !strings.HasPrefix(m.Subject, r.prefix) {
		return
	}
	if key, ok := decodeKey(m.Subject[len(r.prefix):]); ok {
		r.onAck(key, ack.Sequence)
	}
}

func (r *Replica) asyncErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	if m == nil || m.Header.Get(expectHdr) != "" {
		return
	}
	r.failed.Add(1)
	r.j.setErr(err)
	if r.onErr == nil || !strings.HasPrefix(m.Subject, r.prefix) {
		return
	}
	if key, ok := decodeKey(m.Subject[len(r.prefix):]); ok {
		r.onErr(key, err)
	}
}

// Put writes val for key (val is not kept).
func (r *Replica) Put(key string, val []byte) error {
	return r.publish(&nats.Msg{Subject: r.prefix + encodeKey(key), Data: val})
}

// Delete removes key (a delete marker, which apply receives with Deleted).
func (r *Replica) Delete(key string) error {
	m := &nats.Msg{Subject: r.prefix + encodeKey(key), Header: nats.Header{}}
	m.Header.Set("KV-Operation", "DEL")
	return r.publish(m)
}

// Expire removes key if its last change is still revision rev: every node whose timer finds
// the same expired item calls it, the first one removes it from the bucket, the others' calls
// fail quietly. Neither OnAck nor OnError is called for it.
func (r *Replica) Expire(key string, rev uint64) error {
	m := &nats.Msg{Subject: r.prefix + encodeKey(key), Header: nats.Header{}}
	m.Header.Set("KV-Operation", "DEL")
	m.Header.Set(expectHdr, strconv.FormatUint(rev, 10))
	return r.publish(m)
}

func (r *Replica) publish(m *nats.Msg) error {
	if _, err := r.js.PublishMsgAsync(m); err != nil {
		r.failed.Add(1)
		return fmt.Errorf("replica %q: publish: %w", r.name, r.j.explain(err))
	}
	return nil
}

// ReplicaState are a replica's counters, for the RPC.
type ReplicaState struct {
	Bucket  string `json:"bucket"`
	Applied int64  `json:"applied"`  // changes read from the bucket
	Acked   int64  `json:"acked"`    // writes of this node stored by the bucket
	Failed  int64  `json:"failed"`   // writes refused or not acknowledged
	Pending int    `json:"pending"`  // writes not yet acknowledged
	Rev     uint64 `json:"revision"` // the last revision read
	Rewatch int64  `json:"rewatch"`  // watches started again (a reconnection, a stall)
	Stalls  int64  `json:"stalls"`   // watches found behind the bucket by the probe
}

// State returns the replica's counters.
func (r *Replica) State() ReplicaState {
	return ReplicaState{Bucket: r.bucket, Applied: r.applied.Load(), Acked: r.acked.Load(),
		Failed: r.failed.Load(), Pending: r.js.PublishAsyncPending(), Rev: r.lastRev.Load(), Rewatch: r.rewatchs.Load(), Stalls: r.stalls.Load()}
}

// Flush waits until every write made so far was acknowledged (or failed), within ctx.
func (r *Replica) Flush(ctx context.Context) error {
	select {
	case <-r.js.PublishAsyncComplete():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("replica %q: %d writes not acknowledged: %w", r.name, r.js.PublishAsyncPending(), ctx.Err())
	}
}

// Close stops the watch; apply is not called any more once it returned.
func (r *Replica) Close() error {
	var err error
	r.once.Do(func() {
		r.unhook()
		close(r.quit)
		<-r.done
		<-r.probed
	})
	return err
}

// encodeKey makes any string a valid key-value key: bytes outside [A-Za-z0-9-] are written
// _XX (hex), and the empty string is "_".
func encodeKey(k string) string {
	if k == "" {
		return "_"
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return encodeName(k)
		}
	}
	return k
}

// decodeKey reverses encodeKey; false for a key it could not have written.
func decodeKey(s string) (string, bool) {
	if s == "_" {
		return "", true
	}
	if !strings.Contains(s, "_") {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '_' {
			b = append(b, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b = append(b, byte(n))
		i += 2
	}
	return string(b), true
}
