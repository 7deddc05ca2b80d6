package ksr

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"
)

// Finding is one result of CheckScript: an unknown KSR function (an
// error) or a call with the wrong number of arguments (a warning).
type Finding struct {
	File    string
	Line    int
	Msg     string
	Warning bool
}

func (f Finding) String() string {
	if f.Warning {
		return fmt.Sprintf("%s:%d: warning: %s", f.File, f.Line, f.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Msg)
}

// CheckScript reads a Lua script statically and reports every
// KSR.<sub>.<fn> or KSR.<fn> it names that the table does not have, and
// every call of a known function with a literal argument count that
// Kamailio would refuse (too few) or ignore (too many). Dynamic access such
// as KSR[m][f], or a KSR table stored in a local first, is left to run
// time. A syntax error is returned as an error (the compiler reports it
// with its position).
func (t *Table) CheckScript(file string, src []byte) ([]Finding, error) {
	chunk, err := parse.Parse(bytes.NewReader(src), file)
	if err != nil {
		return nil, err
	}
	c := &checker{t: t, file: file}
	c.stmts(chunk)
	sort.SliceStable(c.out, func(i, j int) bool { return c.out[i].Line < c.out[j].Line })
	return c.out, nil
}

type checker struct {
	t    *Table
	file string
	out  []Finding
}

func (c *checker) add(line int, warn bool, format string, args ...any) {
	c.out = append(c.out, Finding{File: c.file, Line: line, Msg: fmt.Sprintf(format, args...), Warning: warn})
}

func (c *checker) stmts(ss []ast.Stmt) {
	for _, s := range ss {
		c.stmt(s)
	}
}

func (c *checker) stmt(s ast.Stmt) {
	switch s := s.(type) {
	case *ast.AssignStmt:
		c.exprs(s.Lhs)
		c.exprs(s.Rhs)
	case *ast.LocalAssignStmt:
		c.exprs(s.Exprs)
	case *ast.FuncCallStmt:
		c.expr(s.Expr)
	case *ast.DoBlockStmt:
		c.stmts(s.Stmts)
	case *ast.WhileStmt:
		c.expr(s.Condition)
		c.stmts(s.Stmts)
	case *ast.RepeatStmt:
		c.stmts(s.Stmts)
		c.expr(s.Condition)
	case *ast.IfStmt:
		c.expr(s.Condition)
		c.stmts(s.Then)
		c.stmts(s.Else)
	case *ast.NumberForStmt:
		c.exprs([]ast.Expr{s.Init, s.Limit, s.Step})
		c.stmts(s.Stmts)
	case *ast.GenericForStmt:
		c.exprs(s.Exprs)
		c.stmts(s.Stmts)
	case *ast.FuncDefStmt:
		c.stmts(s.Func.Stmts)
	case *ast.ReturnStmt:
		c.exprs(s.Exprs)
	}
}

func (c *checker) exprs(es []ast.Expr) {
	for _, e := range es {
		c.expr(e)
	}
}

func (c *checker) expr(e ast.Expr) {
	switch e := e.(type) {
	case nil:
	case *ast.AttrGetExpr:
		if c.ksrRef(e) {
			return
		}
		c.expr(e.Object)
		c.expr(e.Key)
	case *ast.FuncCallExpr:
		if x, name := c.resolve(e.Func); x != nil && e.Receiver == nil {
			c.arity(e, x, name)
		}
		c.expr(e.Func)
		c.expr(e.Receiver)
		c.exprs(e.Args)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			c.expr(f.Key)
			c.expr(f.Value)
		}
	case *ast.LogicalOpExpr:
		c.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.RelationalOpExpr:
		c.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.StringConcatOpExpr:
		c.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.ArithmeticOpExpr:
		c.exprs([]ast.Expr{e.Lhs, e.Rhs})
	case *ast.UnaryMinusOpExpr:
		c.expr(e.Expr)
	case *ast.UnaryNotOpExpr:
		c.expr(e.Expr)
	case *ast.UnaryLenOpExpr:
		c.expr(e.Expr)
	case *ast.FunctionExpr:
		c.stmts(e.Stmts)
	}
}

