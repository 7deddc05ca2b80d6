// Command optload sends OPTIONS over UDP at a fixed rate and reports the
// CPU another process (the engine under test) spent per answered request:
// a load generator without sipp, for measuring one engine by hand (with
// `perf stat -p` or `strace -c -p` beside it).
//
// Usage:
//
//	optload -to 127.0.0.1:15060 -pid <engine pid> [-rate 10000] [-secs 5] [-wait 2s]
//
// Each request is a new transaction (its Via branch, From tag and Call-ID
// carry a counter); it is paced against the wall clock, so when the sender
// falls behind it catches up in a burst, as sipp does. Printed: requests
// sent and answered with a 200, the engine's CPU per answered request from
// /proc/<pid>/stat (utime + stime) and from the sum of its threads'
// schedstat run times (nanoseconds), the engine's CPU share, and the
// longest gap between two answers.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

func main() {
	to := flag.String("to", "127.0.0.1:15060", "UDP address of the engine")
	rate := flag.Int("rate", 10000, "requests per second")
	secs := flag.Float64("secs", 5, "seconds of load")
	pid := flag.Int("pid", 0, "the engine's process id (0: no CPU figures)")
	wait := flag.Duration("wait", 2*time.Second, "the longest wait for the answers still in flight after the last request")
	flag.Parse()
	res, err := run(*to, *rate, time.Duration(*secs*float64(time.Second)), *wait, *pid)
	if err != nil {
		fmt.Fprintln(os.Stderr, "optload:", err)
		os.Exit(1)
	}
	fmt.Println(res)
}

// result is one run's outcome.
type result struct {
	sent, ok       int64
	elapsed        time.Duration
	ticks, ns      int64 // the engine's CPU: clock ticks (utime+stime) and schedstat ns
	maxGap         time.Duration
	measuredEngine bool
}

func (r result) String() string {
	s := fmt.Sprintf("sent %d ok %d in %.2fs; max gap %v", r.sent, r.ok, r.elapsed.Seconds(), r.maxGap.Round(time.Millisecond))
	if r.measuredEngine && r.ok > 0 {
		s += fmt.Sprintf("; engine cpu %.1f µs/req (ticks), %.2f µs/req (schedstat), cpu%% %.1f",
			float64(r.ticks)*1e6/float64(clockTicks)/float64(r.ok), float64(r.ns)/1000/float64(r.ok),
			float64(r.ns)/r.elapsed.Seconds()/1e7)
	}
	return s
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times.
const clockTicks = 100

const mark = "0000000000"

// template is the OPTIONS sent, with mark where the counter goes.
func template(to, local string) []byte {
	return []byte("OPTIONS sip:bench@" + to + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK-" + mark + "\r\n" +
		"From: <sip:sipp@" + local + ">;tag=" + mark + "\r\n" +
		"To: <sip:bench@" + to + ">\r\n" +
		"Call-ID: " + mark + "@bench\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 70\r\n" +
		"User-Agent: kemi-bench\r\n" +
		"Content-Length: 0\r\n\r\n")
}

// stamp writes n, right-aligned over mark, at each offset of at in req.
func stamp(req []byte, at []int, n int64) {
	var num [20]byte
	d := strconv.AppendInt(num[:0], n, 10)
	if len(d) > len(mark) {
		d = d[len(d)-len(mark):]
	}
	for _, p := range at {
		copy(req[p:p+len(mark)], mark)
		copy(req[p+len(mark)-len(d):], d)
	}
}

func run(to string, rate int, dur, wait time.Duration, pid int) (result, error) {
	if rate <= 0 {
		return result{}, fmt.Errorf("-rate %d: must be positive", rate)
	}
	c, err := net.Dial("udp", to)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	c.(*net.UDPConn).SetReadBuffer(4 << 20)
	req := template(to, c.LocalAddr().String())
	var at []int
	for i := 0; ; {
		j := bytes.Index(req[i:], []byte(mark))
		if j < 0 {
			break
		}
		at = append(at, i+j)
		i += j + len(mark)
	}
	var ok, maxGap atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		var last time.Time
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			now := time.Now()
			if gap := int64(now.Sub(last)); !last.IsZero() && gap > maxGap.Load() {
				maxGap.Store(gap)
			}
			last = now
			if bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200 ")) {
				ok.Add(1)
			}
		}
	}()
	total := int64(float64(rate) * dur.Seconds())
	var r result
	var t0, n0 int64
	if pid > 0 {
		if t0, n0, err = procCPU(pid); err != nil {
			return r, err
		}
		r.measuredEngine = true
	}
	seq := time.Now().UnixNano() % 1e9
	start := time.Now()
	for i := int64(0); i < total; i++ {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
			time.Sleep(d)
		}
		stamp(req, at, seq+i)
		if _, err := c.Write(req); err == nil {
			r.sent++
		}
	}
	// The answers still in flight; then stop the reader.
	for deadline := time.Now().Add(wait); ok.Load() < r.sent && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	r.elapsed = time.Since(start)
	if pid > 0 {
		t1, n1, err := procCPU(pid)
		if err != nil {
			return r, err
		}
		r.ticks, r.ns = t1-t0, n1-n0
	}
	c.Close()
	<-done
	r.ok, r.maxGap = ok.Load(), time.Duration(maxGap.Load())
	return r, nil
}

// procCPU returns the CPU process pid has used: utime + stime in clock
// ticks, and the sum of its threads' schedstat run times in nanoseconds.
func procCPU(pid int) (ticks, ns int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // a thread that ended
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			ns += v
		}
	}
	return u + st, ns, nil
}
