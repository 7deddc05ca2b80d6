package luatest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"kemi/engine"
	"kemi/ksr"
	"kemi/luavm"
)

// epochUnix is the virtual time at which every test file's engine starts:
// 2026-01-01 00:00:00 UTC.
const epochUnix = 1767225600

// fileRun is one test file: its test VM, its tests, and the engine they
// share.
type fileRun struct {
	o    *Options
	path string // as found, for messages
	dir  string // the file's directory: t.config and t.reload paths are relative to it

	L      *lua.LState
	root   *suite
	cur    *suite // the describe block being registered; nil once tests run
	tests  []*testCase
	active *testCase       // the test running
	ctx    context.Context // the running test's context

	cfg     string // configuration chosen with t.config ("" = default)
	defines map[string]string
	eng     *engine.Engine
	clock   *engine.TestClock
	level   *slog.LevelVar
	scripts []string // the engine's script paths

	ovMu    sync.Mutex
	overlay map[string][]byte // script path -> source set by t.reload

	out *capture
	seq int // request counter, for Call-IDs, branches and tags

	rng  *rand.Rand  // -shuffle: the order of the tests; nil keeps the file's
	stop func() bool // -failfast: true once a test failed

	mocks   *ksrMocks             // the KSR functions spied or stubbed, read by the worker VMs
	sp      *spies                // the test VM's spies (spy.go)
	spyVals map[string]lua.LValue // spy, stub, mock, match, assert: globals and fields of t
}

// suite is a describe block (the root one is the file).
type suite struct {
	name          string
	parent        *suite
	before, after []*lua.LFunction
}

type testCase struct {
	name string
	s    *suite
	fn   *lua.LFunction
}

func newFileRun(path string, o *Options) *fileRun {
	f := &fileRun{o: o, path: path, dir: filepath.Dir(path), root: &suite{}, overlay: map[string][]byte{}, out: &capture{}, mocks: newKSRMocks()}
	f.cur = f.root
	return f
}

// fullName joins the describe names and the test name with " / ".
func (t *testCase) fullName() string {
	parts := []string{t.name}
	for s := t.s; s != nil && s.parent != nil; s = s.parent {
		parts = append([]string{s.name}, parts...)
	}
	return strings.Join(parts, " / ")
}

// load runs the file's top level in a fresh test VM, registering its
// tests; a file that cannot run gives its failure. The caller closes f.L.
func (f *fileRun) load(ctx context.Context) *Failure {
	f.L = lua.NewState()
	f.setupVM()
	src, err := os.ReadFile(f.path)
	if err != nil {
		return &Failure{File: f.path, Message: err.Error()}
	}
	proto, err := luavm.Compile(f.path, src)
	if err != nil {
		fl := &Failure{File: f.path, Message: err.Error()}
		var ce *luavm.CompileError
		if errors.As(err, &ce) {
			fl.Line, fl.Message = ce.Line, ce.Msg
		}
		return fl
	}
	lctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	f.ctx = lctx
	f.L.SetContext(lctx)
	err = f.call(f.L.NewFunctionFromProto(proto))
	f.L.RemoveContext()
	f.cur = nil
	if err != nil {
		_, fl, _ := f.classify(err, lctx)
		return fl
	}
	if len(f.tests) == 0 {
		return &Failure{File: f.path, Message: "no tests: register them with t.test(name, fn) or t.it(name, fn)"}
	}
	return nil
}

// selected reports whether the test named name runs under -run, -tags and
// -exclude-tags.
func (f *fileRun) selected(name string) bool {
	if f.o.Run != nil && !f.o.Run.MatchString(name) {
		return false
	}
	if len(f.o.Tags) == 0 && len(f.o.ExcludeTags) == 0 {
		return true
	}
	tags := Tags(name)
	has := func(want []string) bool {
		for _, w := range want {
			if slices.Contains(tags, strings.TrimPrefix(w, "#")) {
				return true
			}
		}
		return false
	}
	if has(f.o.ExcludeTags) {
		return false
	}
	return len(f.o.Tags) == 0 || has(f.o.Tags)
}

var tagWord = regexp.MustCompile(`#([\w-]+)`)

// Tags returns the tags of a test's full name: the words after "#" ("MESSAGE
// #slow / is queued #db" has slow and db).
func Tags(name string) []string {
	var out []string
	for _, m := range tagWord.FindAllStringSubmatch(name, -1) {
		out = append(out, m[1])
	}
	return out
}

// run loads the file, registers its tests and runs the selected ones,
// calling emit with each result.
func (f *fileRun) run(ctx context.Context, emit func(Result)) {
	fileFail := func(name string, fl *Failure) {
		emit(Result{File: f.path, Name: name, Status: Fail, Failure: fl, Output: f.out.take()})
	}
	fl := f.load(ctx)
	defer f.L.Close()
	if fl != nil {
		fileFail("(file)", fl)
		return
	}
	order := slices.Clone(f.tests)
	if f.rng != nil {
		f.rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	for _, tc := range order {
		name := tc.fullName()
		if !f.selected(name) {
			continue
		}
		if f.stop != nil && f.stop() {
			break
		}
		if f.eng == nil {
			f.out.take()
			if err := f.startEngine(ctx); err != nil {
				fileFail("(engine)", &Failure{File: f.path, Message: err.Error()})
				return
			}
		}
		emit(f.runTest(ctx, tc, name))
	}
	if f.eng != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.o.Timeout)
		err := f.eng.Stop(sctx)
		cancel()
		if err != nil {
			fileFail("(engine stop)", &Failure{File: f.path, Message: err.Error()})
		}
	}
}

