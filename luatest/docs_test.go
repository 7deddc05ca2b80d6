package luatest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"kemi/luatest"
	"kemi/luavm"
)

// docBlock is one fenced code block of a Markdown file.
type docBlock struct {
	lang string
	line int // of the opening fence
	text string
}

func docBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []docBlock
	var cur *docBlock
	var body []string
	for i, l := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(l)
		if !strings.HasPrefix(trimmed, "```") {
			if cur != nil {
				body = append(body, strings.TrimPrefix(l, l[:len(l)-len(strings.TrimLeft(l, " "))]))
			}
			continue
		}
		if cur == nil {
			cur = &docBlock{lang: strings.TrimPrefix(trimmed, "```"), line: i + 1}
			body = nil
			continue
		}
		cur.text = strings.Join(body, "\n") + "\n"
		out = append(out, *cur)
		cur = nil
	}
	return out
}

// TestDocSamples runs the samples of docs/testing.md as a user would copy
// them: the first test's kemi.cfg and app.lua make a project, every Lua
// block that registers tests is a test file of it (tests/lua/, where
// t.config("../../scripts/proxy.cfg") finds the repository's scripts) and
// must pass, and every other Lua block must compile.
func TestDocSamples(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(t, filepath.Join(repo, "docs/testing.md"))
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "tests/lua"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(repo, "scripts"), filepath.Join(dir, "scripts")); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var tests []string
	haveCfg, haveApp := false, false
	for _, b := range blocks {
		where := fmt.Sprintf("docs/testing.md:%d", b.line)
		switch {
		case !haveCfg && strings.HasPrefix(b.text, "#!KAMAILIO"):
			write("kemi.cfg", b.text)
			haveCfg = true
		case b.lang != "lua":
		case strings.Contains(b.text, "t.test(") || strings.Contains(b.text, "t.it("):
			if !strings.Contains(b.text, `require("kemi.test")`) {
				t.Errorf("%s: a test sample without local t = require(\"kemi.test\") does not run as copied", where)
				continue
			}
			name := fmt.Sprintf("tests/lua/sample_%d_test.lua", b.line)
			write(name, b.text)
			tests = append(tests, name)
		case !haveApp && strings.Contains(b.text, "function ksr_request_route"):
			write("app.lua", b.text)
			haveApp = true
		default:
			if _, err := luavm.Compile(where, []byte(b.text)); err != nil {
				t.Errorf("%s: the sample does not compile: %v", where, err)
			}
		}
	}
	if !haveCfg || !haveApp || len(tests) < 3 {
		t.Fatalf("docs/testing.md: found kemi.cfg %v, app.lua %v, %d test samples", haveCfg, haveApp, len(tests))
	}
	t.Logf("docs/testing.md: %d test samples, %d blocks", len(tests), len(blocks))
	t.Chdir(dir)
	for _, name := range tests {
		var out bytes.Buffer
		sum, err := luatest.Run(context.Background(), []string{name}, luatest.Options{Out: &out})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if sum.Failed > 0 || sum.Passed == 0 {
			t.Errorf("docs/testing.md sample %s: %s\n%s", name, sum, out.String())
		}
	}
}
