package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// parseOne parses src and returns its only statement.
func parseOne(t *testing.T, src string, opts Options) Stmt {
	t.Helper()
	cfg, err := Parse("t.cfg", []byte(src), opts)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	if len(cfg.Stmts) != 1 {
		t.Fatalf("Parse(%q): %d statements, want 1: %v", src, len(cfg.Stmts), cfg.Stmts)
	}
	return cfg.Stmts[0]
}

// parseErr parses src and returns the error message, failing if none.
func parseErr(t *testing.T, src string, opts Options) string {
	t.Helper()
	_, err := Parse("t.cfg", []byte(src), opts)
	if err == nil {
		t.Fatalf("Parse(%q): no error", src)
	}
	return err.Error()
}

func TestValues(t *testing.T) {
	for _, tc := range []struct {
		src   string
		want  Value
		extra string
	}{
		{"x=1", Value{Str: "1", Int: 1, IsInt: true}, ""},
		{"x = 42 ;", Value{Str: "42", Int: 42, IsInt: true}, ""},
		{"x=0", Value{Str: "0", IsInt: true}, ""},
		{"x=-1", Value{Str: "-1", Int: -1, IsInt: true}, ""},
		{"x=-0x10", Value{Str: "-0x10", Int: -16, IsInt: true}, ""},
		{"x=0x1f", Value{Str: "0x1f", Int: 31, IsInt: true}, ""},
		{"x=0XFF", Value{Str: "0XFF"}, ""}, // Kamailio's hex prefix is lowercase 0x
		{"x=0644", Value{Str: "0644", Int: 420, IsInt: true}, ""},
		{"x=110b", Value{Str: "110b", Int: 6, IsInt: true}, ""},
		{"x=09", Value{Str: "09"}, ""},
		{"x=5060abc", Value{Str: "5060abc"}, ""},
		{"x=1.5", Value{Str: "1.5"}, ""},
		{"x=yes", Value{Str: "yes", Int: 1, IsInt: true}, ""},
		{"x=true", Value{Str: "true", Int: 1, IsInt: true}, ""},
		{"x=on", Value{Str: "on", Int: 1, IsInt: true}, ""},
		{"x=enable", Value{Str: "enable", Int: 1, IsInt: true}, ""},
		{"x=no", Value{Str: "no", IsInt: true}, ""},
		{"x=false", Value{Str: "false", IsInt: true}, ""},
		{"x=off", Value{Str: "off", IsInt: true}, ""},
		{"x=disable", Value{Str: "disable", IsInt: true}, ""},
		{"x=YES", Value{Str: "YES"}, ""}, // keywords are case-sensitive
		{"x=word", Value{Str: "word"}, ""},
		{`x="yes"`, Value{Str: "yes"}, ""},
		{`x="12"`, Value{Str: "12"}, ""},
		{`x=""`, Value{}, ""},
		{"x=''", Value{}, ""},
		{"x=udp:127.0.0.1:5060", Value{Str: "udp:127.0.0.1:5060"}, ""},
		{"x=tcp:[::1]:5060", Value{Str: "tcp:[::1]:5060"}, ""},
		{"x=udp:[fe80::1%eth0]:5060", Value{Str: "udp:[fe80::1%eth0]:5060"}, ""},
		{"x=udp:eth0:5060", Value{Str: "udp:eth0:5060"}, ""},
		{"x=udp:( a , b ):5060", Value{Str: "udp:( a , b ):5060"}, ""},
		{"x=/var/run/kamailio/", Value{Str: "/var/run/kamailio/"}, ""},
		{"x=a-b.c_d", Value{Str: "a-b.c_d"}, ""},
		{"x=$var(x)", Value{Str: "$var(x)"}, ""},
		{"listen=udp:1.2.3.4:5060 advertise 5.6.7.8:5080", Value{Str: "udp:1.2.3.4:5060"}, "advertise 5.6.7.8:5080"},
		{`listen=udp:1.2.3.4:5060 name "s1"`, Value{Str: "udp:1.2.3.4:5060"}, `name "s1"`},
		{`listen=udp:1.2.3.4:5060   name   'a"b'  ;`, Value{Str: "udp:1.2.3.4:5060"}, `name "a\"b"`},
		{"listen=udp:1.2.3.4:5060 virtual", Value{Str: "udp:1.2.3.4:5060"}, "virtual"},
		{"listen=udp:1.2.3.4:5060 # comment", Value{Str: "udp:1.2.3.4:5060"}, ""},
		{"listen=udp:1.2.3.4:5060/* c */advertise 5.6.7.8", Value{Str: "udp:1.2.3.4:5060"}, "advertise 5.6.7.8"},
	} {
		st := parseOne(t, tc.src, Options{})
		if st.Kind != Global || st.Value != tc.want || st.Extra != tc.extra {
			t.Errorf("%s: got %v %+v extra %q, want %+v extra %q", tc.src, st.Kind, st.Value, st.Extra, tc.want, tc.extra)
		}
	}
}

