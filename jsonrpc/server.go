package jsonrpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults applied by NewServer to zero Options fields.
const (
	DefaultAddr         = "127.0.0.1:5071"
	DefaultPath         = "/RPC"
	DefaultMaxBody      = 1 << 20 // 1 MiB
	DefaultReadTimeout  = 10 * time.Second
	DefaultWriteTimeout = 60 * time.Second
)

// Options configure a Server. The zero value is usable: every zero field
// takes the default named beside it.
type Options struct {
	Addr             string        // listen address; default DefaultAddr ("127.0.0.1:5071"); "127.0.0.1:0" picks a port
	Path             string        // URL path served; default DefaultPath ("/RPC"); matched exactly
	AllowNonLoopback bool          // false: NewServer and Start refuse a non-loopback listen address (ErrNonLoopback)
	MaxBody          int64         // request body limit in bytes; default DefaultMaxBody (1 MiB); larger bodies get 413
	ReadTimeout      time.Duration // http.Server ReadTimeout; default DefaultReadTimeout (10 s)
	WriteTimeout     time.Duration // http.Server WriteTimeout, so also the time a handler has over HTTP; default DefaultWriteTimeout (60 s)
	Logger           *slog.Logger  // handler panics and serve errors (the package logs nothing else); nil discards
}

// Method is one RPC method. Doc is returned by system.methodHelp.
type Method struct {
	Name    string
	Doc     string
	Handler Handler
}

// Handler runs one call. Its result is marshalled with encoding/json (nil,
// or a value that marshals to null, gives {}). A returned *Fault (possibly
// wrapped) is sent as is; any other error becomes Fault{500, err.Error()}.
// ctx is the request's context over HTTP (cancelled when the client goes
// away or the server is stopped) and the caller's for Handle and Call.
type Handler func(ctx context.Context, p Params) (any, error)

type state int

const (
	stateNew state = iota
	stateStarted
	stateStopped
)

// Server is a JSON-RPC 2.0 server. Create it with NewServer; see the package
// documentation for its concurrency contract.
type Server struct {
	opts Options
	log  *slog.Logger

	mu         sync.RWMutex // guards methods, extra and listenAddr
	methods    map[string]Method
	extra      map[string]http.Handler // HandleHTTP
	listenAddr net.Addr

	life   sync.Mutex // guards the fields below; held for all of Start and Stop
	state  state
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup // the serve goroutine and the ctx watcher
}

var _ http.Handler = (*Server)(nil)

// NewServer validates opts, applies defaults and returns a server with the
// built-in methods system.listMethods and system.methodHelp registered. It
// does not listen: see Start.
func NewServer(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	if opts.MaxBody == 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if !strings.HasPrefix(opts.Path, "/") {
		return nil, fmt.Errorf("jsonrpc path %q: must start with /", opts.Path)
	}
	if opts.MaxBody < 0 {
		return nil, fmt.Errorf("jsonrpc max body %d: must be positive", opts.MaxBody)
	}
	if opts.ReadTimeout < 0 || opts.WriteTimeout < 0 {
		return nil, errors.New("jsonrpc timeouts: must be positive")
	}
	host, _, err := net.SplitHostPort(opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("jsonrpc listen address %q: %w", opts.Addr, err)
	}
	if !opts.AllowNonLoopback && !isLoopbackHost(host) {
		return nil, fmt.Errorf("jsonrpc listen address %q: %w", opts.Addr, ErrNonLoopback)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:    opts,
		log:     log.With("module", "jsonrpc"),
		methods: make(map[string]Method),
	}
	for _, m := range s.builtins() {
		if err := s.Register(m); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Register adds a method. The name must be non-empty and unused
// (ErrDuplicateMethod) and the handler non-nil. It may be called at any
// time, also while the server is serving.
func (s *Server) Register(m Method) error {
	if m.Name == "" {
		return errors.New("register method: empty name")
	}
	if m.Handler == nil {
		return fmt.Errorf("register method %q: nil handler", m.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.methods[m.Name]; dup {
		return fmt.Errorf("register method %q: %w", m.Name, ErrDuplicateMethod)
	}
	s.methods[m.Name] = m
	return nil
}

// Methods returns the registered method names, sorted.
func (s *Server) Methods() []string {
	s.mu.RLock()
	names := make([]string, 0, len(s.methods))
	for name := range s.methods {
		names = append(names, name)
	}
	s.mu.RUnlock()
	slices.Sort(names)
	return names
}

func (s *Server) lookup(name string) (Method, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.methods[name]
	return m, ok
}

// Start listens on Options.Addr and serves in a goroutine owned by the
// server. ctx bounds the server's life: when it is cancelled the listener
// and connections are closed at once (use Stop for a graceful end) and the
// handlers' contexts are cancelled. Start refuses a listener whose actual
// address is not loopback unless AllowNonLoopback is set. A server can be
// started once.
func (s *Server) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start jsonrpc server: %w", err)
	}
	s.life.Lock()
	defer s.life.Unlock()
	switch s.state {
	case stateStarted:
		return ErrStarted
	case stateStopped:
		return ErrStopped
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("start jsonrpc server: %w", err)
	}
	if !s.opts.AllowNonLoopback && !isLoopbackNetAddr(ln.Addr()) {
		ln.Close()
		return fmt.Errorf("start jsonrpc server on %s: %w", ln.Addr(), ErrNonLoopback)
	}
	base, cancel := context.WithCancel(ctx)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: min(5*time.Second, s.opts.ReadTimeout),
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return base },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.srv, s.cancel, s.state = srv, cancel, stateStarted
	s.mu.Lock()
	s.listenAddr = ln.Addr()
	s.mu.Unlock()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("jsonrpc serve failed", "addr", ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		<-base.Done()
		srv.Close()
	}()
	return nil
}

// Addr is the address the server listens (or listened) on, useful with
// port 0; nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.RLock() // not s.life: a handler may ask while Stop waits for it
	defer s.mu.RUnlock()
	return s.listenAddr
}

