// Package kamtest runs one kamailio.cfg and Lua script in Kamailio 5.6
// and in kemi side by side, for the modules' conformance tests: the same
// request goes to both over loopback UDP and the replies are compared. It
// is small on purpose (the shared harness lives in conformance/); the
// tests using it skip when Kamailio or one of its modules is not
// installed, and under -short.
//
// Concurrency: a Pair belongs to one test goroutine.
package kamtest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
)

// ModPath is where Debian's kamailio package installs the modules.
const ModPath = "/usr/lib/x86_64-linux-gnu/kamailio/modules/"

// patience bounds every wait on something that must happen (a reply, the
// start): it is a guard against a hang, not a timing window.
const patience = 30 * time.Second

// Pair is Kamailio and kemi running the same configuration.
type Pair struct {
	Kam, Kemi *enginetest.Client
	// Engine is kemi's engine (its RPC URL, its log).
	Engine *enginetest.Engine
	// KemiLog is what kemi has logged so far.
	KemiLog *enginetest.LogBuffer
	// KamAddr and KemiAddr are the UDP addresses Kamailio and kemi listen
	// on (ip:port).
	KamAddr, KemiAddr string
	// KemiRPC is kemi's JSON-RPC URL.
	KemiRPC string
	// Dir is the directory %DIR% names: the configuration and files.
	Dir string
	// KamTCP and KemiTCP are the tcp listeners' addresses (StartTCP).
	KamTCP, KemiTCP string
	kamLog          *enginetest.LogBuffer // written by exec's copying goroutine
	// db: the configuration loads a database module, whose connections
	// Kamailio's children open after it answers SIP (settled).
	db bool
}

// Start writes cfg (a kamailio.cfg body without listen, mpath or
// cfgengine: "%LISTEN%" is not needed, Start adds them) and files, starts
// Kamailio on a free port and kemi on an ephemeral one, and waits until
// both answer an OPTIONS without X-Eval with 200. modules are the .so
// files the configuration loads, checked before Kamailio starts.
func Start(t *testing.T, modules []string, cfg string, files map[string]string) *Pair {
	t.Helper()
	return start(t, false, modules, cfg, "", files)
}

// StartTCP is Start with a tcp listener beside the udp one in both, on
// the same address (Kamailio's xhttp serves HTTP there): KamTCP and
// KemiTCP are their addresses.
func StartTCP(t *testing.T, modules []string, cfg string, files map[string]string) *Pair {
	t.Helper()
	return start(t, true, modules, cfg, "", files)
}

// StartKam is Start with kamOnly added to Kamailio's configuration only,
// after cfg: loadmodule "jsonrpcs.so" for KSR.jsonrpcs.exec (kemi's RPC
// server answers instead: Pair.KemiRPC), or a modparam that overrides
// cfg's (a database file of Kamailio's own).
func StartKam(t *testing.T, modules []string, cfg, kamOnly string, files map[string]string) *Pair {
	t.Helper()
	return start(t, false, modules, cfg, kamOnly, files)
}

