package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"kemi/engine"
)

type checkCommand struct{ m *Main }

func (c *checkCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kemi check", flag.ContinueOnError)
	fs.SetOutput(c.m.Stderr)
	file := fs.String("f", "", "configuration `file` (default: the embedded default)")
	defines := defineFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(c.m.Stderr, "usage: kemi check [-f kemi.cfg] [-A NAME=VALUE]\n\nValidates the configuration, compiles the Lua scripts and runs their top level in a scratch VM, checking that every callback the configuration names exists, then reads the scripts for KSR functions kemi does not have (an error: exit status 2) and calls with a wrong number of arguments (a warning). Nothing is started.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	set, read, name, err := loadSettings(*file, defines)
	if err != nil {
		return err
	}
	e, err := engine.New(set, engine.Options{NoNetwork: true, ReadFile: read, Logger: quietLogger(c.m.Stderr)})
	if err != nil {
		return err
	}
	if read == nil {
		read = os.ReadFile
	}
	errs := 0
	for _, path := range set.AppLua().Scripts {
		src, err := read(path)
		if err != nil {
			return err
		}
		found, err := e.Table().CheckScript(path, src)
		if err != nil {
			return err
		}
		for _, f := range found {
			fmt.Fprintln(c.m.Stderr, f)
			if !f.Warning {
				errs++
			}
		}
	}
	if errs > 0 {
		fmt.Fprintf(c.m.Stderr, "%s: %d unknown KSR function(s)\n", name, errs)
		return exitError(2)
	}
	fmt.Fprintf(c.m.Stdout, "%s: ok (%d script(s), %d module(s), %d queue(s), %d timer(s))\n",
		name, len(set.AppLua().Scripts), len(set.Modules), len(set.Mqueue().Queues), len(set.Rtimer().Timers))
	return nil
}