// path returns the names of a KSR.a[.b] chain written with dots or
// constant strings, or nil.
func path(e ast.Expr) []string {
	a, ok := e.(*ast.AttrGetExpr)
	if !ok {
		return nil
	}
	key, ok := a.Key.(*ast.StringExpr)
	if !ok {
		return nil
	}
	if id, ok := a.Object.(*ast.IdentExpr); ok {
		if id.Value == "KSR" {
			return []string{key.Value}
		}
		return nil
	}
	if p := path(a.Object); len(p) == 1 {
		return []string{p[0], key.Value}
	}
	return nil
}

// resolve finds the export a call names, with its full name.
func (c *checker) resolve(e ast.Expr) (*Export, string) {
	switch p := path(e); len(p) {
	case 1:
		x, _ := c.t.Lookup("", p[0])
		return x, "KSR." + p[0]
	case 2:
		x, _ := c.t.Lookup(p[0], p[1])
		return x, "KSR." + p[0] + "." + p[1]
	}
	return nil, ""
}

// ksrRef checks a KSR.a or KSR.a.b reference and reports whether e was
// one (its parts need no further walk).
func (c *checker) ksrRef(e *ast.AttrGetExpr) bool {
	p := path(e)
	switch len(p) {
	case 1:
		if c.t.HasSubmodule(p[0]) || c.t.known("", p[0]) || kamailioModules[p[0]] {
			return true // a Kamailio module not loaded is nil: a feature test
		}
		c.add(e.Line(), false, "unknown KSR function or module KSR.%s%s", p[0], c.hint("", p[0]))
		return true
	case 2:
		sub, fn := p[0], p[1]
		switch {
		case c.t.known(sub, fn):
		case !c.t.HasSubmodule(sub) && c.t.known("", sub):
			c.add(e.Line(), false, "KSR.%s is a function, not a module: KSR.%s.%s does not exist", sub, sub, fn)
		case !c.t.HasSubmodule(sub) && kamailioModules[sub]:
			c.add(e.Line(), true, "KSR.%s.%s: module %s is not loaded, so KSR.%s is nil and this fails if it runs", sub, fn, sub, sub)
		case !c.t.HasSubmodule(sub):
			c.add(e.Line(), false, "unknown KSR function KSR.%s.%s (module %s is not implemented by kemi)", sub, fn, sub)
		default:
			c.add(e.Line(), false, "unknown KSR function KSR.%s.%s%s", sub, fn, c.hint(sub, fn))
		}
		return true
	}
	return false
}

// arity warns about a literal argument count Kamailio would refuse or
// ignore. A call whose last argument is a call or ... has no fixed count.
func (c *checker) arity(call *ast.FuncCallExpr, x *Export, name string) {
	n := len(call.Args)
	if n > 0 {
		switch call.Args[n-1].(type) {
		case *ast.FuncCallExpr, *ast.Comma3Expr:
			return
		}
	}
	want := len(x.ParamTypes())
	switch {
	case n < want:
		c.add(call.Line(), true, "%s takes %d argument%s (%s), got %d: the call returns false", name, want, plural(want), x.argList(), n)
	case n > maxParams:
		c.add(call.Line(), true, "%s called with %d arguments, more than %d: the call returns false", name, n, maxParams)
	case n > want:
		c.add(call.Line(), true, "%s takes %d argument%s (%s), got %d: the extra ones are ignored", name, want, plural(want), x.argList(), n)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// argList names the parameters: "queue str, key str" or "str, int".
func (x *Export) argList() string {
	ps := x.ParamTypes()
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		if i < len(x.Args) {
			s[i] = x.Args[i] + " " + p.String()
		} else {
			s[i] = p.String()
		}
	}
	return strings.Join(s, ", ")
}

// hint suggests the closest known name in the submodule.
func (c *checker) hint(sub, fn string) string {
	best, dist := "", 3
	for _, n := range c.t.names(sub) {
		if d := editDistance(n, fn); d < dist {
			best, dist = n, d
		}
	}
	if best == "" {
		return ""
	}
	if sub == "" {
		return fmt.Sprintf(" (did you mean KSR.%s?)", best)
	}
	return fmt.Sprintf(" (did you mean KSR.%s.%s?)", sub, best)
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
