package main

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"kemi/luatest"
	"kemi/luavm"
)

type testCommand struct{ m *Main }

func (c *testCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kemi test", flag.ContinueOnError)
	fs.SetOutput(c.m.Stderr)
	file := fs.String("f", "", "configuration `file` for test files that do not call t.config (default: kemi.cfg next to each test file, else in the current directory)")
	run := fs.String("run", "", "run only the tests whose name (\"describe / it\") matches the `regexp`")
	verbose := fs.Bool("v", false, "print every test's output (print and engine log lines, debug level included)")
	format := fs.String("format", "text", "report `format`: text, tap, junit or json (one JSON object per line)")
	list := fs.Bool("list", false, "print the names of the tests (\"file: describe / it\", those -run selects) without running them")
	timeout := fs.Duration("timeout", luatest.DefaultTimeout, "fail a test that runs longer than this")
	tags := fs.String("tags", "", "run only the tests tagged with one of these comma-separated `tags` (\"#tag\" in a test's or describe's name)")
	excludeTags := fs.String("exclude-tags", "", "leave out the tests tagged with one of these comma-separated `tags`")
	shuffle := fs.String("shuffle", "off", "run files and tests in a random order: off, on (a seed is printed on stderr), or the `seed` to repeat an order")
	failfast := fs.Bool("failfast", false, "stop after the first failing test")
	cover := fs.Bool("cover", false, "report line coverage of the scripts under test (the configuration's scripts, not the test files)")
	coverProfile := fs.String("coverprofile", "", "write the coverage profile to `file`: Cobertura XML when it ends in .xml, lcov otherwise (implies -cover)")
	coverMode := fs.String("covermode", "", "coverage `mode`: set (did a line run) or count (how often); implies -cover")
	defines := defineFlag(fs)
	fs.Usage = func() {
		fmt.Fprintf(c.m.Stderr, "usage: kemi test [-f kemi.cfg] [-run regexp] [-tags a,b] [-exclude-tags c] [-list] [-shuffle on|seed] [-failfast] [-v] [-format text|tap|junit|json] [-cover] [-coverprofile file] [-covermode set|count] [paths...]\n\n"+
			"Runs the Lua test files (*_test.lua) found under paths (default %s), each against a fresh\n"+
			"in-process engine: no sockets, a virtual clock, replies captured. See docs/testing.md.\n"+
			"The exit status is 0 when every test passed or was skipped, 1 when one failed, 2 for a\n"+
			"usage error (a bad flag, no test file, a -run that matches no test).\n\n", luatest.DefaultDir)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	o := luatest.Options{Config: *file, Defines: defines, Verbose: *verbose, Format: *format, List: *list, Timeout: *timeout, Out: c.m.Stdout}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			return fmt.Errorf("-run: %w", err)
		}
		o.Run = re
	}
	o.Tags, o.ExcludeTags = splitList(*tags), splitList(*excludeTags)
	o.FailFast = *failfast
	switch *shuffle {
	case "off", "":
	case "on":
		seed := uint64(time.Now().UnixNano())
		o.Shuffle = &seed
	default:
		seed, err := strconv.ParseUint(*shuffle, 10, 64)
		if err != nil {
			return fmt.Errorf("-shuffle: %q is not off, on or a seed", *shuffle)
		}
		o.Shuffle = &seed
	}
	if o.Shuffle != nil {
		fmt.Fprintf(c.m.Stderr, "kemi test: -shuffle %d\n", *o.Shuffle)
	}
	switch *coverMode {
	case "", luatest.CoverSet, luatest.CoverCount:
	default:
		return fmt.Errorf("-covermode: %q is not set or count", *coverMode)
	}
	if *cover || *coverProfile != "" || *coverMode != "" {
		o.Cover = luavm.NewCoverage()
	}
	sum, err := luatest.Run(ctx, fs.Args(), o)
	if err != nil {
		return err
	}
	if *list {
		if sum.Failed > 0 {
			return exitError(1)
		}
		return nil
	}
	if o.Cover != nil {
		rep := luatest.NewCoverReport(o.Cover, *coverMode)
		out := c.m.Stdout
		if *format != "text" {
			out = c.m.Stderr // keep TAP, JUnit and JSON parseable
		}
		if err := rep.WriteSummary(out); err != nil {
			return err
		}
		if *coverProfile != "" {
			if err := rep.WriteProfile(*coverProfile); err != nil {
				return err
			}
		}
	}
	if sum.Failed > 0 {
		return exitError(1)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
