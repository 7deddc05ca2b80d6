package htable_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// TestClusterDebianNATS runs the replication against Debian's nats-server
// (2.9, the binary tests/run installs and users run), SIGKILLed and started
// again on the same port and store.
func TestClusterDebianNATS(t *testing.T) {
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nats-server is not installed (tests/run installs it)")
		}
		t.Skip("nats-server is not installed (apt-get install nats-server); CI is unset")
	}
	if testing.Short() {
		t.Skip("-short")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	start := func() *exec.Cmd {
		cmd := exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		deadline := time.Now().Add(20 * time.Second)
		for {
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				c.Close()
				return cmd
			}
			if time.Now().After(deadline) {
				t.Fatal("nats-server does not listen within 20 s")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	srv := start()
	a, b := node(t, url), node(t, url)
	va, vb := a.vm("a", ""), b.vm("b", "")
	va.run(`KSR.htable.sht_sets("rt", "sip:a@x", "1"); KSR.htable.sht_seti("rt", "n", 1)`)
	await(t, b, "sip:a@x", "s:1")
	await(t, b, "n", "i:1")
	vb.run(`KSR.htable.sht_inc("rt", "n"); KSR.htable.sht_rm("rt", "sip:a@x")`)
	await(t, a, "n", "i:2")
	await(t, a, "sip:a@x", "nil")

	srv.Process.Kill()
	srv.Wait()
	va.run(`KSR.htable.sht_sets("rt", "during", "x")`)
	start()
	await(t, b, "during", "s:x")
	vb.run(`KSR.htable.sht_sets("rt", "after", "y")`)
	await(t, a, "after", "s:y")
	c := node(t, url)
	if get(c, "n") != "i:2" || get(c, "during") != "s:x" || get(c, "after") != "s:y" || get(c, "sip:a@x") != "nil" {
		t.Fatalf("late joiner: n=%s during=%s after=%s", get(c, "n"), get(c, "during"), get(c, "after"))
	}
}