func TestEscapes(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`"plain"`, "plain"},
		{`"a\nb\rc\td"`, "a\nb\rc\td"},
		{`"\a"`, "\a"},
		{`"q\"q"`, `q"q`},
		{`"b\\b"`, `b\b`},
		{`"\x41\x4A\x7"`, "AJ\x07"},
		{`"\x"`, `\x`},
		{`"\xg"`, `\xg`},
		{`"\101\1010"`, "AA0"},
		{`"\60"`, "0"},
		{`"\1 \9 \d \."`, `\1 \9 \d \.`},
		{"\"a\\\nb\"", "ab"},
		{"\"a\\\r\nb\"", "ab"},
		{"\"a\nb\"", "a\nb"},
		{`"a" "b"`, "ab"},
		{"\"a\"\t\"b\" \"c\"", "abc"},
		{"\"a\"\n  \"b\"", "ab"},
		{`"a"/**/"b"`, "a"}, // a comment stops the joining: "b" is then an extra token
		{`'a\nb'`, `a\nb`},
		{`'a"b'`, `a"b`},
		{`'#x' `, "#x"},
		{`"//x"`, "//x"},
		{`"/*x*/"`, "/*x*/"},
		{`"é"`, "é"},
	} {
		src := "x=" + tc.src
		if strings.Contains(tc.src, "/**/") {
			_, err := Parse("t.cfg", []byte(src), Options{})
			if err == nil || !strings.Contains(err.Error(), `unexpected string "b"`) {
				t.Errorf("%s: got %v, want an error on string \"b\"", tc.src, err)
			}
			continue
		}
		st := parseOne(t, src, Options{})
		if st.Value.Str != tc.want || st.Value.IsInt {
			t.Errorf("%s: got %q, want %q", tc.src, st.Value.Str, tc.want)
		}
	}
}