// Stop shuts the HTTP server down gracefully: it stops accepting, lets
// in-flight calls finish until ctx is done, then closes what is left and
// returns ctx's error. It waits for the server's goroutines. Stop on a
// server that is not serving returns nil.
func (s *Server) Stop(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.state != stateStarted {
		return nil
	}
	s.state = stateStopped
	err := s.srv.Shutdown(ctx)
	s.cancel() // handlers still running see their context cancelled; the watcher closes srv
	s.wg.Wait()
	if err != nil {
		return fmt.Errorf("stop jsonrpc server: %w", err)
	}
	return nil
}

// HandleHTTP serves h on path beside JSON-RPC (the xhttp_prom module's
// /metrics), with none of the JSON-RPC checks: h is on its own. It may be
// called at any time.
func (s *Server) HandleHTTP(path string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.extra == nil {
		s.extra = map[string]http.Handler{}
	}
	s.extra[path] = h
}

// ServeHTTP serves JSON-RPC on Options.Path: POST only (405 otherwise), body
// of type application/json (415 otherwise), at most MaxBody bytes (413).
// While AllowNonLoopback is false the Host header must name a loopback host
// (403 otherwise). Start uses it; it is exported for httptest and for
// mounting the server in another mux.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.extra[r.URL.Path]
	s.mu.RUnlock()
	if h != nil {
		h.ServeHTTP(w, r)
		return
	}
	if r.URL.Path != s.opts.Path {
		writeHTTPError(w, http.StatusNotFound, "Not Found: path "+s.opts.Path)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeHTTPError(w, http.StatusMethodNotAllowed, "Method Not Allowed: use POST")
		return
	}
	if !s.opts.AllowNonLoopback && !loopbackHostHeader(r.Host) {
		writeHTTPError(w, http.StatusForbidden, "Forbidden: Host must be a loopback name")
		return
	}
	if !isJSONContentType(r.Header.Get("Content-Type")) {
		writeHTTPError(w, http.StatusUnsupportedMediaType, "Unsupported Media Type: use application/json")
		return
	}
	tooLarge := fmt.Sprintf("Request Entity Too Large: body exceeds %d bytes", s.opts.MaxBody)
	if r.ContentLength > s.opts.MaxBody {
		writeHTTPError(w, http.StatusRequestEntityTooLarge, tooLarge)
		return
	}
	body, err := readBody(w, r, s.opts.MaxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeHTTPError(w, http.StatusRequestEntityTooLarge, tooLarge)
			return
		}
		writeHTTPError(w, http.StatusBadRequest, "Bad Request: reading body: "+err.Error())
		return
	}
	reply, status := s.handle(r.Context(), body)
	if reply == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, status, reply)
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	rd := http.MaxBytesReader(w, r.Body, limit)
	defer rd.Close()
	return io.ReadAll(rd)
}

// writeHTTPError answers a transport-level problem with a JSON-RPC error
// (code -32600, id null) and the given HTTP status.
func writeHTTPError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, appendError(nil, CodeInvalidRequest, msg, nil))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// isJSONContentType accepts application/json with optional parameters
// (charset) and any letter case.
func isJSONContentType(ct string) bool {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}

// isLoopbackHost reports whether a listen host is "localhost" or a loopback
// IP literal. An empty host (all interfaces) is not loopback.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func isLoopbackNetAddr(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.IsLoopback()
	}
	host, _, err := net.SplitHostPort(a.String())
	return err == nil && isLoopbackHost(host)
}

// loopbackHostHeader checks an HTTP Host header (host or host:port, IPv6 in
// brackets). Refusing other names defeats DNS rebinding from a browser.
func loopbackHostHeader(h string) bool {
	host := h
	if hh, _, err := net.SplitHostPort(h); err == nil {
		host = hh
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	}
	return isLoopbackHost(strings.TrimSuffix(host, "."))
}

// Transport is one more way in to a Server's methods (the ctl module's
// binrpc sockets, the jsonrpcs FIFO and datagram socket): the engine starts
// and stops it with the HTTP listener.
type Transport interface {
	Name() string
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}
