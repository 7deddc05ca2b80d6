package engine

import (
	"kemi/ksr"
	"kemi/modules/async"
	"kemi/modules/mqueue"
	"kemi/modules/rtimer"
	"kemi/modules/sworker"
)

// moduleTable returns a fresh instance of every module that has a home of
// its own, in order: the configuration's modparams are read into them,
// their runtimes are provisioned and started in this order, and stopped in
// reverse. Adding a module is one line here (and its home under modules/).
// Modules are made fresh for each configuration: they hold its settings.
//
// Not yet moved into a home (still in settings.go, ksr and engine): app_lua,
// tm, sl, rr, pv, jsonrpcs.
func moduleTable() []ksr.Module {
	return []ksr.Module{
		ksr.Core(),
		mqueue.New(), // first runtime started, last stopped: queues load before traffic, save after it
		async.New(),  // started before the worker groups, stopped after: handlers release suspended requests until they stop
		rtimer.New(), // timers start after the workers groups (engine.go), with the receivers
		sworker.New(),
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

// Rtimer returns the configuration's rtimer settings.
func (s *Settings) Rtimer() *rtimer.Settings {
	return s.module("rtimer").(*rtimer.Module).Settings()
}

// RtimerStat holds the counters of one rtimer timer.
type RtimerStat = rtimer.Stat

// RtimerStats returns the counters of each rtimer timer, in definition
// order (none before Start or without timers). Safe for concurrent use.
func (e *Engine) RtimerStats() []RtimerStat {
	return e.set.module("rtimer").(*rtimer.Module).Stats()
}

// Sworker returns the configuration's sworker settings.
func (s *Settings) Sworker() *sworker.Settings {
	return s.module("sworker").(*sworker.Module).Settings()
}

// Async returns the configuration's async settings.
func (s *Settings) Async() *async.Settings {
	return s.module("async").(*async.Module).Settings()
}

// asyncModule returns the async module when it is loaded, else nil.
func (e *Engine) asyncModule() *async.Module {
	if _, ok := e.set.Modules["async"]; !ok {
		return nil
	}
	return e.set.module("async").(*async.Module)
}
