package jsonrpc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MaxDatagram is the largest request a datagram transport reads
// (Kamailio's JSONRPC_DGRAM_BUF_SIZE).
const MaxDatagram = 65456

// replyOpenTries and replyOpenWait bound how long the FIFO transport waits
// for a client's reply FIFO to get its reader (kamctl starts `cat` in the
// background just before it writes the request).
const (
	replyOpenTries = 100
	replyOpenWait  = 20 * time.Millisecond
)

// FIFO serves JSON-RPC over a named pipe as Kamailio's jsonrpcs does: each
// request document carries "reply_name", the name of a FIFO in the reply
// directory where the reply is written (kamctl's way). It is a Transport.
type FIFO struct {
	s        *Server
	path     string
	replyDir string
	mode     os.FileMode
	log      *slog.Logger

	mu     sync.Mutex
	f      *os.File
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewFIFO returns the FIFO transport of s at path; replies go to FIFOs in
// replyDir (Kamailio's default "/tmp/"); mode is the FIFO's permission.
func NewFIFO(s *Server, path, replyDir string, mode os.FileMode, log *slog.Logger) *FIFO {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &FIFO{s: s, path: path, replyDir: replyDir, mode: mode, log: log.With("transport", "fifo")}
}

// Name names the transport.
func (t *FIFO) Name() string { return "jsonrpc fifo " + t.path }

// Start makes the FIFO (replacing a FIFO left by a previous run) and
// serves it until Stop.
func (t *FIFO) Start(ctx context.Context) error {
	if fi, err := os.Lstat(t.path); err == nil {
		if fi.Mode()&os.ModeNamedPipe == 0 {
			return fmt.Errorf("jsonrpc fifo %q: exists and is not a FIFO", t.path)
		}
		_ = os.Remove(t.path)
	}
	if err := syscall.Mkfifo(t.path, uint32(t.mode.Perm())); err != nil {
		return fmt.Errorf("jsonrpc fifo %q: %w", t.path, err)
	}
	_ = os.Chmod(t.path, t.mode.Perm()) // past the umask
	// Read and write: the FIFO never reads EOF when a client closes it.
	f, err := os.OpenFile(t.path, os.O_RDWR, 0)
	if err != nil {
		os.Remove(t.path)
		return fmt.Errorf("jsonrpc fifo %q: %w", t.path, err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	t.mu.Lock()
	t.f, t.cancel = f, cancel
	t.mu.Unlock()
	t.wg.Add(1)
	go t.serve(ctx, f)
	return nil
}

// Stop closes and removes the FIFO and waits for the requests in progress.
func (t *FIFO) Stop(ctx context.Context) error {
	t.mu.Lock()
	if t.cancel != nil {
		t.cancel()
	}
	if t.f != nil {
		t.f.Close()
		os.Remove(t.path)
		t.f = nil
	}
	t.mu.Unlock()
	return waitGroup(ctx, &t.wg)
}

func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *FIFO) serve(ctx context.Context, f *os.File) {
	defer t.wg.Done()
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		doc, err := readDocument(r, MaxDatagram)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			t.log.Warn("jsonrpc fifo: bad request skipped", "error", err)
			continue
		}
		t.handle(ctx, doc)
	}
}

// readDocument reads one JSON object from r as Kamailio does: from the
// first '{' to its matching '}', braces inside strings ignored.
func readDocument(r *bufio.Reader, limit int) ([]byte, error) {
	var doc []byte
	depth, inStr, esc := 0, false, false
	for {
		c, err := r.ReadByte()
		if err != nil {
			return nil, err
		}
		if depth == 0 && c != '{' {
			continue // whitespace between documents
		}
		doc = append(doc, c)
		if len(doc) > limit {
			return nil, fmt.Errorf("request larger than %d bytes", limit)
		}
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{':
			depth++
		case c == '}':
			depth--
			if depth == 0 {
				return doc, nil
			}
		}
	}
}

