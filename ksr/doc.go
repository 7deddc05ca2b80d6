// Package ksr implements the KSR.* Lua API of Kamailio's KEMI interface: the
// module contract (module.go) and export tables (export.go, table.go) that
// the module homes under modules/ fill, the submodules still bound here (one
// file each: core.go for KSR.*, x.go, pv.go, hdr.go, sl.go, tm.go, rr.go),
// and the per-event message context (Msg) the bindings act on.
//
// Argument and return conventions follow app_lua, not gopher-lua's Check*
// helpers: a wrong number of arguments is logged and returns false, a nil
// string argument becomes "", a non-numeric integer argument becomes 0 (see
// args.go). Nothing here raises a Lua error except KSR.x.exit/drop.
//
// Concurrency contract: Register builds the KSR table for one Lua state and
// one *Env; an Env belongs to the goroutine owning that state. Deps is shared
// by every VM and holds only concurrency-safe services.
package ksr
