// Command kemi is a SIP event engine whose routing logic is written in Lua
// against Kamailio's KEMI API (KSR.*).
//
//	kemi run [-f kemi.cfg]     run the engine (embedded default without -f)
//	kemi check -f kemi.cfg     validate the configuration and the scripts
//	kemi rpc METHOD [params]   call the JSON-RPC control plane
//	kemi test [paths...]       run Lua test suites against the engine
//	kemi stubs                 print LuaLS definitions of KSR for editors
//	kemi db init URL           create Kamailio's tables as kamdbctl create does
//	kemi version               print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr}
	err := m.Run(context.Background(), os.Args[1:])
	if err == nil {
		return
	}
	var ex exitError
	if errors.As(err, &ex) {
		os.Exit(int(ex))
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "kemi:", err)
	}
	os.Exit(2)
}

// exitError ends the program with a status, having printed what it had to.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// Main is the command line program.
type Main struct {
	Stdout, Stderr io.Writer
}

// Run dispatches to the subcommand.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		m.usage()
		return flag.ErrHelp
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return (&runCommand{m: m}).Run(ctx, rest)
	case "check":
		return (&checkCommand{m: m}).Run(ctx, rest)
	case "rpc":
		return (&rpcCommand{m: m}).Run(ctx, rest)
	case "test":
		return (&testCommand{m: m}).Run(ctx, rest)
	case "stubs":
		return (&stubsCommand{m: m}).Run(ctx, rest)
	case "db":
		return (&dbCommand{m: m}).Run(ctx, rest)
	case "version", "--version", "-version":
		return (&versionCommand{m: m}).Run(ctx, rest)
	case "help", "-h", "--help":
		m.usage()
		return nil
	default:
		m.usage()
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func (m *Main) usage() {
	fmt.Fprint(m.Stderr, `kemi is a SIP event engine running Kamailio KEMI Lua scripts.

Usage:

	kemi <command> [arguments]

Commands:

	run      run the engine (the embedded default configuration without -f)
	check    validate a configuration and compile its scripts (like kamailio -c)
	rpc      call a JSON-RPC method of a running engine (like kamcmd)
	test     run Lua test suites (*_test.lua) against the engine
	stubs    print a LuaLS ---@meta file of KSR.* for editor completion
	db       db init URL: create Kamailio's tables (location, subscriber, version, ...)
	version  print the version

Use "kemi <command> -h" for a command's flags.
`)
}

// defineFlags collects -A NAME[=VALUE] defines, like kamailio -A.
type defineFlags map[string]string

// defineFlag adds -A NAME[=VALUE] (repeatable) to fs, as kamailio -A.
func defineFlag(fs *flag.FlagSet) defineFlags {
	d := defineFlags{}
	fs.Var(d, "A", "define `NAME[=VALUE]` for #!ifdef (repeatable)")
	return d
}

func (d defineFlags) String() string { return "" }
func (d defineFlags) Set(v string) error {
	name, val, _ := strings.Cut(v, "=")
	if name == "" {
		return errors.New("empty define name")
	}
	d[name] = val
	return nil
}
