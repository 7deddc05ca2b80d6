package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"kemi/engine/enginetest"
)

// upstreamDir finds Kamailio's example, which is not ours (GPL): the tests
// read it and copy it to a temp dir at run time, never into the
// repository. It is ../shared/upstream beside the repository (a git
// worktree one level further down also finds it), or $KEMI_UPSTREAM.
func upstreamDir(t *testing.T) string {
	t.Helper()
	cands := []string{os.Getenv("KEMI_UPSTREAM"), "../../shared/upstream", "../../../shared/upstream"}
	for _, d := range cands {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, exampleCfg)); err == nil {
			abs, _ := filepath.Abs(d)
			return abs
		}
	}
	t.Skipf("Kamailio's example not found in ../shared/upstream beside the repository (set KEMI_UPSTREAM)")
	return ""
}

const (
	exampleCfg = "kamailio-basic-kemi.cfg"
	exampleLua = "kamailio-basic-kemi-lua.lua"
	// kemiload is the cfg's KEMILOAD for WITH_CFGLUA (see installExample).
	kemiload = "/usr/local/etc/kamailio/kamailio-basic-kemi-lua.lua"
	// rtpproxyAddr is the example's rtpproxy_sock: the relay must be there.
	rtpproxyAddr = "127.0.0.1:7722"
	// schemaDir is where Debian's kamailio-mysql-modules puts the SQL
	// files kamdbctl loads.
	schemaDir = "/usr/share/kamailio/mysql"
)

// kamdbctlModules is kamdbctl's STANDARD_MODULES (kamdbctl.base, 5.6):
// `kamdbctl create` loads <module>-create.sql for each, in this order.
var kamdbctlModules = []string{"standard", "acc", "lcr", "domain", "group", "permissions", "registrar",
	"usrloc", "msilo", "alias_db", "uri_db", "speeddial", "avpops", "auth_db", "pdt", "dialog",
	"dispatcher", "dialplan", "topos"}

// subscribers are the example's users (auth_db calculate_ha1=yes,
// password_column=password: plain passwords). dave never registers.
var subscribers = [][2]string{{"alice", "alicepw"}, {"bob", "bobpw"}, {"carol", "carolpw"},
	{"dave", "davepw"}, {"erin", "erinpw"}}

// lockShared serializes, across test processes, the users of database
// kamailio and of the relay's fixed port 7722 (this package, bench/example.sh).
func lockShared(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "kemi-example-e2e.lock"), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() })
}

// sql runs statements in database kamailio as user kamailio (through the
// local socket, as the example's DBURL "mysql://kamailio:kamailiorw@localhost/kamailio")
// and returns the rows tab-separated.
func sql(t *testing.T, stmts string) string {
	t.Helper()
	out, err := sqlTry(stmts)
	if err != nil {
		t.Fatalf("mariadb: %v\n%s\nstatements:\n%s", err, out, stmts)
	}
	return out
}

