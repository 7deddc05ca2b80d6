package config

import (
	"fmt"
	"strconv"
	"strings"
)

// parser builds statements from the token stream.
type parser struct {
	lx    *lexer
	tok   token // lookahead, valid when has
	has   bool
	prev  token // last token consumed
	stmts []Stmt
}

func (p *parser) peek() (token, error) {
	if !p.has {
		t, err := p.lx.next()
		if err != nil {
			return token{}, err
		}
		p.tok, p.has = t, true
	}
	return p.tok, nil
}

// skip consumes the token returned by the last peek.
func (p *parser) skip() {
	p.has = false
	p.prev = p.tok
}

func (p *parser) next() (token, error) {
	t, err := p.peek()
	if err != nil {
		return token{}, err
	}
	p.has = false
	p.prev = t
	return t, nil
}

// sameLine reports whether t continues the line of the previous token.
func sameLine(t token) bool { return t.kind != tEOF && !t.nl }

// unexpected reports t where want was expected; ctx, when not empty,
// says where ("after \"debug =\"", "in modparam").
func (p *parser) unexpected(t token, ctx, want string) error {
	desc, pos := t.describe(), t.pos
	if t.kind == tEOF && p.prev.kind != tEOF {
		pos = p.prev.pos
	}
	return p.errAt(pos, desc, ctx, want)
}

// unexpectedEOL is unexpected for a token that had to be on the line of
// the previous one: a token on a later line reads "end of line".
func (p *parser) unexpectedEOL(t token, ctx, want string) error {
	if t.kind != tEOF && t.nl {
		return p.errAt(p.prev.pos, "end of line", ctx, want)
	}
	return p.unexpected(t, ctx, want)
}

func (p *parser) errAt(pos Pos, desc, ctx, want string) error {
	if ctx != "" {
		desc += " " + ctx
	}
	return Errorf(pos, "unexpected %s: expected %s", desc, want)
}

// nativeRoutes are the keywords that open a native routing block.
func isNativeRoute(w string) bool {
	switch w {
	case "route", "request_route", "reply_route", "onreply_route", "failure_route",
		"branch_route", "event_route", "onsend_route":
		return true
	}
	return false
}

func (p *parser) parse() error {
	for {
		t, err := p.next()
		if err != nil {
			return err
		}
		switch {
		case t.kind == tEOF:
			return nil
		case t.is(";"):
			continue
		case t.kind != tIdent:
			return p.unexpected(t, "", "a statement")
		case isNativeRoute(t.text):
			return Errorf(t.pos, "%w (%s): kemi runs only cfgengine %q; move the logic to the Lua script",
				ErrNativeRoute, t.text, "lua")
		case t.text == "loadmodule":
			err = p.loadModule(t)
		case t.text == "modparam":
			err = p.modParam(t)
		case t.text == "cfgengine":
			err = p.cfgEngine(t)
		default:
			err = p.assign(t)
		}
		if err != nil {
			return err
		}
	}
}

// endStmt accepts the end of a statement: ";", a new line or the end of
// the file.
func (p *parser) endStmt(what string) error {
	t, err := p.peek()
	if err != nil {
		return err
	}
	if !sameLine(t) {
		return nil
	}
	if t.is(";") {
		_, err = p.next()
		return err
	}
	return p.unexpected(t, "after "+what, `";" or a new line`)
}

// loadModule parses loadmodule "path" (or an unquoted path).
func (p *parser) loadModule(kw token) error {
	t, err := p.peek()
	if err != nil {
		return err
	}
	var path string
	switch {
	case t.kind == tString && sameLine(t):
		p.skip()
		path = t.text
	case t.is("("):
		return p.unexpected(t, `after "loadmodule"`, `a quoted module path (loadmodule "tm.so")`)
	case sameLine(t) && !t.is(";"):
		p.skip()
		toks := []token{t}
		for {
			u, err := p.peek()
			if err != nil {
				return err
			}
			if !sameLine(u) || u.sp || u.is(";") {
				break
			}
			p.skip()
			toks = append(toks, u)
		}
		path = joinTokens(toks)
	default:
		return p.unexpectedEOL(t, `after "loadmodule"`, "a quoted module path")
	}
	p.stmts = append(p.stmts, Stmt{Kind: LoadModule, Pos: kw.pos, Name: path})
	return p.endStmt("loadmodule " + strconv.Quote(path))
}

