package binrpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"kemi/jsonrpc"
)

// DefaultPort is the TCP and UDP port of an address without one (ctl's
// DEFAULT_CTL_PORT).
const DefaultPort = "2049"

// MaxRequest is the largest request body the server reads.
const MaxRequest = 64 << 10

// Dispatcher runs one RPC method: kemi's jsonrpc.Server.
type Dispatcher interface {
	Call(ctx context.Context, method string, params ...any) (json.RawMessage, error)
}

// Addr is a parsed ctl socket address.
type Addr struct {
	Network string // "unix" (stream), "unixgram", "tcp" or "udp"
	Address string // the path, or host:port
}

// ParseAddr reads a ctl binrpc address as Kamailio's ctl does:
// unix:/path and unixs:/path (unix stream), unixd:/path (unix datagram),
// tcp:host:port, udp:host:port (port default 2049); a bare /path is unix.
func ParseAddr(s string) (Addr, error) {
	proto, rest, ok := strings.Cut(s, ":")
	if !ok {
		if strings.HasPrefix(s, "/") {
			return Addr{"unix", s}, nil
		}
		return Addr{}, fmt.Errorf("binrpc address %q: expected unix:/path, unixd:/path, tcp:host:port or udp:host:port", s)
	}
	switch strings.ToLower(proto) {
	case "unix", "unixs":
		if rest == "" {
			return Addr{}, fmt.Errorf("binrpc address %q: empty path", s)
		}
		return Addr{"unix", rest}, nil
	case "unixd":
		if rest == "" {
			return Addr{}, fmt.Errorf("binrpc address %q: empty path", s)
		}
		return Addr{"unixgram", rest}, nil
	case "tcp", "udp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			host, port = rest, DefaultPort
			if strings.Count(rest, ":") == 0 && rest != "" && strings.Trim(rest, "0123456789") == "" {
				host, port = "", rest
			}
		}
		return Addr{strings.ToLower(proto), net.JoinHostPort(host, port)}, nil
	}
	return Addr{}, fmt.Errorf("binrpc address %q: unknown protocol %q", s, proto)
}

func (a Addr) String() string {
	switch a.Network {
	case "unix":
		return "unix:" + a.Address
	case "unixgram":
		return "unixd:" + a.Address
	}
	return a.Network + ":" + a.Address
}

// Server answers binrpc requests on one address. Start listens, Stop
// closes the listener and the connections and waits for their goroutines.
type Server struct {
	addr Addr
	d    Dispatcher
	log  *slog.Logger
	mode os.FileMode

	mu     sync.Mutex
	ln     net.Listener
	pc     net.PacketConn
	conns  map[net.Conn]struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewServer returns a server for addr calling d. mode is the permission
// of a unix socket file (0 leaves the umask's); log gets errors (nil
// discards).
func NewServer(addr Addr, d Dispatcher, mode os.FileMode, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{addr: addr, d: d, log: log, mode: mode, conns: map[net.Conn]struct{}{}}
}

// Name names the server for the engine's subsystem list.
func (s *Server) Name() string { return "binrpc " + s.addr.String() }

// Addr returns the address listened on (the chosen port for port 0), or
// nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.ln != nil:
		return s.ln.Addr()
	case s.pc != nil:
		return s.pc.LocalAddr()
	}
	return nil
}

// Start listens and serves until Stop. A unix socket file left by a
// previous run is removed first, as Kamailio does.
func (s *Server) Start(ctx context.Context) error {
	if strings.HasPrefix(s.addr.Network, "unix") {
		if fi, err := os.Lstat(s.addr.Address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			_ = os.Remove(s.addr.Address)
		}
	}
	var lc net.ListenConfig
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancel = cancel
	switch s.addr.Network {
	case "unix", "tcp":
		ln, err := lc.Listen(ctx, s.addr.Network, s.addr.Address)
		if err != nil {
			cancel()
			return fmt.Errorf("binrpc listen %s: %w", s.addr, err)
		}
		s.ln = ln
		s.wg.Add(1)
		go s.accept(ctx, ln)
	default:
		pc, err := lc.ListenPacket(ctx, s.addr.Network, s.addr.Address)
		if err != nil {
			cancel()
			return fmt.Errorf("binrpc listen %s: %w", s.addr, err)
		}
		s.pc = pc
		s.wg.Add(1)
		go s.packets(ctx, pc)
	}
	if strings.HasPrefix(s.addr.Network, "unix") && s.mode != 0 {
		if err := os.Chmod(s.addr.Address, s.mode); err != nil {
			s.log.Warn("binrpc: cannot set the socket's mode", "path", s.addr.Address, "error", err)
		}
	}
	return nil
}

// Stop closes the listener and every connection, waits for the serving
// goroutines (or ctx), and removes a unix socket file.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.cancel != nil {
		s.cancel()
	}
	if s.ln != nil {
		s.ln.Close()
	}
	if s.pc != nil {
		s.pc.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.addr.Network == "unixgram" {
		_ = os.Remove(s.addr.Address) // a stream listener removes its own
	}
	return nil
}

func (s *Server) accept(ctx context.Context, ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("binrpc accept", "addr", s.addr.String(), "error", err)
				time.Sleep(10 * time.Millisecond) // guards a busy loop on EMFILE
				continue
			}
			return
		}
		s.mu.Lock()
		if ctx.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(ctx, c)
	}
}

func (s *Server) serveConn(ctx context.Context, c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	for {
		p, err := ReadPacket(c, MaxRequest)
		if err != nil {
			if err != io.EOF && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Warn("binrpc: bad request, connection closed", "addr", s.addr.String(), "error", err)
			}
			return
		}
		if _, err := c.Write(s.Answer(ctx, p).Marshal()); err != nil {
			return
		}
	}
}

func (s *Server) packets(ctx context.Context, pc net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, MaxRequest+16)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("binrpc read", "addr", s.addr.String(), "error", err)
				continue
			}
			return
		}
		p, err := ParsePacket(buf[:n])
		if err != nil || from == nil {
			s.log.Warn("binrpc: bad datagram dropped", "addr", s.addr.String(), "error", err)
			continue
		}
		if _, err := pc.WriteTo(s.Answer(ctx, p).Marshal(), from); err != nil {
			s.log.Warn("binrpc: reply not sent", "to", from.String(), "error", err)
		}
	}
}

// Answer runs a request packet and returns the reply or fault packet.
func (s *Server) Answer(ctx context.Context, p Packet) Packet {
	fault := func(code int, msg string) Packet {
		return Packet{Type: TypeFault, Cookie: p.Cookie, Body: Fault(code, msg)}
	}
	if p.Type != TypeRequest {
		return fault(400, "Bad Request")
	}
	method, params, err := ParseRequest(p.Body)
	if err != nil {
		return fault(400, "Bad Request")
	}
	res, err := s.d.Call(ctx, method, params...)
	if err != nil {
		var f *jsonrpc.Fault
		if errors.As(err, &f) {
			return fault(f.Code, f.Message)
		}
		return fault(500, err.Error())
	}
	body, err := FromJSON(res)
	if err != nil {
		return fault(500, "Internal Server Error")
	}
	return Packet{Type: TypeReply, Cookie: p.Cookie, Body: body}
}
