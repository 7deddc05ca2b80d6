package main

import (
	"context"
	"flag"
	"fmt"

	"kemi/engine"
)

type checkCommand struct{ m *Main }

func (c *checkCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kemi check", flag.ContinueOnError)
	fs.SetOutput(c.m.Stderr)
	file := fs.String("f", "", "configuration `file` (default: the embedded default)")
	defines := defineFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(c.m.Stderr, "usage: kemi check [-f kemi.cfg] [-A NAME=VALUE]\n\nValidates the configuration, compiles the Lua scripts and runs their top level in a scratch VM, checking that every callback the configuration names exists. Nothing is started.")
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
	_ = e
	fmt.Fprintf(c.m.Stdout, "%s: ok (%d script(s), %d module(s), %d queue(s), %d timer(s))\n",
		name, len(set.Scripts), len(set.Modules), len(set.Mqueue().Queues), len(set.Rtimer().Timers))
	return nil
}