func TestDefinesOptions(t *testing.T) {
	opts := Options{Defines: map[string]string{
		"WITH_DEBUG": "",
		"CHILDREN":   "8",
		"DBURL":      `"sqlite:////tmp/opt.db"`,
	}}
	src := `#!ifdef WITH_DEBUG
debug=4
#!endif
#!trydef CHILDREN 2
children=CHILDREN
modparam("mqueue", "db_url", DBURL)
#!define LOCAL 1
`
	cfg, err := Parse("t.cfg", []byte(src), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := []Stmt{
		{Kind: Global, Pos: Pos{"t.cfg", 2}, Name: "debug", Value: Value{Str: "4", Int: 4, IsInt: true}},
		{Kind: Global, Pos: Pos{"t.cfg", 5}, Name: "children", Value: Value{Str: "8", Int: 8, IsInt: true}},
		{Kind: ModParam, Pos: Pos{"t.cfg", 6}, Name: "mqueue", Param: "db_url", Value: Value{Str: "sqlite:////tmp/opt.db"}},
	}
	if !reflect.DeepEqual(cfg.Stmts, want) {
		t.Errorf("stmts:\n got %+v\nwant %+v", cfg.Stmts, want)
	}
	wantDefs := map[string]string{
		"WITH_DEBUG": "",
		"CHILDREN":   "8",
		"DBURL":      `"sqlite:////tmp/opt.db"`,
		"LOCAL":      "1",
	}
	if !reflect.DeepEqual(cfg.Defines, wantDefs) {
		t.Errorf("defines: got %v, want %v", cfg.Defines, wantDefs)
	}
	if len(opts.Defines) != 3 {
		t.Errorf("Parse changed Options.Defines: %v", opts.Defines)
	}

	// #!define of a preset name fails, as with kamailio -A.
	msg := parseErr(t, "#!define CHILDREN 2\n", opts)
	if msg != `#!define "CHILDREN": already defined, at t.cfg:1` {
		t.Errorf("got %q", msg)
	}
}

func TestDefineSubstitution(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      Value
	}{
		{"int", "#!define N 5\nx=N", Value{Str: "5", Int: 5, IsInt: true}},
		{"quoted", "#!define S \"a b\"\nx=S", Value{Str: "a b"}},
		{"whole token only", "#!define N 5\nx=NN", Value{Str: "NN"}},
		{"not in strings", "#!define N 5\nx=\"N\"", Value{Str: "N"}},
		{"not after a digit", "#!define N 5\nx=1N", Value{Str: "1N"}},
		{"inside a socket", "#!define IP 10.1.2.3\nx=udp:IP:5060", Value{Str: "udp:10.1.2.3:5060"}},
		{"quoted inside a socket", "#!define IP \"10.1.2.3\"\nx=udp:IP:5060", Value{Str: "udp:10.1.2.3:5060"}},
		{"in a dotted name part", "#!define N 5\nx=a.N.b", Value{Str: "a.5.b"}},
		{"chain", "#!define A B\n#!define B C\n#!define C 3\nx=A", Value{Str: "3", Int: 3, IsInt: true}},
		{"late binding", "#!define A B\n#!define B 1\n#!redefine B 2\nx=A", Value{Str: "2", Int: 2, IsInt: true}},
		{"twice in one value", "#!define P 5060\nx=P:P", Value{Str: "5060:5060"}},
		{"yes word", "#!define ON yes\nx=ON", Value{Str: "yes", Int: 1, IsInt: true}},
		{"negative", "#!define N -3\nx=N", Value{Str: "-3", Int: -3, IsInt: true}},
		{"empty define disappears", "#!define E\nx=E 7", Value{Str: "7", Int: 7, IsInt: true}},
		{"value keeps inner blanks", "#!define S  a   b \nlisten=S", Value{Str: "a"}},
		{"line continuation", "#!define S \"a\\\nb\"\nx=S", Value{Str: "ab"}},
		{"comment ends with the value", "#!define N 5 // five\nx=N", Value{Str: "5", Int: 5, IsInt: true}},
		{"undef", "#!define N 5\n#!undef N\nx=N", Value{Str: "N"}},
		{"undef unknown is fine", "#!undef NOPE\nx=1", Value{Str: "1", Int: 1, IsInt: true}},
		{"trydef keeps", "#!define N 5\n#!trydef N 6\nx=N", Value{Str: "5", Int: 5, IsInt: true}},
		{"redefine new", "#!redefine N 6\nx=N", Value{Str: "6", Int: 6, IsInt: true}},
		{"bang prefix", "!!define N 6\nx=N", Value{Str: "6", Int: 6, IsInt: true}},
		{"the name too", "#!define NAME children\nNAME=4", Value{Str: "4", Int: 4, IsInt: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := parseOne(t, tc.src, Options{})
			if st.Value != tc.want {
				t.Errorf("got %+v, want %+v", st.Value, tc.want)
			}
		})
	}
}

func TestDefineExpansionLimit(t *testing.T) {
	// D0 expands to two D1, each to two D2...: 2^30 expansions.
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, "#!define D%d D%d D%d\n", i, i+1, i+1)
	}
	b.WriteString("#!define D30 1\nlisten=D0\n")
	msg := parseErr(t, b.String(), Options{})
	if !strings.Contains(msg, "too many define expansions") || !strings.HasSuffix(msg, "at t.cfg:32") {
		t.Errorf("got %q", msg)
	}
}

