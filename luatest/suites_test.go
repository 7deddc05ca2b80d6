package luatest_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"kemi/luatest"
)

// TestSuites runs the repository's Lua suites: each tests/lua/*_test.lua
// in its own subtest, from its own directory, as `kemi test` would.
func TestSuites(t *testing.T) {
	files, err := filepath.Glob("../tests/lua/*_test.lua")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Lua suites found under ../tests/lua")
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			t.Chdir(filepath.Dir(f))
			var out bytes.Buffer
			sum, err := luatest.Run(context.Background(), []string{name}, luatest.Options{Out: &out})
			if err != nil {
				t.Fatalf("run %s: %v", name, err)
			}
			t.Log("\n" + out.String())
			if sum.Failed > 0 || sum.Passed == 0 {
				t.Errorf("%s: %s", name, sum)
			}
		})
	}
}