// modParam parses modparam("module", "param", value) where value is a
// string or an integer; newlines may appear anywhere inside.
func (p *parser) modParam(kw token) error {
	const ctx = "in modparam"
	if err := p.expect("(", `after "modparam"`); err != nil {
		return err
	}
	mod, err := p.next()
	if err != nil {
		return err
	}
	if mod.kind != tString {
		return p.unexpected(mod, ctx, "a quoted module name")
	}
	if err := p.expect(",", ctx); err != nil {
		return err
	}
	param, err := p.next()
	if err != nil {
		return err
	}
	if param.kind != tString {
		return p.unexpected(param, ctx, "a quoted parameter name")
	}
	if err := p.expect(",", ctx); err != nil {
		return err
	}
	t, err := p.next()
	if err != nil {
		return err
	}
	var v Value
	switch {
	case t.kind == tString:
		v = Value{Str: t.text}
	case t.is("-"):
		u, err := p.next()
		if err != nil {
			return err
		}
		n, ok, err := parseInt(u)
		if err != nil {
			return err
		}
		if u.kind != tWord || !ok {
			return p.unexpected(u, `after "-" `+ctx, "an integer")
		}
		v = Value{Str: "-" + u.text, Int: -n, IsInt: true}
	case t.kind == tWord || t.kind == tIdent:
		var ok bool
		v, ok, err = intValue(t)
		if err != nil {
			return err
		}
		if !ok {
			return p.unexpected(t, ctx, "a string or an integer")
		}
	default:
		return p.unexpected(t, ctx, "a string or an integer")
	}
	if err := p.expect(")", ctx); err != nil {
		return err
	}
	p.stmts = append(p.stmts, Stmt{Kind: ModParam, Pos: kw.pos, Name: mod.text, Param: param.text, Value: v})
	return p.endStmt("modparam(...)")
}

// expect consumes the punctuation want.
func (p *parser) expect(want, ctx string) error {
	t, err := p.next()
	if err != nil {
		return err
	}
	if !t.is(want) {
		return p.unexpected(t, ctx, strconv.Quote(want))
	}
	return nil
}

// cfgEngine parses cfgengine "name", also written cfgengine("name").
func (p *parser) cfgEngine(kw token) error {
	t, err := p.peek()
	if err != nil {
		return err
	}
	paren := t.is("(") && sameLine(t)
	if paren {
		p.skip()
		if t, err = p.peek(); err != nil {
			return err
		}
	}
	if t.kind != tString || (!paren && !sameLine(t)) {
		return p.unexpectedEOL(t, `after "cfgengine"`, "a quoted engine name")
	}
	p.skip()
	if paren {
		if err := p.expect(")", `in cfgengine(...)`); err != nil {
			return err
		}
	}
	p.stmts = append(p.stmts, Stmt{Kind: CfgEngine, Pos: kw.pos, Name: t.text})
	return p.endStmt("cfgengine " + strconv.Quote(t.text))
}

// assign parses name = value up to ";" or the end of the line. The name
// may be dotted (kemi.pre_routing_callback). mpath and loadpath also take
// the form mpath "dir".
func (p *parser) assign(first token) error {
	name := first.text
	for {
		t, err := p.peek()
		if err != nil {
			return err
		}
		if !t.is(".") || !sameLine(t) {
			break
		}
		p.skip()
		u, err := p.peek()
		if err != nil {
			return err
		}
		if u.kind != tIdent || !sameLine(u) {
			return p.unexpectedEOL(u, "after "+strconv.Quote(name+"."), "a name")
		}
		p.skip()
		name += "." + u.text
	}
	t, err := p.peek()
	if err != nil {
		return err
	}
	if (name == "mpath" || name == "loadpath") && t.kind == tString && sameLine(t) {
		p.skip()
		p.stmts = append(p.stmts, Stmt{Kind: Global, Pos: first.pos, Name: name, Value: Value{Str: t.text}})
		return p.endStmt(name + " " + strconv.Quote(t.text))
	}
	if !t.is("=") || !sameLine(t) {
		return p.unexpectedEOL(t, "after "+strconv.Quote(name), `"="`)
	}
	p.skip()
	ctx := "after " + strconv.Quote(name+" =")
	var toks []token
	for {
		u, err := p.peek()
		if err != nil {
			return err
		}
		if !sameLine(u) || u.is(";") {
			if len(toks) == 0 {
				return p.unexpectedEOL(u, ctx, "a value")
			}
			break
		}
		if len(toks) == 0 && u.is("=") {
			return p.unexpected(u, ctx, "a value")
		}
		p.skip()
		toks = append(toks, u)
	}
	v, extra, err := p.value(name, toks)
	if err != nil {
		return err
	}
	p.stmts = append(p.stmts, Stmt{Kind: Global, Pos: first.pos, Name: name, Value: v, Extra: extra})
	return p.endStmt(name + " value")
}

