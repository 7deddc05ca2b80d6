package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// ifFrame is one open #!ifdef or #!ifndef.
type ifFrame struct {
	pos     Pos
	dir     string // as written: "#!ifdef", "!!ifndef"
	name    string
	on      bool // the current branch is taken
	hasElse bool
}

type defineMode int

const (
	defNew   defineMode = iota // #!define: error if already defined
	defTry                     // #!trydef: keep an existing value
	defRedef                   // #!redefine: replace
)

// directive runs the preprocessor directive ("#!" or "!!" at the start of
// a line) under s.off. It stops before the end of line.
func (lx *lexer) directive(s *source) error {
	pos := s.pos()
	prefix := string(s.data[s.off : s.off+2])
	s.off += 2
	w := s.word()
	dir := prefix + w
	switch w {
	case "":
		if prefix == "#!" { // "#!" then a non-word: a comment, as in Kamailio
			s.skipToEOL()
			return nil
		}
		return Errorf(pos, "expected a preprocessor directive after %q", prefix)
	case "KAMAILIO", "OPENSER", "SER", "ALL", "MAXCOMPAT":
		s.skipToEOL()
		return nil
	case "define", "def":
		return lx.defineDir(s, pos, dir, defNew)
	case "trydef", "trydefine":
		return lx.defineDir(s, pos, dir, defTry)
	case "redefine", "redef":
		return lx.defineDir(s, pos, dir, defRedef)
	case "undef":
		name, err := readName(s, pos, dir)
		if err != nil {
			return err
		}
		if err := expectEOL(s, dir+" "+name); err != nil {
			return err
		}
		delete(lx.defines, name)
		return nil
	case "ifdef", "ifndef":
		name, err := readName(s, pos, dir)
		if err != nil {
			return err
		}
		if err := expectEOL(s, dir+" "+name); err != nil {
			return err
		}
		_, defined := lx.defines[name]
		f := ifFrame{pos: pos, dir: dir, name: name, on: defined == (w == "ifdef")}
		lx.ifs = append(lx.ifs, f)
		if !f.on {
			lx.falseFrames++
		}
		return nil
	case "else":
		if err := expectEOL(s, dir); err != nil {
			return err
		}
		if len(lx.ifs) <= s.ifBase {
			return Errorf(pos, "%s without a matching #!ifdef", dir)
		}
		f := &lx.ifs[len(lx.ifs)-1]
		if f.hasElse {
			return Errorf(pos, "%s: %s %q already has an #!else", dir, f.dir, f.name)
		}
		f.hasElse = true
		if f.on {
			lx.falseFrames++
		} else {
			lx.falseFrames--
		}
		f.on = !f.on
		return nil
	case "endif":
		if err := expectEOL(s, dir); err != nil {
			return err
		}
		if len(lx.ifs) <= s.ifBase {
			return Errorf(pos, "%s without a matching #!ifdef", dir)
		}
		if !lx.ifs[len(lx.ifs)-1].on {
			lx.falseFrames--
		}
		lx.ifs = lx.ifs[:len(lx.ifs)-1]
		return nil
	case "subst", "substdef", "substdefs":
		return lx.substDir(s, pos, dir, w)
	case "include_file", "import_file":
		return lx.include(s, w, pos, true)
	}
	return Errorf(pos, "unsupported preprocessor directive %q", dir)
}

// skipLine skips one line of a branch that is off, running only the
// conditional directives found at the start of a line.
func (lx *lexer) skipLine(s *source) error {
	if s.data[s.off] == '\n' {
		s.off++
		s.newline()
		s.lineStart = true
		lx.pendNL = true
		return nil
	}
	if s.lineStart {
		s.lineStart = false
		s.skipBlanks()
		if s.hasPrefix("#!") || s.hasPrefix("!!") {
			save := s.off
			s.off += 2
			w := s.word()
			s.off = save
			switch w {
			case "ifdef", "ifndef", "else", "endif":
				return lx.directive(s)
			}
		}
	}
	s.skipToEOL()
	return nil
}

