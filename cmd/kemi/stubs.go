package main

import (
	"context"
	"flag"
	"fmt"

	"kemi/engine"
)

type stubsCommand struct{ m *Main }

func (c *stubsCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kemi stubs", flag.ContinueOnError)
	fs.SetOutput(c.m.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(c.m.Stderr, "usage: kemi stubs > KSR.d.lua\n\nPrints a LuaLS (lua-language-server) ---@meta file declaring every KSR function kemi has, with typed parameters and return, for completion and type checks in VS Code, Neovim and other LuaLS editors. Put the file in the workspace or in Lua.workspace.library.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := engine.Exports()
	if err != nil {
		return err
	}
	return t.WriteStubs(c.m.Stdout, engine.Version)
}
