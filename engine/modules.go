package engine

import (
	"kemi/ksr"
	"kemi/modules/mqueue"
	"kemi/modules/rr"
	"kemi/modules/sl"
	"kemi/modules/tm"
)

// moduleTable returns a fresh instance of every module that has a home of
// its own, in order: the configuration's modparams are read into them,
// their runtimes are provisioned and started in this order, and stopped in
// reverse. Adding a module is one line here (and its home under modules/).
// Modules are made fresh for each configuration: they hold its settings.
//
// Not yet moved into a home (still in settings.go, ksr and engine): app_lua,
// pv, rtimer, async, sworker, jsonrpcs.
func moduleTable() []ksr.Module {
	return []ksr.Module{
		ksr.Core(),
		mqueue.New(), // first runtime started, last stopped: queues load before traffic, save after it
		sl.New(),
		tm.New(),
		tm.NewTMX(),
		rr.New(),
	}
}

// module returns the configuration's module named name, or nil.
func (s *Settings) module(name string) ksr.Module {
	for _, m := range s.Mods {
		if m.Info().Name == name {
			return m
		}
	}
	return nil
}

// Mqueue returns the configuration's mqueue settings.
func (s *Settings) Mqueue() *mqueue.Settings {
	return s.module("mqueue").(*mqueue.Module).Settings()
}

// TM returns the configuration's tm settings: fr_timer and fr_inv_timer,
// which the relay (relay.go) honours.
func (s *Settings) TM() *tm.Settings {
	return s.module("tm").(*tm.Module).Settings()
}