func (t *FIFO) handle(ctx context.Context, doc []byte) {
	var hdr struct {
		ReplyName string `json:"reply_name"`
	}
	if err := json.Unmarshal(doc, &hdr); err != nil || hdr.ReplyName == "" {
		t.log.Warn("jsonrpc fifo: request without reply_name dropped")
		return
	}
	name := hdr.ReplyName
	if strings.Contains(name, "/") || name == "." || name == ".." {
		t.log.Warn("jsonrpc fifo: reply_name must be a file name in the reply directory", "reply_name", name)
		return
	}
	reply := t.s.Handle(ctx, doc)
	if reply == nil {
		return
	}
	path := filepath.Join(t.replyDir, name)
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.log.Warn("jsonrpc fifo: reply FIFO missing", "path", path, "error", err)
		return
	}
	var w *os.File
	for i := 0; ; i++ {
		// Non-blocking: a FIFO without a reader fails (ENXIO) instead of
		// blocking the transport.
		w, err = os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil || i == replyOpenTries || !errors.Is(err, syscall.ENXIO) {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(replyOpenWait):
		}
	}
	if err != nil {
		t.log.Warn("jsonrpc fifo: cannot open the reply FIFO", "path", path, "error", err)
		return
	}
	defer w.Close()
	w.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.Write(append(reply, '\n')); err != nil {
		t.log.Warn("jsonrpc fifo: reply not written", "path", path, "error", err)
	}
}

// Datagram serves JSON-RPC over a unix datagram or UDP socket as
// Kamailio's jsonrpcs does: one request per datagram, the reply sent back
// to its sender. It is a Transport.
type Datagram struct {
	s       *Server
	network string // "unixgram" or "udp"
	addr    string
	mode    os.FileMode
	log     *slog.Logger

	mu     sync.Mutex
	pc     net.PacketConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// ParseDgramSocket reads jsonrpcs' dgram_socket: "udp:IP:port" or a unix
// socket path (relative paths are under runDir, as Kamailio's runtime_dir).
func ParseDgramSocket(v, runDir string) (network, addr string, err error) {
	if rest, ok := strings.CutPrefix(v, "udp:"); ok {
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("jsonrpcs dgram_socket %q: %w", v, err)
		}
		return "udp", rest, nil
	}
	v = strings.TrimPrefix(v, "unix:")
	if v == "" {
		return "", "", fmt.Errorf("jsonrpcs dgram_socket %q: empty path", v)
	}
	if !filepath.IsAbs(v) {
		v = filepath.Join(runDir, v)
	}
	return "unixgram", v, nil
}

// NewDatagram returns the datagram transport of s on network ("unixgram"
// or "udp") and addr; mode is a unix socket file's permission.
func NewDatagram(s *Server, network, addr string, mode os.FileMode, log *slog.Logger) *Datagram {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Datagram{s: s, network: network, addr: addr, mode: mode, log: log.With("transport", "dgram")}
}

// Name names the transport.
func (t *Datagram) Name() string { return "jsonrpc dgram " + t.network + ":" + t.addr }

// LocalAddr is the bound address (nil before Start).
func (t *Datagram) LocalAddr() net.Addr {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pc == nil {
		return nil
	}
	return t.pc.LocalAddr()
}

// Start binds the socket (replacing a unix socket file left by a previous
// run) and serves it until Stop.
func (t *Datagram) Start(ctx context.Context) error {
	if t.network == "unixgram" {
		if fi, err := os.Lstat(t.addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(t.addr)
		}
	}
	var lc net.ListenConfig
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	pc, err := lc.ListenPacket(ctx, t.network, t.addr)
	if err != nil {
		cancel()
		return fmt.Errorf("jsonrpc dgram socket %s:%s: %w", t.network, t.addr, err)
	}
	if t.network == "unixgram" && t.mode != 0 {
		_ = os.Chmod(t.addr, t.mode.Perm())
	}
	t.mu.Lock()
	t.pc, t.cancel = pc, cancel
	t.mu.Unlock()
	t.wg.Add(1)
	go t.serve(ctx, pc)
	return nil
}

// Stop closes the socket (removing a unix socket's file) and waits.
func (t *Datagram) Stop(ctx context.Context) error {
	t.mu.Lock()
	if t.cancel != nil {
		t.cancel()
	}
	if t.pc != nil {
		t.pc.Close()
		if t.network == "unixgram" {
			os.Remove(t.addr)
		}
		t.pc = nil
	}
	t.mu.Unlock()
	return waitGroup(ctx, &t.wg)
}

func (t *Datagram) serve(ctx context.Context, pc net.PacketConn) {
	defer t.wg.Done()
	buf := make([]byte, MaxDatagram)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("jsonrpc dgram read", "error", err)
			continue
		}
		reply := t.s.Handle(ctx, buf[:n])
		if reply == nil || from == nil {
			continue // a notification, or an unbound unix client
		}
		if _, err := pc.WriteTo(reply, from); err != nil {
			t.log.Warn("jsonrpc dgram: reply not sent", "to", from.String(), "error", err)
		}
	}
}
