// Package ksrtest helps test a module's KSR bindings without an engine:
// it provisions modules the way the engine does and builds their table.
package ksrtest

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"kemi/ksr"
	"kemi/timers"
)

// Host is a ksr.Host for tests: the given deps, the real clock, no
// workers (NewRunner and NewGroup fail, Group finds none).
type Host struct{ D *ksr.Deps }

func (h Host) Logger() *slog.Logger   { return h.D.Log }
func (h Host) Clock() timers.Clock    { return timers.Real() }
func (h Host) Deps() *ksr.Deps        { return h.D }
func (h Host) Group(string) ksr.Group { return nil }
func (h Host) Hold(int)               {}
func (h Host) Precise() bool          { return false }

func (h Host) NewRunner(name, group string, index int) (ksr.Runner, error) {
	return nil, errors.New("ksrtest: no workers")
}

func (h Host) NewGroup(name string, n int) (ksr.Group, error) {
	return nil, errors.New("ksrtest: no workers")
}

// Deps returns bindings dependencies logging at debug level into log,
// with mods provisioned (in order, after the core) and their exports and
// pseudo-variables in the table, as the engine builds them.
func Deps(tb testing.TB, log io.Writer, mods ...ksr.Module) *ksr.Deps {
	tb.Helper()
	d := &ksr.Deps{
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: time.Now,
		Shv: ksr.NewSharedVars(),
		PVs: map[string]*ksr.PV{},
	}
	all := append([]ksr.Module{ksr.Core()}, mods...)
	for _, m := range mods {
		if p, ok := m.(ksr.Provisioner); ok {
			if err := p.Provision(Host{d}); err != nil {
				tb.Fatal(err)
			}
		}
		for _, pv := range m.Info().PVs {
			d.PVs[pv.Name] = &pv
		}
	}
	t, err := ksr.NewTable(all...)
	if err != nil {
		tb.Fatal(err)
	}
	d.Table = t
	return d
}
