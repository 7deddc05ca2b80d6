package queues

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// This file is the only one that knows NATS.

// JetStreamOptions configure OpenJetStream. The zero value of every field is a valid default.
type JetStreamOptions struct {
	// Replicas of every stream (1, 3 or 5 on a cluster); <= 0 means 1.
	Replicas int
	// AckWait is how long a taken item (Queue.Take) stays invisible before JetStream delivers
	// it again to any node; <= 0 means 30 s.
	AckWait time.Duration
	// Timeout bounds one request to JetStream (a publish waiting for its acknowledgement, a
	// fetch's acknowledgement, a size query); <= 0 means 2 s.
	Timeout time.Duration
	// Name is the client name shown by the NATS server (e.g. "kemi host:port").
	Name string
}

// JetStream is a connection to a NATS server or cluster with JetStream; Registry.Connect makes
// every durable queue (DBModeDurable) a stream on it. Safe for concurrent use.
//
// The connection reconnects forever (every 250 ms, to any server of the list and those the
// cluster announces). While it is down, a publish fails at once rather than be buffered and
// sent later, so an add that returns an error was not stored by this call.
type JetStream struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	opts JetStreamOptions
	urls string

	disconnects, reconnects atomic.Int64
	lastErr                 atomic.Pointer[string]

	hookMu  sync.Mutex
	hooks   map[int]func() // called after each reconnection (OnReconnect)
	hookSeq int
}

// jsConsumer is the one durable pull consumer every node shares on a queue's stream: a work
// queue stream hands each message to one fetch request, whichever node sent it.
const jsConsumer = "kemi"

// ParseNATSURLs checks a db_url of the nats scheme: one or more "nats://host:port" separated by
// commas (blanks around them ignored). It returns the URLs as nats.Connect takes them. Errors
// name the offending URL without its user information.
func ParseNATSURLs(s string) (string, error) {
	var out []string
	for _, u := range strings.Split(s, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			return "", errors.New("empty url in the list")
		}
		p, err := url.Parse(u)
		if err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // url.Error repeats the url, password included
			}
			return "", fmt.Errorf("url %q: %v", redactRaw(u), err)
		}
		shown := p.Redacted()
		switch {
		case !strings.EqualFold(p.Scheme, "nats") && !strings.EqualFold(p.Scheme, "tls"):
			return "", fmt.Errorf("url %q: scheme %q, want nats", shown, p.Scheme)
		case p.Hostname() == "":
			return "", fmt.Errorf("url %q: no host", shown)
		case p.Path != "" && p.Path != "/", p.RawQuery != "", p.Fragment != "":
			return "", fmt.Errorf("url %q: only nats://host:port is accepted", shown)
		}
		if port := p.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return "", fmt.Errorf("url %q: bad port %q", shown, port)
			}
		}
		out = append(out, u)
	}
	return strings.Join(out, ","), nil
}

// redactRaw hides the user information of a url that does not parse.
func redactRaw(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = "xxxxx@" + rest[i+1:]
	}
	return scheme + "://" + rest
}

// IsNATSURL says whether a db_url names NATS (scheme nats://) rather than SQLite.
func IsNATSURL(s string) bool {
	scheme, _, ok := strings.Cut(strings.TrimSpace(s), "://")
	return ok && (strings.EqualFold(scheme, "nats") || strings.EqualFold(scheme, "tls"))
}