// runTest runs one test with its before_each and after_each hooks.
func (f *fileRun) runTest(ctx context.Context, tc *testCase, name string) Result {
	res := Result{File: f.path, Name: name}
	tctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	f.ctx, f.active = tctx, tc
	f.L.SetContext(tctx)
	defer func() {
		f.L.RemoveContext()
		f.active = nil
	}()
	start := time.Now()
	var chain []*suite
	for s := tc.s; s != nil; s = s.parent {
		chain = append([]*suite{s}, chain...)
	}
	var err error
	for _, s := range chain {
		for _, fn := range s.before {
			if err = f.call(fn); err != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = f.call(tc.fn)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		for _, fn := range chain[i].after {
			if aerr := f.call(fn); aerr != nil && err == nil {
				err = aerr
			}
		}
	}
	f.revertAll()
	res.Elapsed = time.Since(start)
	res.Status = Pass
	if err != nil {
		res.Status, res.Failure, res.Reason = f.classify(err, tctx)
	}
	res.Output = f.out.take()
	return res
}

// call runs fn() protected on the test VM.
func (f *fileRun) call(fn *lua.LFunction) error {
	L := f.L
	err := L.CallByParam(lua.P{Fn: fn, NRet: 0, Protect: true})
	L.SetTop(0)
	return err
}

// skipSignal is raised by t.skip.
type skipSignal struct{ reason string }

var wherePrefix = regexp.MustCompile(`^([^\s:][^:]*):(\d+): (?s)(.*)$`)

// classify turns the error of a protected call into a status.
func (f *fileRun) classify(err error, ctx context.Context) (Status, *Failure, string) {
	var ae *lua.ApiError
	if errors.As(err, &ae) {
		if ud, ok := ae.Object.(*lua.LUserData); ok {
			switch v := ud.Value.(type) {
			case *Failure:
				if v.Traceback == "" {
					v.Traceback = ae.StackTrace
				}
				return Fail, v, ""
			case *skipSignal:
				return Skip, nil, v.reason
			}
		}
		msg := ""
		if ae.Object != nil {
			msg = ae.Object.String()
		}
		if ctx.Err() != nil {
			msg = fmt.Sprintf("test timed out after %s (kemi test -timeout): %s", f.o.Timeout, msg)
		}
		fl := &Failure{Message: msg, Traceback: ae.StackTrace}
		if m := wherePrefix.FindStringSubmatch(msg); m != nil {
			fl.File, fl.Message = m[1], m[3]
			fl.Line, _ = strconv.Atoi(m[2])
		}
		return Fail, fl, ""
	}
	return Fail, &Failure{File: f.path, Message: err.Error()}, ""
}

// configPath is the configuration the file's engine is built from:
// t.config's, else -f's, else kemi.cfg next to the test file, else kemi.cfg
// in the current directory.
func (f *fileRun) configPath() (string, error) {
	if f.cfg != "" {
		return f.cfg, nil
	}
	if f.o.Config != "" {
		return f.o.Config, nil
	}
	for _, p := range []string{filepath.Join(f.dir, "kemi.cfg"), "kemi.cfg"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no configuration for %s: call t.config(path) at its top, put a kemi.cfg next to it or in the current directory, or pass -f", f.path)
}

// startEngine builds and starts the file's engine: no network, the
// virtual clock at epoch, log lines captured into the test output.
func (f *fileRun) startEngine(ctx context.Context) error {
	cfg, err := f.configPath()
	if err != nil {
		return err
	}
	defines := map[string]string{}
	for k, v := range f.o.Defines {
		defines[k] = v
	}
	for k, v := range f.defines {
		defines[k] = v
	}
	set, err := engine.Load(cfg, defines)
	if err != nil {
		return err
	}
	f.scripts = set.AppLua().Scripts
	f.level = new(slog.LevelVar)
	f.level.Set(ksr.LevelFromDebug(set.Debug))
	if f.o.Verbose {
		f.level.Set(slog.LevelDebug)
	}
	log := slog.New(slog.NewTextHandler(f.out, &slog.HandlerOptions{Level: f.level, ReplaceAttr: dropTime}))
	f.clock = engine.NewTestClock(time.Unix(epochUnix, 0).UTC())
	e, err := engine.New(set, engine.Options{Logger: log, Level: f.level, Clock: f.clock, NoNetwork: true, ReadFile: f.readFile,
		Build: luavm.BuildOptions{Cover: f.o.Cover, Prepare: f.mocks.prepare}})
	if err != nil {
		return err
	}
	if err := e.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	f.eng = e
	wctx, cancel := context.WithTimeout(ctx, f.o.Timeout)
	defer cancel()
	return e.WaitIdle(wctx)
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// readFile reads the engine's scripts, with t.reload's replacements.
func (f *fileRun) readFile(path string) ([]byte, error) {
	f.ovMu.Lock()
	src, ok := f.overlay[path]
	f.ovMu.Unlock()
	if ok {
		return src, nil
	}
	return os.ReadFile(path)
}

// capture collects output lines: print in the test VM and the engine's log
// lines, which come from any goroutine.
type capture struct {
	mu    sync.Mutex
	lines []string
}

func (c *capture) Write(p []byte) (int, error) {
	c.add(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (c *capture) add(text string) {
	c.mu.Lock()
	c.lines = append(c.lines, strings.Split(text, "\n")...)
	c.mu.Unlock()
}

// take returns the lines collected so far and starts afresh.
func (c *capture) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.lines
	c.lines = nil
	return out
}

// snapshot returns the lines collected so far.
func (c *capture) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}
