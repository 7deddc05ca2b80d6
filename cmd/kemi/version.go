package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"

	"kemi/engine"
)

type versionCommand struct{ m *Main }

func (c *versionCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kemi version", flag.ContinueOnError)
	fs.SetOutput(c.m.Stderr)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(c.m.Stdout, "kemi %s (%s %s/%s), KEMI compatible with Kamailio 5.6+\n", engine.FullVersion(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
