package luavm

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
)

// CoverGlobal is the global function an instrumented chunk calls before
// each counted statement: CoverGlobal(unit, index). The VM sets it when it
// instantiates a generation built with a Coverage; uninstrumented
// generations (the default) neither call nor define it.
const CoverGlobal = "__kemi_cover"

// Coverage counts how often each line of the scripts compiled with it ran.
//
// gopher-lua has no line hook, so coverage is compiled in: with a Coverage
// (BuildOptions.Cover) the chunk's syntax tree gets, before the first
// statement that starts on each line, a call CoverGlobal(unit, index) with
// the statement's line, so error positions and tracebacks do not change.
// Every statement line is registered at compile time: lines no test reached
// (a failure route never exercised) are reported with 0. Without a Coverage
// nothing is inserted and the request path is the same as before.
//
// A Coverage is safe for concurrent use: each VM's calls count atomically.
type Coverage struct {
	mu    sync.Mutex                   // serialises adding units
	units atomic.Pointer[[]*coverUnit] // copy on write; read by every hit
}

// coverUnit is one compilation of one script.
type coverUnit struct {
	path   string
	lines  []int // the line of each counter
	counts []atomic.Int64
}

// NewCoverage returns an empty Coverage.
func NewCoverage() *Coverage {
	c := &Coverage{}
	c.units.Store(&[]*coverUnit{})
	return c
}

// LineCount is how often one line ran.
type LineCount struct {
	Line  int
	Count int64
}

// FileCoverage is the coverage of one script: its statement lines in order.
type FileCoverage struct {
	Path  string
	Lines []LineCount
}

// Covered returns how many of the file's lines ran, and how many it has.
func (f *FileCoverage) Covered() (hit, total int) {
	for _, l := range f.Lines {
		if l.Count > 0 {
			hit++
		}
	}
	return hit, len(f.Lines)
}

// Files returns the coverage of every script compiled with c, sorted by
// path. A script compiled more than once (a reload) is merged: the union of
// the lines, the counts summed.
func (c *Coverage) Files() []FileCoverage {
	byPath := map[string]map[int]int64{}
	for _, u := range *c.units.Load() {
		m := byPath[u.path]
		if m == nil {
			m = map[int]int64{}
			byPath[u.path] = m
		}
		for i, line := range u.lines {
			m[line] += u.counts[i].Load()
		}
	}
	out := make([]FileCoverage, 0, len(byPath))
	for p, m := range byPath {
		f := FileCoverage{Path: p}
		for line, n := range m {
			f.Lines = append(f.Lines, LineCount{Line: line, Count: n})
		}
		slices.SortFunc(f.Lines, func(a, b LineCount) int { return a.Line - b.Line })
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b FileCoverage) int {
		if a.Path < b.Path {
			return -1
		}
		if a.Path > b.Path {
			return 1
		}
		return 0
	})
	return out
}

// instrument inserts the counter calls into chunk, registering a unit for
// path.
func (c *Coverage) instrument(path string, chunk []ast.Stmt) []ast.Stmt {
	u := &coverUnit{path: path}
	c.mu.Lock()
	units := *c.units.Load()
	id := len(units)
	in := &instrumenter{unit: u, id: strconv.Itoa(id), seen: map[int]bool{}}
	chunk = in.block(chunk)
	u.counts = make([]atomic.Int64, len(u.lines))
	next := append(slices.Clip(units), u)
	c.units.Store(&next)
	c.mu.Unlock()
	return chunk
}

// hit is CoverGlobal: it counts one run of a line.
func (c *Coverage) hit(L *lua.LState) int {
	unit, _ := L.Get(1).(lua.LNumber)
	idx, _ := L.Get(2).(lua.LNumber)
	units := *c.units.Load()
	if u := int(unit); u >= 0 && u < len(units) {
		if i := int(idx); i >= 0 && i < len(units[u].counts) {
			units[u].counts[i].Add(1)
		}
	}
	return 0
}