func start(t *testing.T, tcp bool, modules []string, cfg, kamOnly string, files map[string]string) *Pair {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Kamailio")
	}
	kam, err := exec.LookPath("kamailio")
	if err != nil {
		t.Skip("kamailio not installed (apt-get install -y kamailio kamailio-lua-modules)")
	}
	for _, m := range modules {
		if _, err := os.Stat(filepath.Join(ModPath, m)); err != nil {
			t.Skipf("kamailio module %s not found in %s", m, ModPath)
		}
	}
	dir := t.TempDir()
	enginetest.Files(t, dir, files)
	head := func(listen string) string {
		tcpLines := "disable_tcp=yes\n"
		if tcp {
			tcpLines = "listen=" + strings.Replace(listen, "udp:", "tcp:", 1) + "\ntcp_children=1\n"
		}
		return fmt.Sprintf("#!KAMAILIO\ndebug=2\nlog_stderror=yes\nchildren=1\nlisten=%s\n%smpath=%q\n", listen, tcpLines, ModPath)
	}
	cfg = mysqlPatience(modules, cfg)
	body := cfg + "\ncfgengine \"lua\"\n"
	body = strings.ReplaceAll(body, "%DIR%", dir)

	k := enginetest.Start(t, head("udp:127.0.0.1:0")+body, nil)
	p := &Pair{Kemi: enginetest.Dial(t, "udp", k.Addr("udp")), Engine: k, KemiLog: k.Log, KemiRPC: k.RPCURL(), Dir: dir,
		kamLog: &enginetest.LogBuffer{}, KemiAddr: k.Addr("udp"),
		db: slices.Contains(modules, "db_mysql.so") || slices.Contains(modules, "db_postgres.so")}

	if tcp {
		p.KemiTCP = k.Addr("tcp")
	}
	kamBody := body
	if kamOnly != "" {
		kamBody = strings.ReplaceAll(cfg+"\n"+kamOnly+"\ncfgengine \"lua\"\n", "%DIR%", dir)
	}
	// The free port is released before Kamailio binds it: another test
	// process may take it meanwhile, then Kamailio exits and is started
	// again on another port.
	for try := 1; ; try++ {
		exited := p.startKamailio(t, kam, dir, tcp, head, kamBody)
		if !exited {
			break
		}
		if try == 3 {
			t.Fatalf("kamailio exited at start:\n%s", p.kamLog.String())
		}
	}
	return p
}

// mysqlPatience gives db_mysql ten seconds to connect (timeout_interval)
// unless cfg sets it: Kamailio's default of 2 s is short on a busy
// machine where each test starts its own MariaDB. Both engines run with
// the setting. (A handshake the server closes fails at once anyway:
// settled retries such a start.)
func mysqlPatience(modules []string, cfg string) string {
	if !slices.Contains(modules, "db_mysql.so") || strings.Contains(cfg, "timeout_interval") {
		return cfg
	}
	return cfg + "\nmodparam(\"db_mysql\", \"timeout_interval\", 10)\n"
}

// startKamailio runs Kamailio on a free port and waits until it answers
// an OPTIONS; exited is true when it stopped instead.
func (p *Pair) startKamailio(t *testing.T, kam, dir string, tcp bool, head func(string) string, kamBody string) (exited bool) {
	t.Helper()
	port := freeUDPPort(t)
	for i := 0; tcp && i < 20 && !tcpFree(port); i++ {
		port = freeUDPPort(t) // the tcp listener takes the same number
	}
	if tcp {
		p.KamTCP = fmt.Sprintf("127.0.0.1:%d", port)
	}
	enginetest.Files(t, dir, map[string]string{"kamailio.cfg": head(fmt.Sprintf("udp:127.0.0.1:%d", port)) + kamBody})
	run := filepath.Join(dir, "run")
	os.Mkdir(run, 0o755)
	cmd := exec.Command(kam, "-DD", "-E", "-f", filepath.Join(dir, "kamailio.cfg"), "-Y", run,
		"-P", filepath.Join(run, "kamailio.pid"), "-w", dir, "-m", "64", "-M", "8")
	cmd.Stdout, cmd.Stderr = p.kamLog, p.kamLog
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(patience):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("kamailio log:\n%s", p.kamLog.String())
		}
	})
	p.KamAddr = fmt.Sprintf("127.0.0.1:%d", port)
	p.Kam = enginetest.Dial(t, "udp", p.KamAddr)
	// Kamailio needs a moment to bind: probe until it answers (each probe
	// has its own Call-ID; a late answer to an earlier one is skipped).
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); {
		select {
		case err := <-done:
			done <- err // for the cleanup
			return true
		default:
		}
		id := enginetest.RandomID()
		p.Kam.TrySend(p.Kam.Build(enginetest.Req{Method: "OPTIONS", CallID: id}))
		for {
			res, err := p.Kam.RecvResponse(200 * time.Millisecond)
			if err != nil {
				break
			}
			if res.CallID() != nil && string(*res.CallID()) == id && res.StatusCode == 200 {
				return !p.settled(cmd.Process.Pid, done)
			}
		}
	}
	t.Fatalf("kamailio did not answer OPTIONS:\n%s", p.kamLog.String())
	return false
}