// OpenJetStream connects to the NATS servers of urls (see ParseNATSURLs) and checks that
// JetStream answers, within ctx. Close it after the last use.
func OpenJetStream(ctx context.Context, urls string, o JetStreamOptions) (*JetStream, error) {
	urls, err := ParseNATSURLs(urls)
	if err != nil {
		return nil, err
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.AckWait <= 0 {
		o.AckWait = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	j := &JetStream{opts: o, urls: urls}
	j.nc, err = nats.Connect(urls,
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(-1), // fail a publish while disconnected: never sent late
		nats.RetryOnFailedConnect(true),
		nats.Timeout(o.Timeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			j.disconnects.Add(1)
			if err != nil {
				j.setErr(err)
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			j.reconnects.Add(1)
			j.hookMu.Lock()
			for _, f := range j.hooks {
				f()
			}
			j.hookMu.Unlock()
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { j.setErr(err) }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	j.js, err = jetstream.New(j.nc)
	if err != nil {
		j.nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	// Wait for the first connection and JetStream, as a database that cannot be used fails
	// the start.
	for {
		actx, cancel := context.WithTimeout(ctx, o.Timeout)
		_, err = j.js.AccountInfo(actx)
		cancel()
		if err == nil {
			return j, nil
		}
		select {
		case <-ctx.Done():
			j.nc.Close()
			return nil, fmt.Errorf("jetstream at %s: %w", j.Servers(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// OnReconnect calls f (which must not block) after each reconnection, until remove is
// called.
func (j *JetStream) OnReconnect(f func()) (remove func()) {
	j.hookMu.Lock()
	defer j.hookMu.Unlock()
	if j.hooks == nil {
		j.hooks = map[int]func(){}
	}
	j.hookSeq++
	id := j.hookSeq
	j.hooks[id] = f
	return func() {
		j.hookMu.Lock()
		delete(j.hooks, id)
		j.hookMu.Unlock()
	}
}

// errDisconnected wraps what nats.go reports for a request made while the connection is down
// (with reconnect buffering off, "outbound buffer limit exceeded").
var errDisconnected = errors.New("not connected to nats (reconnecting)")

// explain makes an error of a call made while the connection is down say so.
func (j *JetStream) explain(err error) error {
	if errors.Is(err, nats.ErrReconnectBufExceeded) || !j.nc.IsConnected() {
		return fmt.Errorf("%w: %w", errDisconnected, err)
	}
	return err
}

func (j *JetStream) setErr(err error) {
	s := err.Error()
	j.lastErr.Store(&s)
}

// Servers returns the configured URLs with any user information removed.
func (j *JetStream) Servers() string {
	var out []string
	for _, u := range strings.Split(j.urls, ",") {
		if p, err := url.Parse(u); err == nil {
			u = p.Redacted()
		}
		out = append(out, u)
	}
	return strings.Join(out, ",")
}

// JetStreamState is the connection's state, for the RPC.
type JetStreamState struct {
	Status      string `json:"status"`       // CONNECTED, RECONNECTING, CLOSED, ...
	Server      string `json:"server"`       // the server connected to, "" when none
	Servers     string `json:"servers"`      // the configured URLs
	Disconnects int64  `json:"disconnects"`  // connections lost since start
	Reconnects  int64  `json:"reconnects"`   // connections regained since start
	LastError   string `json:"last_error"`   // the last asynchronous error, "" when none
	Replicas    int    `json:"replicas"`     // replicas of the streams this node created
	AckWaitMS   int64  `json:"ack_wait_ms"`  // redelivery delay of a taken item
	TimeoutMS   int64  `json:"timeout_ms"`   // bound of one request
	Connected   bool   `json:"connected"`    // Status == CONNECTED
	ServerAddrs int    `json:"server_addrs"` // servers known (configured and discovered)
}

// State returns the connection's state.
func (j *JetStream) State() JetStreamState {
	st := JetStreamState{
		Status:      j.nc.Status().String(),
		Server:      j.nc.ConnectedUrlRedacted(),
		Servers:     j.Servers(),
		Disconnects: j.disconnects.Load(),
		Reconnects:  j.reconnects.Load(),
		Replicas:    j.opts.Replicas,
		AckWaitMS:   j.opts.AckWait.Milliseconds(),
		TimeoutMS:   j.opts.Timeout.Milliseconds(),
		Connected:   j.nc.IsConnected(),
		ServerAddrs: len(j.nc.Servers()),
	}
	if e := j.lastErr.Load(); e != nil {
		st.LastError = *e
	}
	return st
}

// Close closes the connection. Items taken and not acknowledged are delivered again after
// AckWait.
func (j *JetStream) Close() error {
	j.nc.Close()
	return nil
}

// StreamName is the JetStream stream of a queue: "KEMI_MQ_" and the name with every byte
// outside [A-Za-z0-9-] written as _XX (hex), so any queue name gives a valid, distinct stream
// name. Its subject is "kemi.mq." and the same encoding.
func StreamName(queue string) string { return "KEMI_MQ_" + encodeName(queue) }

func streamSubject(queue string) string { return "kemi.mq." + encodeName(queue) }

func encodeName(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// keyHeader carries an item's key; the value is the message body.
const keyHeader = "Kemi-Mq-Key"

// jsQueue is one queue kept in a JetStream stream.
type jsQueue struct {
	j       *JetStream
	name    string
	subject string
	stream  jetstream.Stream
	cons    jetstream.Consumer
}

// stream creates or updates the queue's stream and its consumer.
func (j *JetStream) stream(ctx context.Context, o Options) (*jsQueue, error) {
	maxMsgs := int64(-1)
	if o.Size > 0 {
		maxMsgs = int64(o.Size)
	}
	cfg := jetstream.StreamConfig{
		Name:        StreamName(o.Name),
		Description: "kemi mqueue " + strconv.Quote(o.Name),
		Subjects:    []string{streamSubject(o.Name)},
		Retention:   jetstream.WorkQueuePolicy,
		MaxMsgs:     maxMsgs,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    j.opts.Replicas,
	}
	var s jetstream.Stream
	err := j.retry(ctx, func(rctx context.Context) (err error) {
		s, err = j.js.CreateOrUpdateStream(rctx, cfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("stream %q: %w", cfg.Name, err)
	}
	var c jetstream.Consumer
	err = j.retry(ctx, func(rctx context.Context) (err error) {
		c, err = s.CreateOrUpdateConsumer(rctx, jetstream.ConsumerConfig{
			Durable:       jsConsumer,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       j.opts.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: -1,
			MaxWaiting:    4096,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("stream %q: consumer %q: %w", cfg.Name, jsConsumer, err)
	}
	return &jsQueue{j: j, name: o.Name, subject: cfg.Subjects[0], stream: s, cons: c}, nil
}

// retry runs fn, each try bounded by the request timeout, until it succeeds or ctx ends: a
// cluster may still be electing its leaders when the nodes start.
func (j *JetStream) retry(ctx context.Context, fn func(context.Context) error) error {
	for {
		rctx, cancel := context.WithTimeout(ctx, j.opts.Timeout)
		err := fn(rctx)
		cancel()
		if err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && apiErr.Code == 400 && !transient(apiErr.ErrorCode) {
			return err // a configuration the server refuses: retrying will not help
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// transient says whether a 400 from the JetStream API is a cluster still forming (no meta
// leader yet, not all peers known) rather than a refused configuration.
func transient(code jetstream.ErrorCode) bool {
	switch code {
	case 10005, // no suitable peers for placement
		10008, // jetstream cluster not available
		10009: // jetstream cluster required
		return true
	}
	return false
}

// add publishes the item and waits for JetStream's acknowledgement (stored by the stream's
// replicas).
func (r *jsQueue) add(key, val string) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.j.opts.Timeout)
	defer cancel()
	m := &nats.Msg{Subject: r.subject, Data: []byte(val), Header: nats.Header{}}
	if key != "" {
		m.Header[keyHeader] = []string{key}
	}
	if _, err := r.j.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("add to queue %q: publish: %w", r.name, r.j.explain(err))
	}
	return nil
}

func itemOf(m jetstream.Msg) Item {
	return Item{Key: m.Headers().Get(keyHeader), Val: string(m.Data())}
}

// next takes the next message: at once when wait <= 0, else within wait. ErrEmpty when none.
func (r *jsQueue) next(wait time.Duration) (jetstream.Msg, error) {
	var (
		b   jetstream.MessageBatch
		err error
	)
	if wait <= 0 {
		b, err = r.cons.FetchNoWait(1)
	} else {
		b, err = r.cons.Fetch(1, jetstream.FetchMaxWait(wait))
	}
	m, err := r.first(b, err)
	if err == ErrEmpty && wait <= 0 && r.undelivered() {
		// The stream acknowledged the item's publish before its consumer
		// counted it (the server signals the consumer asynchronously), so
		// a no-wait pull can find nothing while an item is stored; a
		// waiting pull is answered once the consumer has it.
		m, err = r.first(r.cons.Fetch(1, jetstream.FetchMaxWait(r.j.opts.Timeout)))
	}
	return m, err
}

// first is the message of a batch of one, ErrEmpty when it has none.
func (r *jsQueue) first(b jetstream.MessageBatch, err error) (jetstream.Msg, error) {
	if err != nil {
		return nil, fmt.Errorf("take from queue %q: %w", r.name, r.j.explain(err))
	}
	for m := range b.Messages() {
		for range b.Messages() { // batch of 1: drain for completeness
		}
		return m, nil
	}
	if err := b.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, jetstream.ErrNoMessages) {
		return nil, fmt.Errorf("take from queue %q: %w", r.name, err)
	}
	return nil, ErrEmpty
}

// undelivered says whether the stream holds an item the consumer has not
// delivered yet: its newest message is past the consumer's last delivered
// one (items only leave a work queue by acknowledgement, after delivery,
// or by eviction of the oldest, so the newest is there while any is).
func (r *jsQueue) undelivered() bool {
	ctx, cancel := context.WithTimeout(context.Background(), r.j.opts.Timeout)
	defer cancel()
	si, err := r.stream.Info(ctx)
	if err != nil || si.State.Msgs == 0 {
		return false
	}
	ci, err := r.cons.Info(ctx)
	return err == nil && si.State.LastSeq > ci.Delivered.Stream
}

// fetch takes the next message and acknowledges it before returning it (at most once): when
// the acknowledgement is not confirmed, the error is returned and the item is delivered again
// after AckWait, to whichever node fetches then.
func (r *jsQueue) fetch() (Item, error) {
	m, err := r.next(0)
	if err != nil {
		return Item{}, err
	}
	if err := r.ack(m); err != nil {
		return Item{}, fmt.Errorf("fetch from queue %q: %w", r.name, err)
	}
	return itemOf(m), nil
}

// ack acknowledges m and waits for the server's confirmation.
func (r *jsQueue) ack(m jetstream.Msg) error {
	ctx, cancel := context.WithTimeout(context.Background(), r.j.opts.Timeout)
	defer cancel()
	if err := m.DoubleAck(ctx); err != nil {
		return fmt.Errorf("ack: %w", r.j.explain(err))
	}
	return nil
}

// size is the number of messages in the stream: items not yet taken and items taken and not
// yet acknowledged. It is eventually consistent: an acknowledged message leaves the stream a
// moment (a replication round, a few ms) after the acknowledgement was confirmed, and is
// counted until then.
func (r *jsQueue) size() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.j.opts.Timeout)
	defer cancel()
	info, err := r.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("size of queue %q: %w", r.name, r.j.explain(err))
	}
	return int(info.State.Msgs), nil
}

// snapshot reads the stream's messages without taking them, oldest first.
func (r *jsQueue) snapshot() ([]Item, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.j.opts.Timeout)
	defer cancel()
	info, err := r.stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	var items []Item
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := r.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		items = append(items, Item{Key: m.Header.Get(keyHeader), Val: string(m.Data)})
	}
	return items, nil
}

// Connect makes every durable queue (DBModeDurable) of r a stream on j, creating or updating
// the stream and its consumer, retried until ctx ends (a cluster may still be electing its
// leaders). Other queues stay in memory; Load must not be called for durable queues then.
// Call it once, before traffic starts.
func (r *Registry) Connect(ctx context.Context, j *JetStream) error {
	for _, q := range r.list {
		if q.opts.DBMode != DBModeDurable {
			continue
		}
		if q.opts.AddMode != AddModeAppend {
			return fmt.Errorf("queue %q: addmode %d is not supported on jetstream", q.opts.Name, q.opts.AddMode)
		}
		rq, err := j.stream(ctx, q.opts)
		if err != nil {
			return fmt.Errorf("queue %q: %w", q.opts.Name, err)
		}
		q.mu.Lock()
		q.remote = rq
		q.mu.Unlock()
	}
	return nil
}

// Backend names where the queue's items are: "memory", "store" (a durable queue armed by
// Load: the journal) or "jetstream:STREAM".
func (q *Queue) Backend() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.remote != nil:
		return "jetstream:" + StreamName(q.opts.Name)
	case q.journal != nil:
		return "store"
	}
	return "memory"
}
