// Package ksr implements the KSR.* Lua API of Kamailio's KEMI interface:
// KSR functions as data (export.go), the module contract (module.go), the
// merged table every VM's KSR is built from (table.go), Kamailio's core as
// a module (core.go for KSR.*, x.go, pv.go, hdr.go), the reply and relay
// services the modules under modules/ share (reply.go, relay.go), and the
// per-event message context (Msg) the bindings act on.
//
// Argument and return conventions follow app_lua, not gopher-lua's Check*
// helpers: too few arguments (or more than six) are logged and return false,
// extra ones are ignored, a nil string argument becomes "", a non-numeric
// integer argument becomes 0 (export.go, args.go). Nothing here raises a Lua error except KSR.x.exit/drop.
//
// Concurrency contract: Register builds the KSR table for one Lua state and
// one *Env; an Env belongs to the goroutine owning that state. Deps is shared
// by every VM and holds only concurrency-safe services.
package ksr
