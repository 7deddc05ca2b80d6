// Package luavm owns the Lua side of kemi that is not KSR: compiled script
// generations, one VM per goroutine, and the single protected call path into
// Lua.
//
// Concurrency contract: a *Generation is immutable and may be shared by any
// number of goroutines. A *VM belongs to exactly one goroutine for its whole
// life (Kamailio's one-Lua-state-per-process rule); only Generation(),
// Version() and the budget watchdogs' cancellation may be used from other
// goroutines. A *Current is safe for concurrent use: Store publishes a new
// generation atomically, and each VM picks it up at the start of its next
// event (Sync), never in the middle of one.
//
// Every call into Lua goes through VM.Call: a protected call, the stack reset
// afterwards, the KSR.x.exit sentinel treated as a normal end, Lua errors
// returned with their traceback, Go panics inside bindings recovered, an
// optional per-event time budget enforced by a Watchdog, and an optional
// per-event memory budget enforced by guarded library functions and a
// MemWatchdog (membudget.go), after which the VM rebuilds its Lua state.
// The scripts' top level (New, Sync, Prove) may be bounded too
// (Options.LoadTimeout).
package luavm
