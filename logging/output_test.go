package logging

import (
	"bytes"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSyslog sends records to a unix datagram socket standing in for
// /dev/log and checks facility, severity, tag and text.
func TestSyslog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		json bool
		want string
	}{
		{false, `level=ERROR msg="store failed" module=mqueue queue=q1`},
		{true, `"level":"ERROR","msg":"store failed","module":"mqueue","queue":"q1"}`},
	} {
		log, closer, err := New(Options{Syslog: true, Facility: "LOG_LOCAL0", Tag: "kamailio-edge", SyslogAddr: path, JSON: tc.json})
		if err != nil {
			t.Fatal(err)
		}
		log.With("module", "mqueue").Error("store failed", "queue", "q1")
		log.Debug("not at info level")
		closer.Close()
		c.SetReadDeadline(time.Now().Add(30 * time.Second)) // failure guard
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got := string(buf[:n])
		// LOG_LOCAL0 (16) * 8 + LOG_ERR (3) = 131.
		if !strings.HasPrefix(got, "<131>") || !strings.Contains(got, " kamailio-edge[") || !strings.HasSuffix(strings.TrimSpace(got), tc.want) {
			t.Errorf("syslog got %q, want <131>... kamailio-edge[pid]: ...%s", got, tc.want)
		}
		if strings.Contains(got, "time=") || strings.Contains(got, `"time"`) {
			t.Errorf("syslog record carries its own time: %q", got)
		}
	}
}

func TestJSONStderr(t *testing.T) {
	var b bytes.Buffer
	log, _, err := New(Options{JSON: true, Stderr: &b})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("listening", "proto", "udp")
	var v map[string]any
	if err := json.Unmarshal(b.Bytes(), &v); err != nil || v["msg"] != "listening" || v["proto"] != "udp" {
		t.Fatalf("%q: %v", b.String(), err)
	}
}

func TestFacility(t *testing.T) {
	if _, err := Facility("local7"); err != nil {
		t.Error(err)
	}
	if _, err := Facility("LOG_NOPE"); err == nil {
		t.Error("LOG_NOPE accepted")
	}
}