// readName reads the blank-separated define name after a directive.
func readName(s *source, pos Pos, dir string) (string, error) {
	if !s.skipBlanks() {
		return "", Errorf(pos, "%s: expected a name", dir)
	}
	start := s.off
	name := s.word()
	if !isIdent(name) {
		return "", Errorf(pos, "%s: expected a name", dir)
	}
	if s.off < len(s.data) && s.data[s.off] == '-' {
		for s.off < len(s.data) && (isIdentChar(s.data[s.off]) || s.data[s.off] == '-') {
			s.off++
		}
		return "", Errorf(pos, "%s %q: \"-\" is not allowed in a name", dir, s.data[start:s.off])
	}
	return name, nil
}

// expectEOL accepts blanks and a # or // comment up to the end of line.
func expectEOL(s *source, after string) error {
	s.skipBlanks()
	if s.off >= len(s.data) || s.data[s.off] == '\n' {
		return nil
	}
	if s.data[s.off] == '#' || s.hasPrefix("//") {
		s.skipToEOL()
		return nil
	}
	start := s.off
	for s.off < len(s.data) && s.off-start < 30 && !isBlank(s.data[s.off]) && s.data[s.off] != '\n' {
		s.off++
	}
	return Errorf(s.pos(), "unexpected %q after %s", s.data[start:s.off], after)
}

// defineDir runs #!define, #!trydef and #!redefine. The value is the rest of
// the line, blanks trimmed, with backslash-newline joining lines.
func (lx *lexer) defineDir(s *source, pos Pos, dir string, mode defineMode) error {
	name, err := readName(s, pos, dir)
	if err != nil {
		return err
	}
	s.skipBlanks()
	var b []byte
	for s.off < len(s.data) && s.data[s.off] != '\n' {
		if n := s.continuation(); n > 0 {
			s.off += n
			s.newline()
			continue
		}
		b = append(b, s.data[s.off])
		s.off++
	}
	val := strings.TrimRight(string(b), " \t\r\b\f\v")
	if _, ok := lx.defines[name]; ok {
		switch mode {
		case defNew:
			return Errorf(pos, "%s %q: already defined", dir, name)
		case defTry:
			return nil
		}
	}
	lx.defines[name] = val
	return nil
}

// substDir runs #!subst, #!substdef and #!substdefs.
func (lx *lexer) substDir(s *source, pos Pos, dir, w string) error {
	s.skipBlanks()
	if s.off >= len(s.data) || (s.data[s.off] != '"' && s.data[s.off] != '\'') {
		return Errorf(pos, "%s: expected a quoted expression", dir)
	}
	expr, err := lx.lexString(s, true)
	if err != nil {
		return err
	}
	if err := expectEOL(s, dir+" "+strconv.Quote(expr)); err != nil {
		return err
	}
	rule, err := parseSubst(expr)
	if err != nil {
		return Errorf(pos, "%s %q: %w", dir, expr, err)
	}
	if w != "subst" {
		if _, ok := lx.defines[rule.name]; ok {
			return Errorf(pos, "%s %q: %q already defined", dir, expr, rule.name)
		}
		if w == "substdefs" {
			lx.defines[rule.name] = `"` + rule.value + `"`
		} else {
			lx.defines[rule.name] = rule.value
		}
	}
	lx.substs = append(lx.substs, rule)
	return nil
}

// include runs include_file and import_file, with or without the "#!"
// prefix: it pushes the named file, resolved against the directory of the
// including file. A missing import_file is skipped.
func (lx *lexer) include(s *source, w string, pos Pos, directive bool) error {
	s.skipBlanks()
	if s.off >= len(s.data) || (s.data[s.off] != '"' && s.data[s.off] != '\'') {
		return Errorf(pos, "%s: expected a quoted file name", w)
	}
	name, err := lx.lexString(s, true)
	if err != nil {
		return err
	}
	if directive {
		if err := expectEOL(s, w+" "+strconv.Quote(name)); err != nil {
			return err
		}
	}
	if name == "" {
		return Errorf(pos, "%s: empty file name", w)
	}
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(s.file), path)
	}
	files := 0
	for _, o := range lx.stack {
		if o.isDefine {
			continue
		}
		files++
		if o.file == path {
			return Errorf(pos, "%s %q: include cycle", w, name)
		}
	}
	if files > maxIncludeDepth {
		return Errorf(pos, "%s %q: too many nested includes (more than %d)", w, name, maxIncludeDepth)
	}
	data, err := lx.readFile(path)
	if err != nil {
		if w == "import_file" && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return Errorf(pos, "%s %q: %w", w, name, err)
	}
	lx.stack = append(lx.stack, &source{
		file:      path,
		data:      []byte(strings.TrimPrefix(string(data), "\uFEFF")),
		line:      1,
		ifBase:    len(lx.ifs),
		lineStart: true,
	})
	lx.pendNL = true
	return nil
}

