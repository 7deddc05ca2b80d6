package jsonrpc

import (
	"errors"
	"strconv"
)

// Sentinel errors returned (wrapped) by the server's lifecycle and
// registration methods. Test them with errors.Is.
var (
	// ErrDuplicateMethod is returned by Register for a name already taken.
	ErrDuplicateMethod = errors.New("method already registered")
	// ErrNonLoopback is returned by NewServer and Start for a listen address
	// that is not loopback while Options.AllowNonLoopback is false.
	ErrNonLoopback = errors.New("listen address is not loopback (set AllowNonLoopback to allow it)")
	// ErrStarted is returned by Start on a server already started.
	ErrStarted = errors.New("server already started")
	// ErrStopped is returned by Start on a server that has been stopped:
	// an http.Server cannot be restarted, create a new Server instead.
	ErrStopped = errors.New("server stopped")
)

// Standard JSON-RPC 2.0 error codes used by this package.
const (
	CodeParseError     = -32700 // invalid JSON
	CodeInvalidRequest = -32600 // not a valid request object
	CodeServerError    = -32000 // what a fault code 0 becomes (as Kamailio)
)

// Messages kemi uses for its own faults.
const (
	// MsgMethodNotFound is Kamailio's text for an unknown method (code 500).
	MsgMethodNotFound = "Method Not Found"
	// MsgInternalError is the text of the fault that replaces a handler panic.
	MsgInternalError = "Internal error"
	msgParseError    = "Parse error"
	msgInvalidReq    = "Invalid Request"
)

// standardText gives the text used for a fault whose Message is empty.
func standardText(code int) string {
	switch code {
	case -32700:
		return msgParseError
	case -32600:
		return msgInvalidReq
	case -32601:
		return MsgMethodNotFound
	case -32602:
		return "Invalid params"
	case -32603:
		return MsgInternalError
	case -32000:
		return "Server error"
	}
	return "Unexpected error"
}

// Fault is a JSON-RPC error reply: a handler returns a *Fault (possibly
// wrapped) to choose the code and message; any other error becomes a fault
// with code 500 and err.Error() as message. The code is sent as is (Kamailio
// style: 400, 404, 500 ...), except that 0 becomes -32000.
type Fault struct {
	Code    int
	Message string
}

// Error implements error. It is safe on a nil *Fault.
func (f *Fault) Error() string {
	if f == nil {
		return "jsonrpc fault <nil>"
	}
	return "jsonrpc fault " + strconv.Itoa(f.Code) + ": " + f.Message
}

// normalized returns the fault as it goes on the wire: code 0 becomes -32000
// and an empty message gets the standard text of the code.
func (f Fault) normalized() Fault {
	if f.Code == 0 {
		f.Code = CodeServerError
	}
	if f.Message == "" {
		f.Message = standardText(f.Code)
	}
	return f
}

// faultOf turns a handler error into the fault to send. ok is false when err
// holds only a nil *Fault (a typed nil returned as error), which counts as
// success.
func faultOf(err error) (f Fault, ok bool) {
	var fp *Fault
	if errors.As(err, &fp) {
		if fp == nil {
			return Fault{}, false
		}
		return fp.normalized(), true
	}
	return Fault{Code: 500, Message: err.Error()}.normalized(), true
}

// httpStatus is the HTTP status for a reply carrying fault code: the code
// itself for a 4xx/5xx code, 400 for the protocol errors (parse error,
// invalid request), 500 otherwise.
func httpStatus(code int) int {
	switch {
	case code == CodeParseError || code == CodeInvalidRequest:
		return 400
	case code >= 400 && code <= 599:
		return code
	}
	return 500
}