func sqlTry(stmts string) (string, error) {
	cmd := exec.Command("mariadb", "-ukamailio", "-B", "-N", "kamailio")
	cmd.Env = append(os.Environ(), "MYSQL_PWD=kamailiorw")
	cmd.Stdin = strings.NewReader(stmts)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// prepareDB empties database kamailio and creates it as kamdbctl create
// does (Kamailio's own SQL files), adds the acc/missed_calls columns the
// example's ACCDB_COMMENT block asks for (read from the cfg itself) and
// the subscribers.
func prepareDB(t *testing.T, cfg []byte) {
	t.Helper()
	if _, err := exec.LookPath("mariadb"); err != nil {
		t.Skip("mariadb client not installed (tests/run installs mariadb-server)")
	}
	if out, err := sqlTry("SELECT 1"); err != nil {
		t.Skipf("MariaDB not running or database kamailio not prepared (run tests/mariadb.sh as root, as tests/run does): %v %s", err, out)
	}
	var drop []string
	for _, tb := range strings.Fields(sql(t, "SELECT table_name FROM information_schema.tables WHERE table_schema='kamailio'")) {
		drop = append(drop, "`"+tb+"`")
	}
	if len(drop) > 0 {
		sql(t, "DROP TABLE "+strings.Join(drop, ", "))
	}
	var all bytes.Buffer
	for _, m := range kamdbctlModules {
		b, err := os.ReadFile(filepath.Join(schemaDir, m+"-create.sql"))
		if err != nil {
			t.Skipf("Kamailio's MySQL schema not installed (apt-get install kamailio-mysql-modules): %v", err)
		}
		all.Write(b)
		all.WriteString("\n")
	}
	sql(t, all.String())
	sql(t, accdbColumns(t, cfg))
	var ins []string
	for _, s := range subscribers {
		ins = append(ins, fmt.Sprintf("('%s','127.0.0.1','%s')", s[0], s[1]))
	}
	sql(t, "INSERT INTO subscriber (username, domain, password) VALUES "+strings.Join(ins, ", "))
}

// accdbColumns is the SQL between "#!ifdef ACCDB_COMMENT" and "#!endif".
func accdbColumns(t *testing.T, cfg []byte) string {
	t.Helper()
	var out []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(cfg))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "#!ifdef ACCDB_COMMENT":
			in = true
		case in && l == "#!endif":
			return strings.Join(out, "\n")
		case in && l != "":
			out = append(out, l)
		}
	}
	t.Fatal("no ACCDB_COMMENT block in the example cfg")
	return ""
}

// dbRows is what the example leaves in the database, times and ids left
// out, each table sorted: location (usrloc db_mode 2 writes back, so read
// after the engine stopped; expires as seconds after last_modified; ruid,
// callid and partition left out: partition is Kamailio's per-process
// counter plus pid modulo the timer partitions), acc and missed_calls.
func dbRows(t *testing.T, n *normalizer) []string {
	t.Helper()
	q := map[string]string{
		"location":     "SELECT username, domain, contact, received, path, q, cseq, flags, cflags, user_agent, socket, methods, instance, reg_id, server_id, connection_id, keepalive, TIMESTAMPDIFF(SECOND, last_modified, expires) FROM location",
		"acc":          "SELECT method, from_tag, to_tag, callid, sip_code, sip_reason, src_user, src_domain, src_ip, dst_ouser, dst_user, dst_domain FROM acc",
		"missed_calls": "SELECT method, from_tag, to_tag, callid, sip_code, sip_reason, src_user, src_domain, src_ip, dst_ouser, dst_user, dst_domain FROM missed_calls",
	}
	var out []string
	for _, tb := range []string{"location", "acc", "missed_calls"} {
		var rows []string
		for _, l := range strings.Split(strings.TrimRight(sql(t, q[tb]), "\n"), "\n") {
			if l != "" {
				rows = append(rows, tb+": "+n.norm(strings.ReplaceAll(l, "\t", " | ")))
			}
		}
		sort.Strings(rows)
		out = append(out, rows...)
	}
	return out
}

