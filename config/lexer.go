package config

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// Limits that keep hostile input from looping or exhausting memory.
const (
	// maxIncludeDepth is Kamailio's MAX_INCLUDE_DEPTH.
	maxIncludeDepth = 10
	// maxExpansions bounds define expansions per parse: a chain of defines
	// that each expand to two copies of the next grows exponentially.
	maxExpansions = 100000
)

type tokKind uint8

const (
	tEOF    tokKind = iota
	tIdent          // a letter or '_', then letters, digits, '_'
	tWord           // a digit, then letters, digits, '_' (numbers, "127", "0x1F")
	tString         // a quoted string; text is the decoded content
	tPunct          // any other single character
)

// token is one lexical token after preprocessing.
type token struct {
	kind tokKind
	text string
	pos  Pos
	nl   bool // first token of its line (or of an included file)
	sp   bool // white space or a comment precedes it
}

func (t token) is(punct string) bool { return t.kind == tPunct && t.text == punct }

// describe names the token for an error message.
func (t token) describe() string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tString:
		s := t.text
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return "string " + strconv.Quote(s)
	}
	return strconv.Quote(t.text)
}

// source is one input buffer: a file, or the value of a define being
// expanded at a use site.
type source struct {
	file      string
	data      []byte
	off       int
	line      int
	isDefine  bool
	define    string // name of the define being expanded
	ifBase    int    // len(lexer.ifs) when the file was entered
	lineStart bool   // only blanks since the start of the line (files only)
}

func (s *source) pos() Pos { return Pos{File: s.file, Line: s.line} }

// where qualifies a lexical error inside a define's value.
func (s *source) where() string {
	if s.isDefine {
		return " in the value of define " + strconv.Quote(s.define)
	}
	return ""
}

func (s *source) hasPrefix(p string) bool {
	return bytes.HasPrefix(s.data[s.off:], []byte(p))
}

// newline accounts for a '\n' already consumed.
func (s *source) newline() {
	if !s.isDefine {
		s.line++
	}
}

// continuation reports whether a backslash-newline starts at off and
// returns its length.
func (s *source) continuation() int {
	switch {
	case s.hasPrefix("\\\n"):
		return 2
	case s.hasPrefix("\\\r\n"):
		return 3
	}
	return 0
}

// skipToEOL moves to the next '\n' without consuming it.
func (s *source) skipToEOL() {
	if i := bytes.IndexByte(s.data[s.off:], '\n'); i >= 0 {
		s.off += i
	} else {
		s.off = len(s.data)
	}
}

// skipBlanks skips spaces and tabs (and the other blanks Kamailio eats) but
// not newlines.
func (s *source) skipBlanks() bool {
	start := s.off
	for s.off < len(s.data) && isBlank(s.data[s.off]) {
		s.off++
	}
	return s.off > start
}

// word reads [A-Za-z0-9_]* at off.
func (s *source) word() string {
	start := s.off
	for s.off < len(s.data) && isIdentChar(s.data[s.off]) {
		s.off++
	}
	return string(s.data[start:s.off])
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\b' || c == '\f' || c == '\v'
}

func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

// isIdent reports whether s is a whole identifier.
func isIdent(s string) bool {
	if s == "" || !isIdentStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isIdentChar(s[i]) {
			return false
		}
	}
	return true
}

// lexer turns the main file, the included files and define values into one
// token stream, running the preprocessor on the way.
type lexer struct {
	readFile    func(string) ([]byte, error)
	stack       []*source
	defines     map[string]string
	substs      []substRule
	ifs         []ifFrame
	falseFrames int // frames of ifs whose branch is off: skip while > 0
	expansions  int
	pendNL      bool
	pendSP      bool
	eof         Pos
}

func newLexer(filename string, src []byte, opts Options) *lexer {
	lx := &lexer{
		readFile: opts.readFile(),
		defines:  make(map[string]string, len(opts.Defines)),
		pendNL:   true,
		eof:      Pos{File: filename, Line: 1},
	}
	for k, v := range opts.Defines {
		lx.defines[k] = v
	}
	lx.stack = append(lx.stack, &source{
		file:      filename,
		data:      bytes.TrimPrefix(src, []byte("\uFEFF")),
		line:      1,
		lineStart: true,
	})
	return lx
}

