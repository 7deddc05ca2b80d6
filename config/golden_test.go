package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected part of testdata/*.cfgtest")

// goldenSep separates the config from the expected result in a .cfgtest.
const goldenSep = "\n----\n"

// splitGolden splits a .cfgtest file into the config text and the expected
// result.
func splitGolden(t testing.TB, data []byte) (cfg []byte, want string) {
	t.Helper()
	i := bytes.Index(data, []byte(goldenSep))
	if i < 0 {
		t.Fatalf("no %q line", strings.TrimSpace(goldenSep))
	}
	return data[:i+1], strings.TrimSpace(string(data[i+len(goldenSep):]))
}

// testdataFS reads include_file paths relative to testdata/.
func testdataFS(path string) ([]byte, error) {
	return os.ReadFile(filepath.Join("testdata", path))
}

// TestGolden parses each testdata/*.cfgtest as kemi.cfg and compares the
// statements (as JSON) or the error ("error: <message>") with the part
// after the "----" line. go test -run Golden -update rewrites that part.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.cfgtest")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.cfgtest files")
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".cfgtest")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			src, want := splitGolden(t, data)
			cfg, err := Parse("kemi.cfg", src, Options{ReadFile: testdataFS})
			var got string
			if err != nil {
				got = "error: " + err.Error()
			} else {
				b, err := json.MarshalIndent(cfg.Stmts, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				got = string(b)
			}
			if *update {
				out := append(append([]byte{}, src...), "----\n"+got+"\n"...)
				if err := os.WriteFile(file, out, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if strings.HasPrefix(want, "error: ") || strings.HasPrefix(got, "error: ") {
				if got != want {
					t.Errorf("got  %s\nwant %s", got, want)
				}
				return
			}
			var compact bytes.Buffer
			if err := json.Compact(&compact, []byte(want)); err != nil {
				t.Fatalf("expected part is not JSON: %v", err)
			}
			gotCompact, _ := json.Marshal(cfg.Stmts)
			if !bytes.Equal(compact.Bytes(), gotCompact) {
				t.Errorf("statements differ; got:\n%s", got)
			}
		})
	}
}
