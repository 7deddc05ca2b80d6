package conformance

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kamailioModules are the modules testdata/kamailio.cfg loads.
var kamailioModules = []string{"sl.so", "tm.so", "tmx.so", "pv.so", "rr.so", "mqueue.so", "app_lua.so"}

// modulePaths are where Debian and a source install put Kamailio's modules.
var modulePaths = []string{
	"/usr/lib/x86_64-linux-gnu/kamailio/modules",
	"/usr/lib/aarch64-linux-gnu/kamailio/modules",
	"/usr/lib/kamailio/modules",
	"/usr/local/lib64/kamailio/modules",
	"/usr/local/lib/kamailio/modules",
}

// findKamailio returns the kamailio binary and its module directory. Without
// them the test is skipped, unless CI is set: in CI the suite must run.
func findKamailio(t *testing.T) (bin, mpath string) {
	t.Helper()
	missing := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...) + " (apt-get install -y kamailio kamailio-lua-modules; tests/run installs them)"
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set, so the conformance suite must run: %s", msg)
		}
		t.Skip(msg)
	}
	bin, err := exec.LookPath("kamailio")
	if err != nil {
		missing("kamailio not installed")
	}
	if p := os.Getenv("KAMAILIO_MPATH"); p != "" {
		modulePaths = append([]string{p}, modulePaths...)
	}
	for _, p := range modulePaths {
		ok := true
		for _, m := range kamailioModules {
			if _, err := os.Stat(filepath.Join(p, m)); err != nil {
				ok = false
				break
			}
		}
		if ok {
			return bin, p
		}
	}
	missing("kamailio modules %v not found in %v (set KAMAILIO_MPATH)", kamailioModules, modulePaths)
	return "", ""
}

// freePort returns a loopback port free for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		tl.Close()
		if err == nil {
			ul.Close()
			return port
		}
	}
	t.Fatal("no free port for both udp and tcp")
	return 0
}

// syncBuffer is a bytes.Buffer safe for the process's writers and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// kamailio is Kamailio 5.6 running the conformance cfg in the foreground.
type kamailio struct {
	port   int
	log    *syncBuffer
	exited chan struct{} // closed when the process has exited
}

// startKamailio runs Kamailio on dir/kamailio.cfg (with its Lua script in
// dir) on a free loopback port, UDP and TCP, in its own runtime directory.
// It is stopped at cleanup: SIGTERM to the main process (which stops its
// children), SIGKILL to the process group if it does not exit in time.
func startKamailio(t *testing.T, bin, mpath, dir string) *kamailio {
	t.Helper()
	port := freePort(t)
	run := filepath.Join(dir, "run")
	if err := os.Mkdir(run, 0o755); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	cmd := exec.Command(bin, "-DD", "-E",
		"-f", filepath.Join(dir, "kamailio.cfg"),
		"-L", mpath,
		"-l", "udp:127.0.0.1:"+strconv.Itoa(port),
		"-l", "tcp:127.0.0.1:"+strconv.Itoa(port),
		"-Y", run, "-P", filepath.Join(run, "kamailio.pid"),
		"-w", dir, "-m", "64", "-M", "8")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kamailio: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
			t.Errorf("kamailio did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("kamailio log:\n%s", log.String())
		}
	})
	return &kamailio{port: port, log: log, exited: exited}
}
