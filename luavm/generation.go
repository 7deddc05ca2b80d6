package luavm

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/parse"
)

// Script is one compiled Lua file.
type Script struct {
	Path  string
	Proto *lua.FunctionProto
}

// Generation is one compiled version of the configured scripts, in load
// order. It is immutable once built.
type Generation struct {
	Version  int64
	Scripts  []Script
	Loaded   time.Time
	Checksum string // short hex digest of the sources, for status output

	cover   *Coverage                 // set when the scripts were instrumented
	prepare func(L *lua.LState) error // BuildOptions.Prepare

	constsOnce sync.Once
	consts     map[string]string // the scripts' string constants (intern.go)
}

// constants returns the scripts' string constants by content, collected
// once per generation.
func (g *Generation) constants() map[string]string {
	g.constsOnce.Do(func() { g.consts = constStrings(g) })
	return g.consts
}

// BuildOptions are compile-time choices for a generation; the zero value
// builds the scripts as they are.
type BuildOptions struct {
	// Cover, when set, instruments the scripts for line coverage (see
	// Coverage). Only kemi test sets it: the engine's scripts are otherwise
	// compiled untouched.
	Cover *Coverage
	// Prepare, when set, runs on every fresh Lua state of the generation
	// after Options.Init and before the scripts' top level (kemi test
	// wraps the KSR functions there for its spies and stubs).
	Prepare func(L *lua.LState) error
}

// Paths returns the script paths in load order.
func (g *Generation) Paths() []string {
	p := make([]string, len(g.Scripts))
	for i, s := range g.Scripts {
		p[i] = s.Path
	}
	return p
}

// CompileError is a script that does not compile; it prints as
// "path:line: message".
type CompileError struct {
	Path string
	Line int
	Msg  string
}

func (e *CompileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Compile parses and compiles one Lua source.
func Compile(path string, src []byte) (*lua.FunctionProto, error) {
	return compile(path, src, nil, map[string]string{})
}

// compile parses and compiles one Lua source, instrumented for cover when
// it is not nil. Its strings are interned in canon (intern.go), shared by
// the scripts of a generation.
func compile(path string, src []byte, cover *Coverage, canon map[string]string) (*lua.FunctionProto, error) {
	chunk, err := parse.Parse(bytes.NewReader(src), path)
	if err != nil {
		return nil, syntaxError(path, src, err)
	}
	if cover != nil {
		chunk = cover.instrument(path, chunk)
	}
	internAST(chunk, canon)
	proto, err := lua.Compile(chunk, path)
	if err != nil {
		return nil, &CompileError{Path: path, Msg: err.Error()}
	}
	return proto, nil
}

// syntaxError turns gopher-lua's parse error ("path line:N(column:M) near
// 'x':   msg") into a CompileError with the line.
func syntaxError(path string, src []byte, err error) error {
	pe, ok := err.(*parse.Error)
	if !ok {
		return &CompileError{Path: path, Msg: err.Error()}
	}
	if pe.Pos.Line < 0 { // the parser ran into the end of the file
		line := bytes.Count(src, []byte("\n"))
		if len(src) > 0 && src[len(src)-1] != '\n' {
			line++
		}
		return &CompileError{Path: path, Line: line, Msg: strings.TrimSpace(pe.Message) + ": unexpected end of file" + nearToken(pe.Token)}
	}
	return &CompileError{Path: path, Line: pe.Pos.Line, Msg: strings.TrimSpace(pe.Message) + nearToken(pe.Token)}
}

func nearToken(tok string) string {
	if tok == "" {
		return ""
	}
	return fmt.Sprintf(" near %q", tok)
}

// Build compiles the scripts at paths (read with readFile, os.ReadFile when
// nil) into a generation with the given version.
func Build(version int64, paths []string, readFile func(string) ([]byte, error)) (*Generation, error) {
	return BuildWith(version, paths, readFile, BuildOptions{})
}

// BuildWith is Build with compile-time options.
func BuildWith(version int64, paths []string, readFile func(string) ([]byte, error), o BuildOptions) (*Generation, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	g := &Generation{Version: version, Loaded: time.Now(), cover: o.Cover, prepare: o.Prepare}
	var sum uint64 = 14695981039346656037
	canon := map[string]string{}
	for _, p := range paths {
		src, err := readFile(p)
		if err != nil {
			return nil, fmt.Errorf("read script: %w", err)
		}
		for _, b := range src {
			sum ^= uint64(b)
			sum *= 1099511628211
		}
		proto, err := compile(p, src, o.Cover, canon)
		if err != nil {
			return nil, err
		}
		g.Scripts = append(g.Scripts, Script{Path: p, Proto: proto})
	}
	g.Checksum = fmt.Sprintf("%016x", sum)
	return g, nil
}