// settled reports whether Kamailio, answering SIP already, is still
// running once it has forked every process it announced ("processes (at
// least): N") and a moment more, when it loads a database module (p.db):
// the secondary timer is forked after the SIP workers answer, and when
// its child_init cannot connect (the MariaDB of the test closing the
// handshake, seen on busy CI machines) Kamailio stops; such a start is
// retried instead of failing the test that follows it.
func (p *Pair) settled(pgid int, done chan error) bool {
	if !p.db {
		return true
	}
	m := processesRe.FindStringSubmatch(p.kamLog.String())
	if m == nil {
		return true
	}
	want, _ := strconv.Atoi(m[1])
	for deadline := time.Now().Add(patience); groupSize(pgid) < want && time.Now().Before(deadline); {
		select {
		case err := <-done:
			done <- err
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case err := <-done:
		done <- err
		return false
	case <-time.After(300 * time.Millisecond): // the last child's child_init
		return true
	}
}

var processesRe = regexp.MustCompile(`processes \(at least\): (\d+)`)

// groupSize counts the live processes of process group pgid.
func groupSize(pgid int) int {
	ents, _ := os.ReadDir("/proc")
	group := strconv.Itoa(pgid)
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[2] == group {
			n++
		}
	}
	return n
}

// Addrs are the SIP addresses of Kamailio and kemi.
func (p *Pair) Addrs() (kam, kemi string) { return p.Kam.RemoteAddr(), p.Kemi.RemoteAddr() }

// KamLog returns what Kamailio has logged so far.
func (p *Pair) KamLog() string { return p.kamLog.String() }

// tcpFree reports whether a tcp listener can bind 127.0.0.1:port now.
func tcpFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// Exchange sends r (its built text passed through mangle when it is not
// nil) to c and returns every reply to it, up to and
// including the one carrying X-Result (eval.lua's last reply), each as
// "code reason" followed by " | Name: value" for the headers named in
// show and X-Result.
func Exchange(t *testing.T, c *enginetest.Client, r enginetest.Req, mangle func(string) string, show ...string) string {
	t.Helper()
	r.CallID = enginetest.RandomID()
	raw := c.Build(r)
	if mangle != nil {
		raw = mangle(raw)
	}
	c.Send(raw)
	var out []string
	deadline := time.Now().Add(patience)
	for {
		res, err := c.RecvResponse(time.Until(deadline))
		if err != nil {
			t.Fatalf("%s %v: replies so far %q: %v", r.Method, r.Headers, out, err)
		}
		if res.CallID() == nil || string(*res.CallID()) != r.CallID {
			continue
		}
		out = append(out, summary(res, show))
		if res.GetHeader("X-Result") != nil {
			return strings.Join(out, " ; ")
		}
	}
}

func summary(res *sip.Response, show []string) string {
	s := fmt.Sprintf("%d %s", res.StatusCode, res.Reason)
	for _, n := range append(show, "X-Result") {
		for _, h := range res.GetHeaders(n) {
			s += " | " + n + ": " + h.Value()
		}
	}
	return s
}

// Case is one request of a side-by-side table.
type Case struct {
	Req  enginetest.Req
	Show []string // reply headers to compare besides X-Result
	// Mangle, when set, rewrites the request's text before it is sent
	// (a header the builder does not write, a malformed line).
	Mangle func(string) string
}

// Compare sends each case to Kamailio and to kemi and fails the test for
// every difference in the replies.
func (p *Pair) Compare(t *testing.T, cases []Case) {
	t.Helper()
	for _, c := range cases {
		kam := Exchange(t, p.Kam, c.Req, c.Mangle, c.Show...)
		kemi := Exchange(t, p.Kemi, c.Req, c.Mangle, c.Show...)
		if kam != kemi {
			t.Errorf("%s %s %q:\n kamailio: %s\n     kemi: %s", c.Req.Method, c.Req.URI, c.Req.Headers, kam, kemi)
		} else {
			t.Logf("%s %q: %s", c.Req.Method, c.Req.Headers, kemi)
		}
	}
}

// Eval is a request whose X-Eval header holds expr.
func Eval(method, uri, expr string, headers ...string) Case {
	return Case{Req: enginetest.Req{Method: method, URI: uri, Headers: append([]string{"X-Eval: " + expr}, headers...)}}
}