func TestNestedIfdef(t *testing.T) {
	src := `#!ifdef A
a=1
#!ifdef B
ab=1
#!ifndef C
ab_notc=1
#!else
abc=1
#!endif
#!else
a_notb=1
#!endif
#!else
!!ifdef B
nota_b=1
!!endif
nota=1
#!endif
end=1
`
	for _, tc := range []struct {
		defs []string
		want []string
	}{
		{nil, []string{"nota", "end"}},
		{[]string{"B"}, []string{"nota_b", "nota", "end"}},
		{[]string{"A"}, []string{"a", "a_notb", "end"}},
		{[]string{"A", "B"}, []string{"a", "ab", "ab_notc", "end"}},
		{[]string{"A", "B", "C"}, []string{"a", "ab", "abc", "end"}},
		{[]string{"A", "C"}, []string{"a", "a_notb", "end"}},
	} {
		opts := Options{Defines: map[string]string{}}
		for _, d := range tc.defs {
			opts.Defines[d] = ""
		}
		cfg, err := Parse("t.cfg", []byte(src), opts)
		if err != nil {
			t.Fatalf("%v: %v", tc.defs, err)
		}
		var got []string
		for _, st := range cfg.Stmts {
			got = append(got, st.Name)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("defines %v: got %v, want %v", tc.defs, got, tc.want)
		}
	}
}

