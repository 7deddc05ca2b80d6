// Package luatest is `kemi test`: it finds Lua test files (*_test.lua),
// runs each against a fresh in-process engine built from a kamailio.cfg (no
// sockets, a virtual clock, replies captured), and reports the results as
// text, TAP, JUnit XML or JSON lines. With Options.Cover it measures the line
// coverage of the engine's scripts (luavm.Coverage; CoverReport writes lcov
// and Cobertura).
//
// A test file runs in its own Lua state, the test VM, separate from the
// engine's worker VMs; it loads the test API with require("kemi.test"):
//
//	local t = require("kemi.test")
//
//	t.test("OPTIONS is answered 200", function()
//		local res = t.request{method = "OPTIONS"}
//		t.equal(res.code, 200)
//	end)
//
// The file's top level registers tests (t.test, or busted's t.describe and
// t.it, with t.before_each and t.after_each); they then run in order, on one
// engine started before the first of them and stopped after the last. The
// API calls are Go functions on the test VM: t.request injects a request
// with engine.Engine.Inject and returns when the engine is idle, t.advance
// moves the virtual clock one timer deadline at a time with
// engine.Engine.Advance. Spies and stubs (spy.go, luassert's names) reach the
// worker VMs through luavm.BuildOptions.Prepare, which wraps each VM's KSR
// functions to consult the file's registry. docs/testing.md is the user's
// guide.
//
// Concurrency contract: a Runner runs one file at a time on the calling
// goroutine; the engine's goroutines only ever touch the Outcome of an
// injected request (under its lock), the log capture (under its lock), the
// spy registry (under its lock; an atomic count when nothing is spied) and
// the coverage counters (atomic).
package luatest