// substRule is a parsed "/regexp/replacement/flags" expression.
type substRule struct {
	re    *regexp.Regexp
	repl  []replPart
	all   bool
	name  string // the regexp as written: the #!substdef name
	value string // the replacement as written: the #!substdef value
}

// replPart is a literal, or a back-reference when group >= 0.
type replPart struct {
	lit   string
	group int
}

// parseSubst parses a Kamailio subst expression: a separator character,
// the regular expression, the replacement and the flags, each part but the
// flags ended by the separator. Flags: i ignores case, g replaces every
// match, s lets "." match a newline and "^$" only match at the ends of the
// string (by default, as with POSIX REG_NEWLINE, "^$" match at each line).
// In the replacement \0..\9 are back-references and \n \r \t \\ and an
// escaped separator are the characters they name; any other escaped
// character is itself; $ is literal.
func parseSubst(expr string) (substRule, error) {
	var r substRule
	if expr == "" {
		return r, errors.New("empty expression")
	}
	sep := expr[0]
	if sep == '\\' || sep >= 0x80 || isIdentChar(sep) || isBlank(sep) || sep == '\n' {
		return r, fmt.Errorf("invalid separator %q", sep)
	}
	parts := make([]string, 0, 3)
	start := 1
	for i := 1; i < len(expr) && len(parts) < 2; i++ {
		switch expr[i] {
		case '\\':
			i++
		case sep:
			parts = append(parts, expr[start:i])
			start = i + 1
		}
	}
	if len(parts) < 2 {
		return r, fmt.Errorf("expected %cregexp%creplacement%c[flags]", sep, sep, sep)
	}
	flags := expr[start:]
	r.name, r.value = parts[0], parts[1]
	icase, single := false, false
	for i := 0; i < len(flags); i++ {
		switch flags[i] {
		case 'i':
			icase = true
		case 'g':
			r.all = true
		case 's':
			single = true
		default:
			return r, fmt.Errorf("unknown flag %q", flags[i])
		}
	}
	prefix := "(?m)" // POSIX REG_NEWLINE, Kamailio's default
	if single {
		prefix = "(?s)"
	}
	if icase {
		prefix += "(?i)"
	}
	if _, err := regexp.Compile(parts[0]); err != nil {
		return r, err
	}
	re, err := regexp.Compile(prefix + parts[0])
	if err != nil {
		return r, err
	}
	r.re = re
	var lit []byte
	flush := func() {
		if len(lit) > 0 {
			r.repl = append(r.repl, replPart{lit: string(lit), group: -1})
			lit = nil
		}
	}
	repl := parts[1]
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		if c != '\\' || i+1 == len(repl) {
			lit = append(lit, c)
			continue
		}
		i++
		switch c = repl[i]; {
		case isDigit(c):
			g := int(c - '0')
			if g > re.NumSubexp() {
				return r, fmt.Errorf("\\%c refers to a missing group", c)
			}
			flush()
			r.repl = append(r.repl, replPart{group: g})
		case c == 'n':
			lit = append(lit, '\n')
		case c == 'r':
			lit = append(lit, '\r')
		case c == 't':
			lit = append(lit, '\t')
		default:
			lit = append(lit, c)
		}
	}
	flush()
	return r, nil
}

// apply runs the rule on s and reports whether it matched.
func (r *substRule) apply(s string) (string, bool) {
	n := 1
	if r.all {
		n = -1
	}
	matches := r.re.FindAllStringSubmatchIndex(s, n)
	if len(matches) == 0 {
		return s, false
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		b.WriteString(s[last:m[0]])
		for _, p := range r.repl {
			if p.group < 0 {
				b.WriteString(p.lit)
			} else if m[2*p.group] >= 0 {
				b.WriteString(s[m[2*p.group]:m[2*p.group+1]])
			}
		}
		last = m[1]
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// applySubst runs every #!subst rule defined so far, in order, on a string
// literal, as Kamailio does when it reads one.
func (lx *lexer) applySubst(s string) string {
	if s == "" { // as pp_subst_run
		return s
	}
	for i := range lx.substs {
		s, _ = lx.substs[i].apply(s)
	}
	return s
}
