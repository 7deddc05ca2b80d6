package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"syscall"
	"time"

	"kemi/engine"
	"kemi/jsonrpc"
)

type rpcCommand struct{ m *Main }

func (c *rpcCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kemi rpc", flag.ContinueOnError)
	fs.SetOutput(c.m.Stderr)
	addr := fs.String("s", engine.DefaultRPCListen, "engine JSON-RPC `address` (host:port or URL)")
	timeout := fs.Duration("t", 10*time.Second, "timeout")
	fs.Usage = func() {
		fmt.Fprintln(c.m.Stderr, "usage: kemi rpc [-s 127.0.0.1:5071] METHOD [PARAM...]\n\nCalls a JSON-RPC method of a running engine and prints the result. Parameters are sent as strings, bare integers as numbers; s:VALUE forces a string, i:VALUE an integer (as kamctl).\nExamples: kemi rpc mqueue.get_sizes; kemi rpc mqueue.fetch myq; kemi rpc app_lua.reload")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	url := *addr
	if !bytes.HasPrefix([]byte(url), []byte("http://")) && !bytes.HasPrefix([]byte(url), []byte("https://")) {
		url = "http://" + url + "/RPC"
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := jsonrpc.Call(ctx, url, fs.Arg(0), jsonrpc.ParseCLIArgs(fs.Args()[1:]))
	var f *jsonrpc.Fault
	if errors.As(err, &f) {
		fmt.Fprintf(c.m.Stderr, "error: %d - %s\n", f.Code, f.Message)
		return exitError(1)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w (is kemi running? its JSON-RPC address is the jsonrpcs http_listen modparam, default 127.0.0.1:5071; -s picks another)", err)
	}
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if json.Indent(&out, res, "", "  ") != nil {
		out.Reset()
		out.Write(res)
	}
	out.WriteByte('\n')
	_, err = c.m.Stdout.Write(out.Bytes())
	return err
}