func (lx *lexer) emit(k tokKind, text string, pos Pos) token {
	t := token{kind: k, text: text, pos: pos, nl: lx.pendNL, sp: lx.pendSP || lx.pendNL}
	lx.pendNL, lx.pendSP = false, false
	return t
}

// next returns the next token, or a tEOF token at the end of the main file.
func (lx *lexer) next() (token, error) {
	for len(lx.stack) > 0 {
		s := lx.stack[len(lx.stack)-1]
		if s.off >= len(s.data) {
			if err := lx.pop(); err != nil {
				return token{}, err
			}
			continue
		}
		if lx.falseFrames > 0 && !s.isDefine {
			if err := lx.skipLine(s); err != nil {
				return token{}, err
			}
			continue
		}
		c := s.data[s.off]
		switch {
		case c == '\n':
			s.off++
			s.newline()
			s.lineStart = !s.isDefine
			lx.pendNL = true
		case isBlank(c):
			s.off++
			lx.pendSP = true
		case c == '\\' && s.continuation() > 0:
			s.off += s.continuation()
			s.newline()
			s.lineStart = false
		case s.lineStart && (s.hasPrefix("#!") || s.hasPrefix("!!")):
			s.lineStart = false
			if err := lx.directive(s); err != nil {
				return token{}, err
			}
		case c == '#' || s.hasPrefix("//"):
			s.lineStart = false
			s.skipToEOL()
			lx.pendSP = true
		case s.hasPrefix("/*"):
			s.lineStart = false
			if err := lx.blockComment(s); err != nil {
				return token{}, err
			}
			lx.pendSP = true
		case c == '"' || c == '\'':
			s.lineStart = false
			pos := s.pos()
			str, err := lx.lexString(s, false)
			if err != nil {
				return token{}, err
			}
			return lx.emit(tString, str, pos), nil
		case isIdentStart(c):
			s.lineStart = false
			pos := s.pos()
			w := s.word()
			if w == "include_file" || w == "import_file" {
				if err := lx.include(s, w, pos, false); err != nil {
					return token{}, err
				}
				continue
			}
			if val, ok := lx.defines[w]; ok {
				if err := lx.expand(w, val, pos); err != nil {
					return token{}, err
				}
				continue
			}
			return lx.emit(tIdent, w, pos), nil
		case isDigit(c):
			s.lineStart = false
			pos := s.pos()
			return lx.emit(tWord, s.word(), pos), nil
		default:
			s.lineStart = false
			pos := s.pos()
			_, size := utf8.DecodeRune(s.data[s.off:])
			text := string(s.data[s.off : s.off+size])
			s.off += size
			return lx.emit(tPunct, text, pos), nil
		}
	}
	return token{kind: tEOF, pos: lx.eof, nl: true, sp: true}, nil
}

// pop leaves the exhausted source on top of the stack.
func (lx *lexer) pop() error {
	s := lx.stack[len(lx.stack)-1]
	lx.stack = lx.stack[:len(lx.stack)-1]
	if s.isDefine {
		return nil
	}
	if len(lx.ifs) > s.ifBase {
		f := lx.ifs[s.ifBase]
		return Errorf(f.pos, "%s %q has no matching #!endif", f.dir, f.name)
	}
	lx.pendNL = true
	if len(lx.stack) == 0 {
		line := s.line
		if line > 1 && len(s.data) > 0 && s.data[len(s.data)-1] == '\n' {
			line--
		}
		lx.eof = Pos{File: s.file, Line: line}
	}
	return nil
}

// expand pushes the value of define name, used at pos.
func (lx *lexer) expand(name, val string, pos Pos) error {
	for _, s := range lx.stack {
		if s.isDefine && s.define == name {
			return Errorf(pos, "define %q expands to itself", name)
		}
	}
	lx.expansions++
	if lx.expansions > maxExpansions {
		return Errorf(pos, "define %q: too many define expansions (more than %d)", name, maxExpansions)
	}
	if val == "" {
		return nil
	}
	lx.stack = append(lx.stack, &source{
		file:     pos.File,
		line:     pos.Line,
		data:     []byte(val),
		isDefine: true,
		define:   name,
	})
	return nil
}

