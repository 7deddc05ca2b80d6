package main

import (
	"context"
	"flag"
	"fmt"

	"kemi/engine"
	"kemi/ksr"
)

type stubsCommand struct{ m *Main }

func (c *stubsCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kemi stubs", flag.ContinueOnError)
	fs.SetOutput(c.m.Stderr)
	md := fs.Bool("md", false, "print the Markdown reference of the modules and their functions (docs/modules.md) instead")
	fs.Usage = func() {
		fmt.Fprintln(c.m.Stderr, "usage: kemi stubs [-md] > KSR.d.lua\n\nPrints a LuaLS (lua-language-server) ---@meta file declaring every KSR function kemi has, with typed parameters and return, for completion and type checks in VS Code, Neovim and other LuaLS editors. Put the file in the workspace or in Lua.workspace.library.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *md {
		return ksr.WriteModulesDoc(c.m.Stdout, engine.Modules())
	}
	t, err := engine.Exports()
	if err != nil {
		return err
	}
	return t.WriteStubs(c.m.Stdout, engine.Version)
}