// instrumenter walks a chunk's syntax tree, statements and the function
// bodies inside expressions.
type instrumenter struct {
	unit *coverUnit
	id   string
	seen map[int]bool // lines that have a counter already
}

func (in *instrumenter) block(stmts []ast.Stmt) []ast.Stmt {
	out := make([]ast.Stmt, 0, 2*len(stmts))
	for _, s := range stmts {
		if line := s.Line(); line > 0 && !in.seen[line] {
			in.seen[line] = true
			out = append(out, in.counter(line))
		}
		in.stmt(s)
		out = append(out, s)
	}
	return out
}

// counter is the statement CoverGlobal(unit, index) for line, on that line.
func (in *instrumenter) counter(line int) ast.Stmt {
	idx := len(in.unit.lines)
	in.unit.lines = append(in.unit.lines, line)
	fn := &ast.IdentExpr{Value: CoverGlobal}
	unit := &ast.NumberExpr{Value: in.id}
	index := &ast.NumberExpr{Value: strconv.Itoa(idx)}
	call := &ast.FuncCallExpr{Func: fn, Args: []ast.Expr{unit, index}}
	st := &ast.FuncCallStmt{Expr: call}
	for _, n := range []ast.PositionHolder{fn, unit, index, call, st} {
		n.SetLine(line)
		n.SetLastLine(line)
	}
	return st
}

func (in *instrumenter) stmt(s ast.Stmt) {
	switch s := s.(type) {
	case *ast.AssignStmt:
		in.exprs(s.Lhs)
		in.exprs(s.Rhs)
	case *ast.LocalAssignStmt:
		in.exprs(s.Exprs)
	case *ast.FuncCallStmt:
		in.expr(s.Expr)
	case *ast.DoBlockStmt:
		s.Stmts = in.block(s.Stmts)
	case *ast.WhileStmt:
		in.expr(s.Condition)
		s.Stmts = in.block(s.Stmts)
	case *ast.RepeatStmt:
		s.Stmts = in.block(s.Stmts)
		in.expr(s.Condition)
	case *ast.IfStmt:
		in.expr(s.Condition)
		s.Then = in.block(s.Then)
		s.Else = in.block(s.Else)
	case *ast.NumberForStmt:
		in.expr(s.Init)
		in.expr(s.Limit)
		in.expr(s.Step)
		s.Stmts = in.block(s.Stmts)
	case *ast.GenericForStmt:
		in.exprs(s.Exprs)
		s.Stmts = in.block(s.Stmts)
	case *ast.FuncDefStmt:
		in.expr(s.Func)
	case *ast.ReturnStmt:
		in.exprs(s.Exprs)
	}
}

func (in *instrumenter) exprs(es []ast.Expr) {
	for _, e := range es {
		in.expr(e)
	}
}

func (in *instrumenter) expr(e ast.Expr) {
	switch e := e.(type) {
	case *ast.FunctionExpr:
		e.Stmts = in.block(e.Stmts)
	case *ast.AttrGetExpr:
		in.expr(e.Object)
		in.expr(e.Key)
	case *ast.TableExpr:
		for _, f := range e.Fields {
			in.expr(f.Key)
			in.expr(f.Value)
		}
	case *ast.FuncCallExpr:
		in.expr(e.Func)
		in.expr(e.Receiver)
		in.exprs(e.Args)
	case *ast.LogicalOpExpr:
		in.expr(e.Lhs)
		in.expr(e.Rhs)
	case *ast.RelationalOpExpr:
		in.expr(e.Lhs)
		in.expr(e.Rhs)
	case *ast.StringConcatOpExpr:
		in.expr(e.Lhs)
		in.expr(e.Rhs)
	case *ast.ArithmeticOpExpr:
		in.expr(e.Lhs)
		in.expr(e.Rhs)
	case *ast.UnaryMinusOpExpr:
		in.expr(e.Expr)
	case *ast.UnaryNotOpExpr:
		in.expr(e.Expr)
	case *ast.UnaryLenOpExpr:
		in.expr(e.Expr)
	}
}
