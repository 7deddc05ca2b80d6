// Command tlsload sends SIP OPTIONS over TLS connections at a fixed rate and
// counts the 200 replies: the OPTIONS-over-TLS load generator of
// bench/tls-options.sh (Debian's sipp is built without OpenSSL, so it has
// no -t l1).
//
// Usage:
//
//	tlsload -addr 127.0.0.1:5061 [-conns 2] [-rate 5000] [-secs 10] [-wait 5s]
//
// Each connection is opened (TLS 1.2+, the server's certificate is not
// verified: it is the benchmark's own) before the clock starts, then sends
// its share of the rate, paced in 1 ms ticks, while a reader counts the
// replies (any status) by Call-ID. After -secs it waits up to -wait for the
// outstanding replies. It prints one line of key=value pairs:
//
//	sent=N ok=N failed=N elapsed=S rate=R
//
// where failed is sent minus 200s, elapsed is from the first request to the
// last reply and rate is ok/elapsed.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:5061", "the engine's tls listener")
	conns := flag.Int("conns", 2, "TLS connections")
	rate := flag.Int("rate", 5000, "requests per second, all connections together")
	secs := flag.Int("secs", 10, "seconds of sending")
	wait := flag.Duration("wait", 5*time.Second, "how long to wait for outstanding replies")
	flag.Parse()
	if *conns < 1 || *rate < 1 || *secs < 1 {
		fmt.Fprintln(os.Stderr, "tlsload: -conns, -rate and -secs must be positive")
		os.Exit(2)
	}
	res, err := run(*addr, *conns, *rate, time.Duration(*secs)*time.Second, *wait)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tlsload:", err)
		os.Exit(1)
	}
	fmt.Println(res)
}

// result is what one run measured.
type result struct {
	sent, ok int64
	elapsed  time.Duration
}

func (r result) String() string {
	rate := 0.0
	if r.elapsed > 0 {
		rate = float64(r.ok) / r.elapsed.Seconds()
	}
	return fmt.Sprintf("sent=%d ok=%d failed=%d elapsed=%.3f rate=%.0f", r.sent, r.ok, r.sent-r.ok, r.elapsed.Seconds(), rate)
}

func run(addr string, nconns, rate int, dur, wait time.Duration) (result, error) {
	cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // the benchmark's own certificate
	conns := make([]*tls.Conn, nconns)
	for i := range conns {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			return result{}, err
		}
		defer c.Close()
		conns[i] = c
	}
	var sent, ok, got atomic.Int64 // got: replies of any status
	var last atomic.Int64          // unix nanos of the last reply
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range conns {
		share := rate / nconns
		if i < rate%nconns {
			share++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			send(c, i, share, start, dur, &sent)
		}()
		go read(c, &ok, &got, &last)
	}
	wg.Wait()
	deadline := time.Now().Add(wait)
	for got.Load() < sent.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	end := time.Unix(0, last.Load())
	if end.Before(start) {
		end = start
	}
	return result{sent: sent.Load(), ok: ok.Load(), elapsed: end.Sub(start)}, nil
}

// send writes share requests a second on c for dur, paced by a 1 ms ticker.
func send(c *tls.Conn, id, share int, start time.Time, dur time.Duration, sent *atomic.Int64) {
	w := bufio.NewWriterSize(c, 64<<10)
	local := c.LocalAddr().String()
	remote := c.RemoteAddr().String()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	n := 0
	for now := range tick.C {
		el := now.Sub(start)
		if el > dur {
			return
		}
		due := int(el.Seconds()*float64(share)) + 1
		for ; n < due; n++ {
			writeOptions(w, remote, local, id, n)
			sent.Add(1)
		}
		if err := w.Flush(); err != nil {
			return
		}
	}
}

func writeOptions(w *bufio.Writer, remote, local string, id, n int) {
	tag := strconv.Itoa(id) + "-" + strconv.Itoa(n)
	fmt.Fprintf(w, "OPTIONS sip:bench@%s;transport=tls SIP/2.0\r\n"+
		"Via: SIP/2.0/TLS %s;branch=z9hG4bK-tl%s;rport\r\n"+
		"From: <sip:tlsload@%s>;tag=f%s\r\nTo: <sip:bench@%s>\r\n"+
		"Call-ID: tl%s@%s\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		remote, local, tag, local, tag, remote, tag, local)
}

// read counts the replies and the 200 replies on c until it is closed.
func read(c *tls.Conn, ok, got, last *atomic.Int64) {
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		status, clen, err := readHead(r)
		if err != nil {
			return
		}
		if clen > 0 {
			if _, err := io.CopyN(io.Discard, r, int64(clen)); err != nil {
				return
			}
		}
		if status == 200 {
			ok.Add(1)
		}
		got.Add(1)
		last.Store(time.Now().UnixNano())
	}
}

// readHead reads one message head: its status code (0 for a request)
// and Content-Length.
func readHead(r *bufio.Reader) (status, clen int, err error) {
	first := true
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, 0, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if first {
			if len(line) == 0 {
				continue // keepalive CRLF
			}
			first = false
			if f := bytes.Fields(line); len(f) >= 2 && bytes.HasPrefix(f[0], []byte("SIP/")) {
				status, _ = strconv.Atoi(string(f[1]))
			}
			continue
		}
		if len(line) == 0 {
			return status, clen, nil
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok {
			k = bytes.TrimSpace(k)
			if bytes.EqualFold(k, []byte("Content-Length")) || bytes.Equal(k, []byte("l")) {
				clen, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
			}
		}
	}
}
