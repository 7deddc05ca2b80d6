package scripts_test

import (
	"path/filepath"
	"testing"

	"kemi/engine"
)

// Every example configuration in this directory passes `kemi check`: it
// parses, its scripts compile and run their top level, and every callback it
// names exists.
func TestExamplesCheck(t *testing.T) {
	cfgs, _ := filepath.Glob("*.cfg")
	if len(cfgs) < 3 {
		t.Fatalf("examples: %v", cfgs)
	}
	for _, cfg := range cfgs {
		t.Run(cfg, func(t *testing.T) {
			var read func(string) ([]byte, error)
			set, err := engine.Load(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := engine.New(set, engine.Options{NoNetwork: true, ReadFile: read}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
