// Command floor is the UDP OPTIONS responder that bench/floor.sh measures
// kemi against: the least CPU a Go process can spend per OPTIONS, so that
// kemi's CPU per request splits into syscalls, parsing, Lua and the reply.
//
// Usage:
//
//	floor -listen 127.0.0.1:15060 -mode raw|parse|kparse|sipgo
//
// Modes (each answers every datagram with one 200 through the same socket,
// one goroutine, one reused read buffer, a 4 MB receive buffer and GOGC=400
// like kemi run):
//
//	raw    parses nothing: the reply is "SIP/2.0 200 OK" followed by the
//	       request's own header lines (sipp matches on Call-ID); only the
//	       end of the request line is searched for. The syscall floor.
//	parse  parses the datagram with sipgo's parser (what kemi's UDP
//	       reader did before issue 20), then answers as raw does: the
//	       parse cost.
//	kparse parses the datagram with kemi's parser (sipnet.Parse, what
//	       kemi's UDP reader does: the same message value as sipgo's, far
//	       fewer allocations), then answers as raw does.
//	sipgo  parses with sipgo and answers with sip.NewResponseFromRequest
//	       serialised by sipgo into a reused buffer: parse + a sipgo reply.
//	block  answers as raw does, but reads as Kamailio does: a blocking
//	       recvfrom on the socket (set to blocking mode) and a sendto to
//	       the address it returned, both raw system calls on one locked
//	       thread: no netpoller, so no EAGAIN read and no epoll_wait per
//	       datagram (2 system calls per request instead of 4).
//	batch  answers as raw does through kemi's UDP socket path itself
//	       (sipnet.SocketPath, udp_linux.go): recvmmsg of up to 16 datagrams per call
//	       through the netpoller, a sendto per answer, both as raw system
//	       calls (no runtime syscall state, which wakes Go's sysmon thread).
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/emiago/sipgo/sip"

	"kemi/sipnet"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:15060", "UDP address to answer on")
	mode := flag.String("mode", "raw", "raw, parse, kparse, sipgo, block or batch")
	flag.Parse()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400) // as kemi run does
	}
	addr, err := netip.ParseAddrPort(*listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor: -listen:", err)
		os.Exit(2)
	}
	var answer func(req []byte, out *bytes.Buffer) bool
	switch *mode {
	case "raw", "block", "batch":
		answer = answerRaw
	case "parse":
		p := sip.NewParser()
		answer = func(req []byte, out *bytes.Buffer) bool {
			if _, err := p.ParseSIP(req); err != nil {
				return false
			}
			return answerRaw(req, out)
		}
	case "kparse":
		answer = func(req []byte, out *bytes.Buffer) bool {
			if _, err := sipnet.Parse(req); err != nil {
				return false
			}
			return answerRaw(req, out)
		}
	case "sipgo":
		p := sip.NewParser()
		answer = func(req []byte, out *bytes.Buffer) bool {
			m, err := p.ParseSIP(req)
			if err != nil {
				return false
			}
			r, ok := m.(*sip.Request)
			if !ok {
				return false
			}
			sip.NewResponseFromRequest(r, 200, "OK", nil).StringWrite(out)
			return true
		}
	default:
		fmt.Fprintln(os.Stderr, "floor: -mode must be raw, parse, kparse, sipgo, block or batch")
		os.Exit(2)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
	conn.SetReadBuffer(udpBuffer)
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
		<-c
		conn.Close()
		if *mode == "block" {
			os.Exit(0) // closing does not wake a blocked recvfrom
		}
	}()
	fmt.Fprintf(os.Stderr, "floor: mode %s on udp:%s\n", *mode, addr)
	switch *mode {
	case "block", "batch":
		serve := serveBatch
		if *mode == "block" {
			serve = serveBlocking
		}
		if err := serve(conn); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	buf := make([]byte, 65535)
	var out bytes.Buffer
	for {
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if opErr, ok := err.(*net.OpError); ok && !opErr.Temporary() {
				return
			}
			continue
		}
		out.Reset()
		if answer(buf[:n], &out) {
			conn.WriteToUDPAddrPort(out.Bytes(), src)
		}
	}
}

// serveBatch is mode batch: kemi's UDP socket path itself
// (sipnet.SocketPath: recvmmsg batches through the netpoller on Linux, raw
// sendto), answering as answerRaw does.
func serveBatch(conn *net.UDPConn) error {
	p := sipnet.NewSocketPath(conn)
	var out bytes.Buffer
	err := p.Serve(func(req []byte, src netip.AddrPort) {
		out.Reset()
		if answerRaw(req, &out) {
			p.Write(out.Bytes(), src)
		}
	})
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// udpBuffer is the socket buffer size kemi asks for (sipnet's udpBuffer).
const udpBuffer = 4 << 20

var statusLine = []byte("SIP/2.0 200 OK")

// answerRaw writes the status line and every line of req after its request
// line (headers, blank line, body) to out.
func answerRaw(req []byte, out *bytes.Buffer) bool {
	i := bytes.IndexByte(req, '\n')
	if i < 0 || bytes.HasPrefix(req, []byte("SIP/")) {
		return false // not a request
	}
	out.Write(statusLine)
	out.WriteString("\r\n")
	out.Write(req[i+1:])
	return true
}
