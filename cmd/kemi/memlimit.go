package main

import (
	"bufio"
	"bytes"
	"log/slog"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
)

// Where the cgroup memory limit is read: cgroup v2 (memory.max of the
// process's own cgroup, or of the root of a cgroup namespace), then cgroup
// v1 (memory.limit_in_bytes).
const (
	procCgroup   = "/proc/self/cgroup"
	cgroupV2Root = "/sys/fs/cgroup"
	cgroupV1Root = "/sys/fs/cgroup/memory"
)

// memoryLimitShare is the part of the cgroup limit given to Go as a soft
// memory limit: the rest is for memory the Go runtime does not count (C
// code, the kernel's accounting of the process's page cache).
const memoryLimitShare = 0.9

// setMemoryLimit gives the Go runtime a soft memory limit (as GOMEMLIMIT
// does) of 90% of the cgroup's memory limit, unless GOMEMLIMIT is set or no
// limit is found: with GOGC=400 the heap may otherwise grow to five times
// its live size before a collection, and reach the cgroup limit with
// garbage. It returns the limit set (0 for none).
func setMemoryLimit(log *slog.Logger, getenv func(string) string, readFile func(string) ([]byte, error)) int64 {
	if getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit, from := cgroupMemoryLimit(readFile)
	if limit <= 0 {
		return 0
	}
	soft := int64(float64(limit) * memoryLimitShare)
	debug.SetMemoryLimit(soft)
	log.Info("Go memory limit set from the cgroup (GOMEMLIMIT overrides)", "limit_mb", soft>>20, "cgroup_limit_mb", limit>>20, "file", from)
	return soft
}

// cgroupMemoryLimit returns the memory limit of the process's cgroup in
// bytes (the smallest of its own and its ancestors' limits) and the file it
// was read from, or 0 when there is none.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) (int64, string) {
	var files []string
	if data, err := readFile(procCgroup); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			// hierarchy-ID:controller-list:cgroup-path
			parts := strings.SplitN(sc.Text(), ":", 3)
			if len(parts) != 3 {
				continue
			}
			switch {
			case parts[0] == "0" && parts[1] == "":
				files = append(files, withAncestors(cgroupV2Root, parts[2], "memory.max")...)
			case hasController(parts[1], "memory"):
				files = append(files, withAncestors(cgroupV1Root, parts[2], "memory.limit_in_bytes")...)
			}
		}
	}
	// Inside a cgroup namespace the own cgroup is the root of the mount.
	files = append(files, cgroupV2Root+"/memory.max", cgroupV1Root+"/memory.limit_in_bytes")
	var limit int64
	var from string
	for _, f := range files {
		data, err := readFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
		// "max" (v2) and a page-rounded MaxInt64 (v1) mean no limit.
		if err != nil || n <= 0 || n >= 1<<60 {
			continue
		}
		if limit == 0 || n < limit {
			limit, from = n, f
		}
	}
	return limit, from
}

// withAncestors returns root/dir/file for dir and each of its parents up to
// the root.
func withAncestors(root, dir, file string) []string {
	var out []string
	for {
		out = append(out, path.Join(root, dir, file))
		if dir == "/" || dir == "" || dir == "." {
			return out
		}
		dir = path.Dir(dir)
	}
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}
