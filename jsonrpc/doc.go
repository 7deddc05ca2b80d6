// Package jsonrpc is kemi's control plane: a JSON-RPC 2.0 server over HTTP
// and its client, with the reply shapes of Kamailio's jsonrpcs module
// (kamailio-reference.md §6), so that tools and habits written for
// `kamctl rpc` carry over. It is a leaf package: standard library only.
//
// # Server
//
// NewServer(Options) builds a server with system.listMethods and
// system.methodHelp registered; the engine registers everything else
// (core.version, core.uptime, mqueue.*, app_lua.* ...) with Register.
// Start listens (default 127.0.0.1:5071, path /RPC) and Stop shuts down
// gracefully. Handle dispatches a document with no transport at all (used by
// `kemi test` and the tests); Call runs one method in-process.
//
// A Handler receives positional Params (an object's values in document
// order, names ignored, as Kamailio) and returns a value marshalled with
// encoding/json, or an error: a *Fault, possibly wrapped, chooses the code
// and message; any other error becomes Fault{500, err.Error()}.
//
// # Wire format
//
// Request: {"jsonrpc":"2.0","method":"m","params":[...] or {...},"id":X}.
// Success: {"jsonrpc":"2.0","result":R,"id":X}. Fault:
// {"jsonrpc":"2.0","error":{"code":C,"message":M},"id":X}. Keys are written
// in exactly that order, on one line. X is echoed byte for byte. C is the
// handler's own code (400, 404, 500 ...), not mapped to -32xxx, except that
// code 0 becomes -32000. An unknown method is code 500 "Method Not Found".
// A panicking handler is recovered and logged, and the call gets
// 500 "Internal error". HTTP status: 200 for a success or a batch, 204 when
// nothing is replied, 400 for a parse error or an invalid request, and for
// a fault its code when it is 4xx or 5xx, else 500.
//
// # Differences from Kamailio's jsonrpcs, all deliberate
//
//   - Invalid JSON gets -32700 "Parse error" (HTTP 400); Kamailio sends no
//     JSON reply.
//   - A missing or wrong "jsonrpc":"2.0", a missing or non-string "method",
//     "params" that is neither an array nor an object (null included), an
//     "id" that is not a string, number or null, or a document that is not
//     an object get -32600 "Invalid Request" (HTTP 400) with the id if it
//     could be read, else null; Kamailio replies "result":{} for some of
//     these.
//   - A batch (an array of requests) gets an array of replies, in request
//     order, notifications left out; an empty batch is an invalid request.
//     Kamailio has no batches.
//   - A request without "id" is a notification: the method runs and nothing
//     is replied (HTTP 204). Kamailio replies without an id. An explicit
//     "id":null is not a notification: the reply carries "id":null.
//   - The id is echoed exactly as sent; Kamailio re-prints numbers from a
//     double (1e3 becomes 1000, large integers lose precision).
//   - A fault's message is the handler's even for the -32xxx codes, where
//     Kamailio substitutes its standard texts; an empty message gets the
//     standard text of the code.
//   - The HTTP status of a fault is its code only for 400..599 (Kamailio:
//     any code above 100): net/http treats 1xx as interim responses, 204 and
//     304 cannot carry the reply body, and a 2xx/3xx status would tell
//     proxies and clients that a failed call succeeded.
//   - The reply is always compact (Kamailio's pretty_format=0).
//   - A nil result, or one that marshals to null, is sent as {} (Kamailio's
//     "nothing added"). Kamailio's RET_ARRAY flag has no equivalent: a
//     handler that means an array returns a non-nil slice.
//   - Params.String matches only a JSON string, as Kamailio's "s"/"S" scan
//     without the "." auto-convert modifier. Params.Int also accepts a
//     numeric string; Kamailio's "d" scan reads 0 from a string.
//   - system.listMethods is sorted (Kamailio: registration order);
//     system.methodHelp answers an unknown name with 500 "Method Not Found"
//     (Kamailio: 400 "command not found"), a missing name with
//     400 "Method Name Expected" and an empty Doc with "undocumented", as
//     Kamailio.
//   - Transport: HTTP only, served by kemi itself (no xhttp event route, no
//     FIFO or datagram socket). The path is matched exactly (Kamailio's is a
//     script convention, usually a prefix match); only POST is accepted
//     (405); the body must be application/json (415) and at most MaxBody
//     bytes (413). These, and a Host header that must name a loopback host
//     while AllowNonLoopback is false (403), keep a web page in a local
//     browser from driving the control plane (CSRF, DNS rebinding):
//     `curl -H 'Content-Type: application/json' -d @req.json
//     http://127.0.0.1:5071/RPC`. Such transport errors are answered with a
//     -32600 error whose message names the problem.
//   - NewServer and Start refuse a listen address that is not loopback
//     unless AllowNonLoopback is set: the control plane has no
//     authentication.
//   - ParseCLIArgs (for `kemi rpc`) turns only bare decimal integers into
//     numbers; kamctl sends as a number any word printf %f accepts (1.5,
//     1e3, 0x10) and sends "007" as invalid JSON. An "i:" word that is not
//     an integer stays a string (ParseCLIArg reports it).
//
// # Concurrency
//
// A Server is safe for concurrent use: Register, Methods, Handle, Call and
// ServeHTTP may be called from any goroutine at any time, before or after
// Start. Handlers run concurrently (one goroutine per HTTP connection,
// owned by net/http, and the caller's goroutine for Handle and Call) and
// must synchronise their own state. Start and Stop are serialised; the
// server owns two goroutines (serve and a context watcher), both ended by
// Stop or by cancelling Start's context, and awaited by Stop. The package
// has no global state; Call uses http.DefaultClient.
package jsonrpc
