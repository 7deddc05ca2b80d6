package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"kemi/kdb"
	"kemi/kdb/kdbtest"
)

func TestDBInitCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kamailio.db")
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb}
	if err := m.Run(context.Background(), []string{"db", "init", "sqlite://" + path}); err != nil {
		t.Fatalf("db init: %v %s", err, errb.String())
	}
	if want := path + ": created version, location, location_attrs, subscriber, acc, acc_cdrs, missed_calls, trusted, address\n"; out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
	out.Reset()
	if err := m.Run(context.Background(), []string{"db", "init", path}); err != nil || !strings.Contains(out.String(), "every table exists already") {
		t.Fatalf("second init: %v %q", err, out.String())
	}
	db, err := kdb.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CheckVersion("subscriber", 7); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(context.Background(), []string{"db", "create", path}); err == nil {
		t.Fatal("db create accepted")
	}
	if err := m.Run(context.Background(), []string{"db", "init", "oracle://x@y/z"}); err == nil || !strings.Contains(err.Error(), "unsupported url scheme") {
		t.Fatalf("oracle: %v", err)
	}
}

func TestDBInitCommandMySQL(t *testing.T) {
	url := kdbtest.MySQL(t)
	var out, errb bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errb}
	if err := m.Run(context.Background(), []string{"db", "init", url}); err != nil {
		t.Fatalf("db init: %v %s", err, errb.String())
	}
	redacted := strings.Replace(url, "kamailiorw", "xxxxx", 1)
	if want := redacted + ": created version, location, location_attrs, subscriber, acc, acc_cdrs, missed_calls, trusted, address\n"; out.String() != want {
		t.Fatalf("printed %q, want %q", out.String(), want)
	}
	db, err := kdb.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CheckVersion("location", 9); err != nil {
		t.Fatal(err)
	}
}