// blockComment skips a /* */ comment, which nests as in Kamailio.
func (lx *lexer) blockComment(s *source) error {
	pos := s.pos()
	depth := 0
	for s.off < len(s.data) {
		switch {
		case s.hasPrefix("/*"):
			depth++
			s.off += 2
		case s.hasPrefix("*/"):
			depth--
			s.off += 2
			if depth == 0 {
				return nil
			}
		default:
			if s.data[s.off] == '\n' {
				s.newline()
				lx.pendNL = true
			}
			s.off++
		}
	}
	return Errorf(pos, "unterminated /* comment%s", s.where())
}

// lexString reads a quoted string starting at the quote under s.off and
// returns its content with the #!subst rules applied.
//
// As in Kamailio, a double-quoted string decodes \n \r \t \a \" \\ \xHH and
// \ooo (2 or 3 octal digits), drops a backslash-newline and keeps any other
// backslash as is; double-quoted strings separated only by white space are
// joined ("a" "b" is "ab"). A single-quoted string is taken verbatim. With
// sameLine, joining does not cross a newline (directive arguments).
func (lx *lexer) lexString(s *source, sameLine bool) (string, error) {
	pos := s.pos()
	q := s.data[s.off]
	s.off++
	var b []byte
	if q == '\'' {
		for {
			if s.off >= len(s.data) {
				return "", Errorf(pos, "unterminated string%s", s.where())
			}
			c := s.data[s.off]
			s.off++
			if c == '\'' {
				break
			}
			if c == '\n' {
				s.newline()
			}
			b = append(b, c)
		}
		return lx.applySubst(string(b)), nil
	}
	for {
		for {
			if s.off >= len(s.data) {
				return "", Errorf(pos, "unterminated string%s", s.where())
			}
			c := s.data[s.off]
			if c == '"' {
				s.off++
				break
			}
			if c == '\\' && s.off+1 < len(s.data) {
				b = lx.escape(s, b)
				continue
			}
			if c == '\n' {
				s.newline()
			}
			b = append(b, c)
			s.off++
		}
		// Join a following double-quoted string.
		j, lines := s.off, 0
		for j < len(s.data) {
			c := s.data[j]
			if isBlank(c) {
				j++
				continue
			}
			if c == '\n' && !sameLine {
				lines++
				j++
				continue
			}
			break
		}
		if j >= len(s.data) || s.data[j] != '"' {
			break
		}
		s.off = j + 1
		for range lines {
			s.newline()
		}
	}
	return lx.applySubst(string(b)), nil
}

// escape decodes the escape sequence at s.off (a backslash with at least
// one byte after it), appends it to b and advances.
func (lx *lexer) escape(s *source, b []byte) []byte {
	n := s.data[s.off+1]
	switch n {
	case 'n':
		s.off += 2
		return append(b, '\n')
	case 'r':
		s.off += 2
		return append(b, '\r')
	case 't':
		s.off += 2
		return append(b, '\t')
	case 'a':
		s.off += 2
		return append(b, '\a')
	case '"', '\\':
		s.off += 2
		return append(b, n)
	case '\n':
		s.off += 2
		s.newline()
		return b
	case '\r':
		if s.off+2 < len(s.data) && s.data[s.off+2] == '\n' {
			s.off += 3
			s.newline()
			return b
		}
	case 'x':
		v, k := 0, 0
		for k < 2 && s.off+2+k < len(s.data) {
			d := hexVal(s.data[s.off+2+k])
			if d < 0 {
				break
			}
			v = v*16 + d
			k++
		}
		if k > 0 {
			s.off += 2 + k
			return append(b, byte(v))
		}
	case '0', '1', '2', '3', '4', '5', '6', '7':
		v, k := 0, 0
		for k < 3 && s.off+1+k < len(s.data) {
			c := s.data[s.off+1+k]
			if c < '0' || c > '7' {
				break
			}
			v = v*8 + int(c-'0')
			k++
		}
		// A single digit stays "\1": subst back-references need it.
		if k >= 2 {
			s.off += 1 + k
			return append(b, byte(v))
		}
	}
	s.off++
	return append(b, '\\')
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