// value builds the value of global name from the tokens of the rest of its
// line. The value is the first run of tokens not separated by blanks
// (blanks inside (), [] and {} do not count), so that "udp:127.0.0.1:5060"
// or "tcp:[::1]:5060" is one value; only listen may have more after it,
// kept in extra.
func (p *parser) value(name string, toks []token) (Value, string, error) {
	n, depth := 0, 0
	for ; n < len(toks); n++ {
		t := toks[n]
		if n > 0 && t.sp && depth == 0 {
			break
		}
		switch {
		case t.is("("), t.is("["), t.is("{"):
			depth++
		case t.is(")"), t.is("]"), t.is("}"):
			if depth > 0 {
				depth--
			}
		}
	}
	chunk, rest := toks[:n], toks[n:]
	var v Value
	switch {
	case len(chunk) == 1 && chunk[0].kind == tString:
		v = Value{Str: chunk[0].text}
	case len(chunk) == 1:
		iv, ok, err := intValue(chunk[0])
		if err != nil {
			return Value{}, "", err
		}
		if ok {
			v = iv
		} else {
			v = Value{Str: chunk[0].text}
		}
	case len(chunk) == 2 && chunk[0].is("-") && chunk[1].kind == tWord:
		i, ok, err := parseInt(chunk[1])
		if err != nil {
			return Value{}, "", err
		}
		if ok {
			v = Value{Str: "-" + chunk[1].text, Int: -i, IsInt: true}
		} else {
			v = Value{Str: joinTokens(chunk)}
		}
	default:
		v = Value{Str: joinTokens(chunk)}
	}
	if len(rest) == 0 {
		return v, "", nil
	}
	if name != "listen" {
		return Value{}, "", p.unexpected(rest[0], "after the value of "+strconv.Quote(name), `";" or a new line`)
	}
	return v, renderTokens(rest), nil
}

// joinTokens concatenates the tokens of one value, one space where blanks
// were (only possible inside brackets); strings contribute their content (a
// define may expand to "1.2.3.4").
func joinTokens(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t.sp {
			b.WriteByte(' ')
		}
		b.WriteString(t.text)
	}
	return b.String()
}

// renderTokens rebuilds text from tokens, one space where blanks were,
// strings quoted with strconv.Quote.
func renderTokens(toks []token) string {
	var b strings.Builder
	for i, t := range toks {
		if i > 0 && t.sp {
			b.WriteByte(' ')
		}
		if t.kind == tString {
			b.WriteString(strconv.Quote(t.text))
		} else {
			b.WriteString(t.text)
		}
	}
	return b.String()
}

// intValue converts a word or an identifier to an integer value: a number
// literal, or yes/true/on/enable (1) and no/false/off/disable (0).
func intValue(t token) (Value, bool, error) {
	switch t.kind {
	case tIdent:
		switch t.text {
		case "yes", "true", "on", "enable":
			return Value{Str: t.text, Int: 1, IsInt: true}, true, nil
		case "no", "false", "off", "disable":
			return Value{Str: t.text, Int: 0, IsInt: true}, true, nil
		}
	case tWord:
		n, ok, err := parseInt(t)
		if err != nil || !ok {
			return Value{}, false, err
		}
		return Value{Str: t.text, Int: n, IsInt: true}, true, nil
	}
	return Value{}, false, nil
}

// parseInt reads a Kamailio number literal: decimal (0 or no leading 0),
// hexadecimal 0x.., octal 0.., binary ..b. ok is false for other words
// ("08", "5060abc"); an out-of-range number is an error.
func parseInt(t token) (n int, ok bool, err error) {
	s := t.text
	if t.kind != tWord || s == "" {
		return 0, false, nil
	}
	var digits string
	base := 10
	switch {
	case len(s) > 2 && s[:2] == "0x":
		digits, base = s[2:], 16
	case len(s) > 1 && s[len(s)-1] == 'b':
		digits, base = s[:len(s)-1], 2
	case len(s) > 1 && s[0] == '0':
		digits, base = s[1:], 8
	default:
		digits = s
	}
	for i := 0; i < len(digits); i++ {
		if hexVal(digits[i]) < 0 || hexVal(digits[i]) >= base {
			return 0, false, nil
		}
	}
	v, perr := strconv.ParseInt(digits, base, strconv.IntSize)
	if perr != nil {
		return 0, false, Errorf(t.pos, "integer %s out of range", s)
	}
	return int(v), true, nil
}

// String returns the statement roughly as it would be written, for
// debugging and messages.
func (s Stmt) String() string {
	switch s.Kind {
	case Global:
		v := s.Value.Str
		if !s.Value.IsInt {
			v = strconv.Quote(v)
		}
		if s.Extra != "" {
			v += " " + s.Extra
		}
		return s.Name + "=" + v
	case LoadModule:
		return "loadmodule " + strconv.Quote(s.Name)
	case ModParam:
		v := s.Value.Str
		if !s.Value.IsInt {
			v = strconv.Quote(v)
		}
		return fmt.Sprintf("modparam(%q, %q, %s)", s.Name, s.Param, v)
	case CfgEngine:
		return "cfgengine " + strconv.Quote(s.Name)
	}
	return s.Kind.String()
}
