package main

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  int64
		from  string
	}{
		{"none", map[string]string{}, 0, ""},
		{"v2 own cgroup", map[string]string{
			"/proc/self/cgroup": "0::/kemi.slice/kemi.service\n",
			"/sys/fs/cgroup/kemi.slice/kemi.service/memory.max": "1610612736\n",
			"/sys/fs/cgroup/kemi.slice/memory.max":              "max\n",
		}, 1610612736, "/sys/fs/cgroup/kemi.slice/kemi.service/memory.max"},
		{"v2 parent is smaller", map[string]string{
			"/proc/self/cgroup": "0::/kemi.slice/kemi.service\n",
			"/sys/fs/cgroup/kemi.slice/kemi.service/memory.max": "max\n",
			"/sys/fs/cgroup/kemi.slice/memory.max":              "1073741824\n",
		}, 1073741824, "/sys/fs/cgroup/kemi.slice/memory.max"},
		{"v2 namespace root", map[string]string{
			"/proc/self/cgroup":         "0::/\n",
			"/sys/fs/cgroup/memory.max": "536870912",
		}, 536870912, "/sys/fs/cgroup/memory.max"},
		{"v1 unlimited", map[string]string{
			"/proc/self/cgroup": "4:memory:/process_api/x\n3:cpuset:/\n",
			"/sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "9223372036854771712\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes":               "9223372036854771712\n",
		}, 0, ""},
		{"v1 limited", map[string]string{
			"/proc/self/cgroup": "12:cpu,memory:/docker/abc\n",
			"/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": "2147483648\n",
		}, 2147483648, "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes"},
	} {
		read := func(p string) ([]byte, error) {
			if s, ok := tt.files[p]; ok {
				return []byte(s), nil
			}
			return nil, errors.New("no such file")
		}
		got, from := cgroupMemoryLimit(read)
		if got != tt.want || from != tt.from {
			t.Errorf("%s: %d from %q, want %d from %q", tt.name, got, from, tt.want, tt.from)
		}
	}
}

func TestSetMemoryLimit(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(prev)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	read := func(p string) ([]byte, error) {
		if p == "/sys/fs/cgroup/memory.max" {
			return []byte("1000000000\n"), nil
		}
		return nil, errors.New("no such file")
	}
	// GOMEMLIMIT set: left to the runtime.
	if got := setMemoryLimit(log, func(string) string { return "512MiB" }, read); got != 0 {
		t.Fatalf("with GOMEMLIMIT: set %d", got)
	}
	if got := setMemoryLimit(log, func(string) string { return "" }, read); got != 900000000 {
		t.Fatalf("set %d, want 90%% of the cgroup limit", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 900000000 {
		t.Fatalf("runtime limit %d", got)
	}
	debug.SetMemoryLimit(math.MaxInt64)
}
