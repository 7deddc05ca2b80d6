package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics or hangs, that every error is
// an *Error with a position, and that every statement has one. The seeds
// are the configs of testdata/*.cfgtest and a few edge cases; inputs that
// once failed go to testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.cfgtest")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		src, _ := splitGolden(f, data)
		f.Add(src)
	}
	for _, s := range []string{
		"",
		"#!define A\n#!ifdef A\nx=1\n#!endif\n",
		"include_file \"inc.cfg\"\n",
		"include_file \"loop.cfg\"\n",
		"import_file \"none.cfg\"\n",
		"#!substdef \"/X/1/g\"\nx=X\ny=\"X\"\n",
		"listen=udp:[::1]:5060 advertise 1.2.3.4:5060 name \"x\"\n",
		"modparam(\"a\",\"b\",-0x10)\n",
		"x=\"\\x4\\777\\\n\"'a'\n",
		"/* /* */",
	} {
		f.Add([]byte(s))
	}
	read := func(path string) ([]byte, error) {
		switch filepath.Base(path) {
		case "inc.cfg":
			return []byte("#!define INC 1\ninc=INC\n"), nil
		case "loop.cfg":
			return []byte("include_file \"loop.cfg\"\n"), nil
		}
		return nil, fs.ErrNotExist
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		opts := Options{Defines: map[string]string{"PRESET": "1", "EMPTY": ""}, ReadFile: read}
		cfg, err := Parse("fuzz.cfg", src, opts)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			if ce.Pos.File == "" || ce.Pos.Line < 1 {
				t.Fatalf("error without a position: %v", err)
			}
			if !strings.Contains(err.Error(), ", at ") {
				t.Fatalf("error message without position: %q", err)
			}
			return
		}
		for _, st := range cfg.Stmts {
			if st.Pos.File == "" || st.Pos.Line < 1 {
				t.Fatalf("statement without a position: %+v", st)
			}
			if st.Kind < Global || st.Kind > CfgEngine {
				t.Fatalf("bad kind: %+v", st)
			}
			if st.Extra != "" && st.Name != "listen" {
				t.Fatalf("extra on %q", st.Name)
			}
		}
	})
}