// installExample copies the upstream cfg and Lua script, unchanged, into
// dir, with a kamailio-local.cfg beside them: the example's own hook for
// local settings (its `import_file "kamailio-local.cfg"`, read before
// anything else). It holds the two adjustments the example's README
// allows: the listen socket, and a #!subst rule that points the
// KEMILOAD string at the copied Lua script (a -A KEMILOAD=... would be
// refused: the cfg #!defines KEMILOAD itself, and Kamailio refuses a
// second #!define of a name). Both engines read the same three files.
func installExample(t *testing.T, dir string, port int) {
	t.Helper()
	up := upstreamDir(t)
	for _, f := range []string{exampleCfg, exampleLua} {
		b, err := os.ReadFile(filepath.Join(up, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	local := fmt.Sprintf("listen=udp:127.0.0.1:%d\n#!subst \"|^%s$|%s|\"\n", port, kemiload, filepath.Join(dir, exampleLua))
	if err := os.WriteFile(filepath.Join(dir, "kamailio-local.cfg"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
}

// process is a daemon started by a test; stop ends it with SIGTERM (and
// waits, so that usrloc's write-back reaches the database).
type process struct {
	name string
	cmd  *exec.Cmd
	log  *enginetest.LogBuffer
	done chan error
	// rpc is the command line that calls one of the engine's RPC methods
	// (kamcmd on Kamailio's ctl socket, `kemi rpc` on kemi's JSON-RPC
	// server); the method and its parameters are appended.
	rpc []string
}

// call runs one RPC method of the engine and returns what the tool printed.
func (p *process) call(method string, params ...string) (string, error) {
	if len(p.rpc) == 0 {
		return "", fmt.Errorf("%s: no RPC command", p.name)
	}
	argv := append(append(append([]string(nil), p.rpc...), method), params...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

func start(t *testing.T, name, dir string, argv ...string) *process {
	t.Helper()
	p := &process{name: name, log: &enginetest.LogBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s log (last 8 kB):\n%s", name, tail(p.log.String(), 8192))
		}
	})
	return p
}

func (p *process) exited() bool {
	select {
	case err := <-p.done:
		p.done <- err
		return true
	default:
		return false
	}
}

func (p *process) stop(t *testing.T) {
	if p.cmd.Process == nil || p.exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
	case <-time.After(patience):
		t.Errorf("%s did not stop within %v after SIGTERM", p.name, patience)
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.done <- <-p.done
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// rtpengine runs the media relay in userspace, its legacy rtpproxy
// control protocol on 127.0.0.1:7722 (the example's rtpproxy_sock) and
// its ng protocol on a free port (the test lists the relay's calls there).
// The default /etc/rtpengine/rtpengine.conf is not read; --delete-delay=0
// forgets a deleted call at once.
type rtpengine struct {
	*process
	ng *net.UDPAddr
}

func startRtpengine(t *testing.T, dir string) *rtpengine {
	t.Helper()
	bin, err := exec.LookPath("rtpengine")
	if err != nil {
		t.Skip("rtpengine not installed (tests/run installs rtpengine-daemon)")
	}
	ngPort := freeUDPPort(t)
	deadline := time.Now().Add(patience)
	for {
		// rtpengine binds with SO_REUSEADDR, so a second relay on 7722
		// would start and share the port silently: wait until nothing
		// holds it (bench/example.sh takes the same lock as this package).
		for {
			c, err := net.ListenPacket("udp", rtpproxyAddr)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s stays busy (another media relay?): %v", rtpproxyAddr, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		p := start(t, "rtpengine", dir, bin, "--config-file=none", "--table=-1", "--foreground", "--log-stderr",
			"--interface=127.0.0.1", "--listen-udp="+rtpproxyAddr, fmt.Sprintf("--listen-ng=127.0.0.1:%d", ngPort),
			"--delete-delay=0", "--port-min=35000", "--port-max=35999", "--log-level=6")
		r := &rtpengine{process: p, ng: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ngPort}}
		for !p.exited() && time.Now().Before(deadline) {
			if out, err := r.command("d7:command4:pinge", time.Second); err == nil && strings.Contains(out, "pong") {
				return r
			}
			time.Sleep(50 * time.Millisecond) // not listening yet: the read failed at once
		}
		if !p.exited() || time.Now().After(deadline) {
			t.Fatalf("rtpengine did not answer ping on its ng port within %v:\n%s", patience, p.log.String())
		}
		// 7722 busy (another test's relay): try again until the deadline.
		time.Sleep(200 * time.Millisecond)
	}
}

// command sends one ng command (bencoded) and returns the bencoded reply.
func (r *rtpengine) command(benc string, timeout time.Duration) (string, error) {
	c, err := net.DialUDP("udp", nil, r.ng)
	if err != nil {
		return "", err
	}
	defer c.Close()
	cookie := enginetest.RandomID()
	if _, err := c.Write([]byte(cookie + " " + benc)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 65535)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return "", err
		}
		if s := string(buf[:n]); strings.HasPrefix(s, cookie+" ") {
			return strings.TrimPrefix(s, cookie+" "), nil
		}
	}
}

// hasCall reports whether the relay's list of calls ("list" command, a
// bencoded list of strings, read loosely: the ids are ours) holds callID.
func (r *rtpengine) hasCall(t *testing.T, callID string) bool {
	t.Helper()
	out, err := r.command("d7:command4:list5:limiti1000ee", 5*time.Second)
	if err != nil {
		t.Fatalf("rtpengine list: %v", err)
	}
	return strings.Contains(out, fmt.Sprintf("%d:%s", len(callID), callID))
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

// waitReady probes the proxy with OPTIONS from 127.0.0.1 (the proxy's own
// address: the example's pike check skips it) until it answers.
func waitReady(t *testing.T, p *process, proxy *net.UDPAddr) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 65535)
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); {
		if p.exited() {
			t.Fatalf("%s exited at start:\n%s", p.name, p.log.String())
		}
		id := enginetest.RandomID()
		req := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\nMax-Forwards: 70\r\nFrom: <sip:probe@127.0.0.1>;tag=%s\r\nTo: <sip:%s>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			proxy, c.LocalAddr(), id, id, proxy, id)
		c.WriteToUDP([]byte(req), proxy)
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				break
			}
			if bytes.Contains(buf[:n], []byte(id)) && bytes.HasPrefix(buf[:n], []byte("SIP/2.0 200")) {
				return
			}
		}
	}
	t.Fatalf("%s did not answer OPTIONS on %s within %v:\n%s", p.name, proxy, patience, p.log.String())
}

