package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"kemi/kdb"
)

// dbCommand is `kemi db init URL`: Kamailio's tables, as kamdbctl create
// makes them, in the database at URL.
type dbCommand struct{ m *Main }

func (c *dbCommand) Run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kemi db", flag.ContinueOnError)
	fs.SetOutput(c.m.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(c.m.Stderr, "usage: kemi db init URL   (URL: sqlite:///path/kamailio.db, mysql://user:pass@host[:port]/db or postgres://user:pass@host[:port]/db)")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 || fs.Arg(0) != "init" {
		fs.Usage()
		return errors.New("db: want \"init\" and a database URL")
	}
	db, err := kdb.Create(fs.Arg(1))
	if err != nil {
		return err
	}
	defer db.Close()
	made, err := db.Init()
	if err != nil {
		return err
	}
	if len(made) == 0 {
		fmt.Fprintf(c.m.Stdout, "%s: every table exists already\n", db.Path)
		return nil
	}
	fmt.Fprintf(c.m.Stdout, "%s: created %s\n", db.Path, strings.Join(made, ", "))
	return nil
}
