package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// TestTestCommand runs `kemi test` in process from the repository root: the
// repository's suites pass (exit status 0, the default path tests/lua), the
// failing example exits 1 with its FAIL lines, and the flags reach the
// runner.
func TestTestCommand(t *testing.T) {
	t.Chdir("../..")
	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errb}
		err := m.Run(context.Background(), append([]string{"test"}, args...))
		return out.String(), errb.String(), err
	}

	out, _, err := run()
	if err != nil {
		t.Fatalf("kemi test on tests/lua: %v\n%s", err, out)
	}
	if !strings.Contains(out, "ok   tests/lua/") || !strings.Contains(out, " passed, 0 failed") {
		t.Fatalf("kemi test on tests/lua printed:\n%s", out)
	}

	out, _, err = run("tests/examples/failing_test.lua")
	var ex exitError
	if !errors.As(err, &ex) || ex != 1 {
		t.Fatalf("failing example: err %v, want exit status 1", err)
	}
	if !strings.Contains(out, "FAIL tests/examples/failing_test.lua: MESSAGE is accepted\n") ||
		!strings.HasSuffix(out, "1 passed, 2 failed\n") {
		t.Fatalf("failing example printed:\n%s", out)
	}

	out, _, err = run("-format", "tap", "-run", "OPTIONS", "tests/examples/failing_test.lua")
	if err != nil || out != "TAP version 13\nok 1 - tests/examples/failing_test.lua: OPTIONS is answered 200 OK\n1..1\n# 1 passed, 0 failed\n" {
		t.Fatalf("-format tap -run OPTIONS: %v\n%s", err, out)
	}

	if _, _, err := run("-run", "(", "tests/lua"); err == nil || !strings.Contains(err.Error(), "-run") {
		t.Fatalf("bad -run regexp: %v", err)
	}
	if _, _, err := run("-format", "yaml"); err == nil {
		t.Fatal("-format yaml accepted")
	}
	if _, _, err := run("no/such/dir"); err == nil {
		t.Fatal("a missing path is an error")
	}
}

// -cover prints the scripts' coverage after the report, -coverprofile
// writes lcov or (.xml) Cobertura, and a bad -covermode is a usage error.
func TestTestCommandCover(t *testing.T) {
	t.Chdir("../..")
	dir := t.TempDir()
	run := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errb}
		err := m.Run(context.Background(), append([]string{"test"}, args...))
		return out.String(), errb.String(), err
	}
	out, _, err := run("-cover", "-covermode", "count", "-coverprofile", dir+"/c.info", "tests/lua/maxfwd_test.lua")
	if err != nil || !strings.Contains(out, "3 passed, 0 failed\ncoverage: 100.0% of 6 lines  tests/lua/maxfwd.lua\ncoverage: 100.0% of 6 lines  total\n") {
		t.Fatalf("-cover: %v\n%s", err, out)
	}
	lcov, err := os.ReadFile(dir + "/c.info")
	if err != nil || !strings.Contains(string(lcov), "SF:tests/lua/maxfwd.lua\n") {
		t.Fatalf("lcov profile: %v\n%s", err, lcov)
	}
	out, errOut, err := run("-format", "tap", "-coverprofile", dir+"/c.xml", "tests/lua/maxfwd_test.lua")
	if err != nil || strings.Contains(out, "coverage:") || !strings.Contains(errOut, "coverage: 100.0%") {
		t.Fatalf("-format tap -coverprofile: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if x, err := os.ReadFile(dir + "/c.xml"); err != nil || !strings.Contains(string(x), `<class name="maxfwd" filename="tests/lua/maxfwd.lua" line-rate="1.0000">`) {
		t.Fatalf("cobertura profile: %v\n%s", err, x)
	}
	if _, _, err := run("-covermode", "atomic", "tests/lua/maxfwd_test.lua"); err == nil || !strings.Contains(err.Error(), "-covermode") {
		t.Fatalf("bad -covermode: %v", err)
	}
}

// -list prints names, -format json writes objects, and a -run matching
// nothing is an error (exit status 2), not a green run.
func TestTestCommandRunnerFlags(t *testing.T) {
	t.Chdir("../..")
	run := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errb}
		err := m.Run(context.Background(), append([]string{"test"}, args...))
		return out.String(), err
	}
	out, err := run("--list", "tests/lua/maxfwd_test.lua")
	if err != nil || out != "tests/lua/maxfwd_test.lua: decrements once: by the script, not again by t_relay\n"+
		"tests/lua/maxfwd_test.lua: lowers a value above max_limit to max_limit\n"+
		"tests/lua/maxfwd_test.lua: answers 483 when Max-Forwards is 0, without relaying\n" {
		t.Fatalf("--list: %v\n%s", err, out)
	}
	out, err = run("-format", "json", "-run", "483", "tests/lua/maxfwd_test.lua")
	if err != nil || !strings.Contains(out, `"status":"pass"`) || !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 2 {
		t.Fatalf("-format json: %v\n%s", err, out)
	}
	_, err = run("-run", "no such test", "tests/lua/maxfwd_test.lua")
	if err == nil || !strings.Contains(err.Error(), `no test matches -run "no such test"`) {
		t.Fatalf("-run matching nothing: %v", err)
	}
	var ex exitError
	if errors.As(err, &ex) {
		t.Fatalf("-run matching nothing must be a usage error (exit 2), got %v", ex)
	}
	if _, err := run("-shuffle", "sometimes", "tests/lua/maxfwd_test.lua"); err == nil || !strings.Contains(err.Error(), "-shuffle") {
		t.Fatalf("bad -shuffle: %v", err)
	}
	var errb bytes.Buffer
	m := &Main{Stdout: &bytes.Buffer{}, Stderr: &errb}
	if err := m.Run(context.Background(), []string{"test", "-shuffle", "7", "-tags", "nosuchtag", "-exclude-tags", "x", "tests/lua/maxfwd_test.lua"}); err == nil || !strings.Contains(err.Error(), "no test matches -tags nosuchtag") || !strings.Contains(errb.String(), "kemi test: -shuffle 7\n") {
		t.Fatalf("-shuffle 7 -tags nosuchtag: %v, stderr %q", err, errb.String())
	}
}
