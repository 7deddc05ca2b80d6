// Package engine turns a kamailio.cfg-style configuration into running
// subsystems and wires them together: the SIP network (sipnet), the worker
// groups owning Lua VMs (workers, luavm, ksr), the modules in the module
// table (modules/*: mqueue, rtimer, async, sworker), which it serves as their
// ksr.Host, the JSON-RPC control plane (jsonrpc), hot reload and graceful
// shutdown. The logic of each capability lives in the leaf packages and the
// module homes; engine only wires.
//
// Concurrency contract: an *Engine is built by New, started once by Start and
// stopped once by Stop; Reload, RPC handlers and Stats are safe for
// concurrent use while it runs.
package engine
