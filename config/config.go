package config

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Pos is a position in a configuration file: the file name as it was given
// to Parse (or resolved for an included file) and a 1-based line number.
type Pos struct {
	File string
	Line int
}

// String returns "file:line", or just the file name when Line is 0.
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// MarshalText encodes p as "file:line".
func (p Pos) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Value is the value of a global assignment or of a modparam.
//
// Integers (decimal, 0x hex, 0 octal, trailing-b binary, a leading "-") and
// the words yes/true/on/enable (1) and no/false/off/disable (0) set IsInt and
// Int; Str then keeps the literal as written ("0x1F", "yes", "-1"), which is
// handy in error messages. Anything else is a string in Str: the content of a
// quoted string (escapes decoded), a bare word, or a socket-like text such as
// "udp:127.0.0.1:5060" rebuilt from its pieces.
type Value struct {
	Str   string `json:"str,omitempty"`
	Int   int    `json:"int,omitempty"`
	IsInt bool   `json:"is_int,omitempty"`
}

// String returns the textual value: the decimal integer for an integer value,
// Str otherwise.
func (v Value) String() string {
	if v.IsInt {
		return strconv.Itoa(v.Int)
	}
	return v.Str
}

// Kind tells which statement a Stmt is.
type Kind int

// The statement kinds. The zero Kind is not a valid statement.
const (
	// Global is a core parameter assignment: name=value. mpath and
	// loadpath are globals too.
	Global Kind = iota + 1
	// LoadModule is loadmodule "path".
	LoadModule
	// ModParam is modparam("module", "param", value).
	ModParam
	// CfgEngine is cfgengine "name".
	CfgEngine
)

// String returns the lowercase name of the kind ("global", "modparam", ...).
func (k Kind) String() string {
	switch k {
	case Global:
		return "global"
	case LoadModule:
		return "loadmodule"
	case ModParam:
		return "modparam"
	case CfgEngine:
		return "cfgengine"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText encodes the kind by name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// Stmt is one statement of the configuration, in file order.
type Stmt struct {
	Kind Kind `json:"kind"`
	Pos  Pos  `json:"pos"`
	// Name is, for a Global, the parameter name ("listen", "children",
	// "kemi.onsend_route_callback"); for a LoadModule the module as written
	// ("tm.so", "/usr/lib/.../tm.so", "tm"); for a ModParam the module
	// field as written, which Kamailio treats as a regular expression
	// ("tm", "tm|sl"); for a CfgEngine the engine name.
	Name string `json:"name"`
	// Param is the parameter name of a ModParam.
	Param string `json:"param,omitempty"`
	// Value is the value of a Global or a ModParam.
	Value Value `json:"value,omitzero"`
	// Extra is, for a Global listen, the text after the socket (for
	// example `advertise 1.2.3.4:5060 name "s1"`). Words are kept as
	// written and quoted strings are re-quoted with strconv.Quote, so
	// strconv.Unquote recovers them.
	Extra string `json:"extra,omitempty"`
}

// Config is a parsed configuration.
type Config struct {
	// Stmts holds the statements in file order, included files spliced in
	// where they are included.
	Stmts []Stmt
	// Defines holds the preprocessor defines in force at the end of the
	// file: Options.Defines, #!define and #!substdef names. A define
	// without a value maps to "".
	Defines map[string]string
}

// Options tunes Parse and ParseFile. The zero value is ready to use.
type Options struct {
	// Defines are preset defines, like kamailio -A NAME or -A NAME=value.
	// An empty value defines the name without a value.
	Defines map[string]string
	// ReadFile reads an included file. A relative include_file path is
	// joined to the directory of the including file before the call.
	// ParseFile also reads the main file with it. Default os.ReadFile.
	ReadFile func(path string) ([]byte, error)
}

func (o Options) readFile() func(string) ([]byte, error) {
	if o.ReadFile != nil {
		return o.ReadFile
	}
	return os.ReadFile
}

// Parse parses the configuration src, read from filename. filename is used
// in positions and to resolve relative include_file paths. Every error it
// returns is an *Error carrying the file and line.
func Parse(filename string, src []byte, opts Options) (*Config, error) {
	lx := newLexer(filename, src, opts)
	p := &parser{lx: lx, stmts: []Stmt{}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return &Config{Stmts: p.stmts, Defines: lx.defines}, nil
}

// ParseFile reads path with Options.ReadFile (default os.ReadFile) and
// parses it.
func ParseFile(path string, opts Options) (*Config, error) {
	src, err := opts.readFile()(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, src, opts)
}

// ParseDefine splits a command-line define in kamailio -A form, "NAME" or
// "NAME=value", for Options.Defines. The value is kept as written, so
// -A 'DBURL="sqlite:////tmp/x.db"' defines a quoted string.
func ParseDefine(arg string) (name, value string, err error) {
	name, value, _ = strings.Cut(arg, "=")
	if !isIdent(name) {
		return "", "", fmt.Errorf("define %q: name must be letters, digits and _, not starting with a digit", arg)
	}
	return name, value, nil
}

// ModuleName returns the bare module name of a loadmodule path or name:
// "/usr/lib/x86_64-linux-gnu/kamailio/modules/tm.so" and "tm.so" give "tm",
// "app_lua" stays "app_lua".
func ModuleName(path string) string {
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[i+1:]
	}
	return strings.TrimSuffix(path, ".so")
}

// IntParam reads a modparam's integer value (a number, or a string holding
// one) and checks it is in min..max; errors name the module, the parameter
// and the statement's file:line.
func IntParam(st Stmt, mod string, min, max int) (int, error) {
	v := st.Value
	n := v.Int
	if !v.IsInt {
		var err error
		if n, err = strconv.Atoi(strings.TrimSpace(v.Str)); err != nil {
			return 0, Errorf(st.Pos, "modparam %s %s: expected an integer, got %q", mod, st.Param, v.Str)
		}
	}
	if n < min || n > max {
		return 0, Errorf(st.Pos, "modparam %s %s: must be %d..%d, got %d", mod, st.Param, min, max, n)
	}
	return n, nil
}