// memFS returns a ReadFile over an in-memory tree, recording the paths
// asked for.
func memFS(files map[string]string, asked *[]string) func(string) ([]byte, error) {
	return func(path string) ([]byte, error) {
		*asked = append(*asked, path)
		if data, ok := files[path]; ok {
			return []byte(data), nil
		}
		if path == "/etc/kamailio/denied.cfg" {
			return nil, fs.ErrPermission
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
}

func TestInclude(t *testing.T) {
	files := map[string]string{
		"/etc/kamailio/inc/a.cfg":    "a=1\ninclude_file \"b.cfg\"\na_end=1\n",
		"/etc/kamailio/inc/b.cfg":    "b=1\n",
		"/opt/abs.cfg":               "abs=1\n",
		"/etc/kamailio/defs.cfg":     "#!define FROM_DEFS 3\n",
		"/etc/kamailio/nofinal.cfg":  "x=1", // no final newline
		"/etc/kamailio/bom.cfg":      "\uFEFFbom=1\n",
		"/etc/kamailio/inc/self.cfg": "include_file \"self.cfg\"\n",
		"/etc/kamailio/inc/deep.cfg": "include_file \"deep.cfg\"\n",
	}
	var asked []string
	opts := Options{ReadFile: memFS(files, &asked)}
	src := `top=1
include_file "inc/a.cfg"
#!include_file "/opt/abs.cfg"
import_file "missing.cfg"
!!import_file "defs.cfg"
defs=FROM_DEFS
include_file "nofinal.cfg"
include_file "bom.cfg"
top_end=1
`
	cfg, err := Parse("/etc/kamailio/kamailio.cfg", []byte(src), opts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range cfg.Stmts {
		got = append(got, st.Pos.String()+" "+st.Name)
	}
	want := []string{
		"/etc/kamailio/kamailio.cfg:1 top",
		"/etc/kamailio/inc/a.cfg:1 a",
		"/etc/kamailio/inc/b.cfg:1 b",
		"/etc/kamailio/inc/a.cfg:3 a_end",
		"/opt/abs.cfg:1 abs",
		"/etc/kamailio/kamailio.cfg:6 defs",
		"/etc/kamailio/nofinal.cfg:1 x",
		"/etc/kamailio/bom.cfg:1 bom",
		"/etc/kamailio/kamailio.cfg:9 top_end",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantAsked := []string{
		"/etc/kamailio/inc/a.cfg", "/etc/kamailio/inc/b.cfg", "/opt/abs.cfg",
		"/etc/kamailio/missing.cfg", "/etc/kamailio/defs.cfg", "/etc/kamailio/nofinal.cfg",
		"/etc/kamailio/bom.cfg",
	}
	if !reflect.DeepEqual(asked, wantAsked) {
		t.Errorf("read %v, want %v", asked, wantAsked)
	}

	for _, tc := range []struct{ src, want string }{
		{`include_file "missing.cfg"`, `include_file "missing.cfg": open /etc/kamailio/missing.cfg: file does not exist, at /etc/kamailio/kamailio.cfg:1`},
		{`import_file "denied.cfg"`, `import_file "denied.cfg": permission denied, at /etc/kamailio/kamailio.cfg:1`},
		{`include_file "inc/self.cfg"`, `include_file "self.cfg": include cycle, at /etc/kamailio/inc/self.cfg:1`},
		{"#!include_file \"inc/b.cfg\" x", `unexpected "x" after include_file "inc/b.cfg", at /etc/kamailio/kamailio.cfg:1`},
		{"include_file\n\"inc/b.cfg\"", `include_file: expected a quoted file name, at /etc/kamailio/kamailio.cfg:1`},
	} {
		_, err := Parse("/etc/kamailio/kamailio.cfg", []byte(tc.src), opts)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.src, err, tc.want)
		}
	}

	// A missing file stays errors.Is-able through the *Error.
	_, err = Parse("/etc/kamailio/kamailio.cfg", []byte(`include_file "missing.cfg"`), opts)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
}

func TestIncludeDepth(t *testing.T) {
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("/c/f%d.cfg", i)] = fmt.Sprintf("include_file \"f%d.cfg\"\n", i+1)
	}
	var asked []string
	_, err := Parse("/c/main.cfg", []byte(`include_file "f0.cfg"`), Options{ReadFile: memFS(files, &asked)})
	want := `include_file "f10.cfg": too many nested includes (more than 10), at /c/f9.cfg:1`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestParseFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("kamailio.cfg", "loadmodule \"tm.so\"\ninclude_file \"conf.d/tm.cfg\"\ncfgengine \"lua\"\n")
	write("conf.d/tm.cfg", "\n\nmodparam(\"tm\", \"fr_timer\", 5000)\n")

	cfg, err := ParseFile(filepath.Join(dir, "kamailio.cfg"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Stmt{
		{Kind: LoadModule, Pos: Pos{filepath.Join(dir, "kamailio.cfg"), 1}, Name: "tm.so"},
		{Kind: ModParam, Pos: Pos{filepath.Join(dir, "conf.d/tm.cfg"), 3}, Name: "tm", Param: "fr_timer",
			Value: Value{Str: "5000", Int: 5000, IsInt: true}},
		{Kind: CfgEngine, Pos: Pos{filepath.Join(dir, "kamailio.cfg"), 3}, Name: "lua"},
	}
	if !reflect.DeepEqual(cfg.Stmts, want) {
		t.Errorf("got %+v\nwant %+v", cfg.Stmts, want)
	}

	_, err = ParseFile(filepath.Join(dir, "nope.cfg"), Options{})
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read config: ") {
		t.Errorf("missing file: got %v", err)
	}
}

func TestNativeRoutes(t *testing.T) {
	for _, src := range []string{
		"request_route {\n}",
		"route {\n}",
		"route[RELAY] {\n}",
		"route(RELAY);",
		"reply_route {\n}",
		"onreply_route[MANAGE_REPLY] {\n}",
		"failure_route[MANAGE_FAILURE] {\n}",
		"branch_route[MANAGE_BRANCH] {\n}",
		"event_route[xhttp:request] {\n}",
		"onsend_route {\n}",
	} {
		kw := src[:strings.IndexAny(src, " [(")]
		_, err := Parse("kemi.cfg", []byte("debug=2\n"+src), Options{})
		if !errors.Is(err, ErrNativeRoute) {
			t.Errorf("%s: got %v, want ErrNativeRoute", src, err)
			continue
		}
		want := "native route blocks are not supported (" + kw +
			`): kemi runs only cfgengine "lua"; move the logic to the Lua script, at kemi.cfg:2`
		if err.Error() != want {
			t.Errorf("%s:\n got %s\nwant %s", src, err, want)
		}
	}
}

func TestLineNumbers(t *testing.T) {
	src := "\uFEFF# bom first\r\n" + // 1
		"a=1\r\n" + // 2
		"b=\"x\n" + // 3
		"y\"\n" + // 4
		"/* 1\n" + // 5
		"2 */ c=1\n" + // 6
		"listen=udp:1.2.3.4:5060\\\n" + // 7
		"  advertise 5.6.7.8\n" + // 8
		"modparam(\"m\",\n" + // 9
		"\"p\",\n" + // 10
		"1) e=1\n" // 11
	_, err := Parse("t.cfg", []byte(src), Options{})
	if err == nil || err.Error() != `unexpected "e" after modparam(...): expected ";" or a new line, at t.cfg:11` {
		t.Fatalf("got %v", err)
	}
	src = strings.TrimSuffix(src, " e=1\n") + "\nf=1"
	cfg, err := Parse("t.cfg", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range cfg.Stmts {
		got = append(got, fmt.Sprintf("%d %s %q %q", st.Pos.Line, st.Name, st.Value.String(), st.Extra))
	}
	want := []string{
		`2 a "1" ""`,
		`3 b "x\ny" ""`,
		`6 c "1" ""`,
		`7 listen "udp:1.2.3.4:5060" "advertise 5.6.7.8"`,
		`9 m "1" ""`,
		`12 f "1" ""`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSubst(t *testing.T) {
	for _, tc := range []struct{ rule, in, want string }{
		{"/a/b/", "aaa", "baa"},
		{"/a/b/g", "aaa", "bbb"},
		{"/A/b/gi", "aAa", "bbb"},
		{"/(x)(y)/\\2\\1\\0/", "xy", "yxxy"},
		{"!/!-!g", "a/b/c", "a-b-c"},
		{"/a\\/b/c/", "a/b", "c"},
		{"/x/a\\/b/", "x", "a/b"},
		{"/x/\\n\\t\\\\/", "x", "\n\t\\"},
		{"/x/$1$$/", "x", "$1$$"},
		{"/^$/empty/", "", ""}, // Kamailio skips empty strings
		{"/^b/B/g", "a\nb", "a\nB"},
		{"/^b/B/gs", "a\nb", "a\nb"},
		{"/a.b/X/s", "a\nb", "X"},
		{"/q(z)?/[\\1]/", "q", "[]"},
	} {
		src := "#!subst \"" + strings.ReplaceAll(strings.ReplaceAll(tc.rule, `\`, `\\`), `"`, `\"`) + "\"\nx=\"" +
			strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(tc.in, `\`, `\\`), "\n", `\n`), `"`, `\"`) + "\""
		st := parseOne(t, src, Options{})
		if st.Value.Str != tc.want {
			t.Errorf("%s on %q: got %q, want %q", tc.rule, tc.in, st.Value.Str, tc.want)
		}
	}
}

func TestSubstdef(t *testing.T) {
	cfg, err := Parse("t.cfg", []byte(`#!substdef "!HOST!sip.example.com!g"
#!substdefs "/QNAME/host two/"
a=HOST
b="HOST"
c=QNAME
d="QNAME"
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, st := range cfg.Stmts {
		got = append(got, st.Value.Str)
	}
	want := []string{"sip.example.com", "sip.example.com", "host two", "host two"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if cfg.Defines["HOST"] != "sip.example.com" || cfg.Defines["QNAME"] != `"host two"` {
		t.Errorf("defines %q", cfg.Defines)
	}
}

func TestErrorType(t *testing.T) {
	_, err := Parse("kemi.cfg", []byte("debug=2\n}\n"), Options{})
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("%T is not *Error", err)
	}
	if ce.Pos != (Pos{"kemi.cfg", 2}) {
		t.Errorf("pos %v", ce.Pos)
	}
	if ce.Err.Error() != `unexpected "}": expected a statement` {
		t.Errorf("message %q", ce.Err)
	}

	base := errors.New("must be 0..2")
	e := Errorf(Pos{"kamailio.cfg", 12}, "modparam %s %s: %w", "mqueue", "db_mode", base)
	if e.Error() != "modparam mqueue db_mode: must be 0..2, at kamailio.cfg:12" {
		t.Errorf("Errorf: %q", e.Error())
	}
	if !errors.Is(e, base) || errors.Unwrap(e) == nil {
		t.Error("Errorf does not wrap")
	}
	if got := Errorf(Pos{}, "no position").Error(); got != "no position" {
		t.Errorf("zero pos: %q", got)
	}
	if got := Errorf(Pos{File: "kemi.cfg"}, "file only").Error(); got != "file only, at kemi.cfg" {
		t.Errorf("file-only pos: %q", got)
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"/usr/lib/x86_64-linux-gnu/kamailio/modules/tm.so": "tm",
		"tm.so":                "tm",
		"tm":                   "tm",
		"app_lua.so":           "app_lua",
		"modules/app_lua.so":   "app_lua",
		"/usr/lib/x/db_sqlite": "db_sqlite",
		"tm|sl":                "tm|sl",
		"":                     "",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestStringers(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Pos{"a.cfg", 3}.String(), "a.cfg:3"},
		{Value{Str: "yes", Int: 1, IsInt: true}.String(), "1"},
		{Value{Str: "0x10", Int: 16, IsInt: true}.String(), "16"},
		{Value{Str: "udp:1.2.3.4:5060"}.String(), "udp:1.2.3.4:5060"},
		{Value{}.String(), ""},
		{Global.String(), "global"},
		{LoadModule.String(), "loadmodule"},
		{ModParam.String(), "modparam"},
		{CfgEngine.String(), "cfgengine"},
		{Kind(0).String(), "kind(0)"},
		{Stmt{Kind: Global, Name: "listen", Value: Value{Str: "udp:a:1"}, Extra: "advertise b"}.String(), `listen="udp:a:1" advertise b`},
		{Stmt{Kind: Global, Name: "debug", Value: Value{Str: "2", Int: 2, IsInt: true}}.String(), "debug=2"},
		{Stmt{Kind: LoadModule, Name: "tm.so"}.String(), `loadmodule "tm.so"`},
		{Stmt{Kind: ModParam, Name: "tm", Param: "x", Value: Value{Str: "1", Int: 1, IsInt: true}}.String(), `modparam("tm", "x", 1)`},
		{Stmt{Kind: ModParam, Name: "tm", Param: "x", Value: Value{Str: "s"}}.String(), `modparam("tm", "x", "s")`},
		{Stmt{Kind: CfgEngine, Name: "lua"}.String(), `cfgengine "lua"`},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// TestParseConcurrent checks that Parse shares no state (run with -race).
func TestParseConcurrent(t *testing.T) {
	src, err := os.ReadFile("testdata/kamailio-5.6-lua.cfgtest")
	if err != nil {
		t.Fatal(err)
	}
	cfgText, _ := splitGolden(t, src)
	first, err := Parse("kemi.cfg", cfgText, Options{})
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			cfg, err := Parse("kemi.cfg", cfgText, Options{})
			if err == nil && !reflect.DeepEqual(cfg, first) {
				err = errors.New("different result")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func TestParseDefine(t *testing.T) {
	for _, tc := range []struct{ arg, name, value, err string }{
		{"WITH_DEBUG", "WITH_DEBUG", "", ""},
		{"N=4", "N", "4", ""},
		{`DBURL="sqlite:////tmp/x.db"`, "DBURL", `"sqlite:////tmp/x.db"`, ""},
		{"X=a=b", "X", "a=b", ""},
		{"X=", "X", "", ""},
		{"", "", "", `define "": name must be letters, digits and _, not starting with a digit`},
		{"1X=2", "", "", `define "1X=2": name must be letters, digits and _, not starting with a digit`},
		{"WITH-X", "", "", `define "WITH-X": name must be letters, digits and _, not starting with a digit`},
	} {
		name, value, err := ParseDefine(tc.arg)
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if name != tc.name || value != tc.value || msg != tc.err {
			t.Errorf("ParseDefine(%q) = %q, %q, %q; want %q, %q, %q", tc.arg, name, value, msg, tc.name, tc.value, tc.err)
		}
	}
}

func TestDefineValueErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"#!define A \"x\ny=A\n", `unterminated string in the value of define "A", at t.cfg:2`},
		{"#!define A 'x\n\ny=A\n", `unterminated string in the value of define "A", at t.cfg:3`},
		{"#!define A /* x\ny=A\n", `unterminated /* comment in the value of define "A", at t.cfg:2`},
		{"#!define A B\n#!define B }\ny=1\nA\n", `unexpected "}": expected a statement, at t.cfg:4`},
	} {
		if got := parseErr(t, tc.src, Options{}); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.src, got, tc.want)
		}
	}
}
