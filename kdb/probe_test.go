package kdb

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOpenLeavesTheFileAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	db.Init()
	db.Close()
	before, _ := os.ReadFile(path)
	for i := 0; i < 2; i++ {
		db, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		db.G.Model(&Subscriber{}).Count(&n)
		db.Close()
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("opening and reading changed the file")
	}
}