// normalizer turns a message or row into text comparable across engines
// and runs: the ports of this run named, tags, branches, Call-IDs, nonces
// and relay ports replaced by placeholders.
type normalizer struct {
	ports  map[string]string // "12345" -> "ALICE_PORT"
	ids    map[string]string // Call-ID or tag -> placeholder
	relays map[string]string // relay media port -> RELAY_n
}

func newNormalizer() *normalizer {
	return &normalizer{ports: map[string]string{}, ids: map[string]string{}, relays: map[string]string{}}
}

func (n *normalizer) port(p int, name string) { n.ports[fmt.Sprint(p)] = name }

// id names a value this run chose (a Call-ID, a tag) so that the same
// value reads the same in every line.
func (n *normalizer) id(v, name string) { n.ids[v] = name }

var (
	reBranch = regexp.MustCompile(`branch=[^;,>\s]+`)
	reNonce  = regexp.MustCompile(`(nonce|opaque|response|cnonce)="[^"]*"`)
	reTag    = regexp.MustCompile(`tag=[^;,>\s]+`)
	rePort   = regexp.MustCompile(`([:= ~])(\d{4,5})\b`)
	reMedia  = regexp.MustCompile(`m=audio (\d+)`)
)

func (n *normalizer) norm(s string) string {
	for v, name := range n.ids {
		s = strings.ReplaceAll(s, v, name)
	}
	s = reMedia.ReplaceAllStringFunc(s, func(m string) string {
		p := strings.TrimPrefix(m, "m=audio ")
		if p == "4000" { // the phones' own port
			return m
		}
		if _, ok := n.relays[p]; !ok {
			n.relays[p] = fmt.Sprintf("RELAY_%d", len(n.relays)+1)
		}
		return "m=audio " + n.relays[p]
	})
	s = reBranch.ReplaceAllString(s, "branch=BRANCH")
	s = reNonce.ReplaceAllString(s, `$1="X"`)
	s = reTag.ReplaceAllStringFunc(s, func(m string) string {
		if name, ok := n.ids[strings.TrimPrefix(m, "tag=")]; ok {
			return "tag=" + name
		}
		return "tag=TAG"
	})
	s = rePort.ReplaceAllStringFunc(s, func(m string) string {
		if name, ok := n.ports[m[1:]]; ok {
			return m[:1] + name
		}
		return m
	})
	return s
}
