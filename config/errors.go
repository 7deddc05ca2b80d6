package config

import (
	"errors"
	"fmt"
)

// ErrNativeRoute is wrapped by the error returned for a native route block
// (request_route, route[...], onreply_route, event_route[...], ...): kemi
// runs only the Lua KEMI engine.
var ErrNativeRoute = errors.New("native route blocks are not supported")

// Error is a configuration error at a file and line. It prints as
// "<message>, at file:line", for example
// `unexpected "}": expected a statement, at kemi.cfg:12`.
type Error struct {
	Pos Pos
	Err error
}

// Error returns the message followed by ", at file:line".
func (e *Error) Error() string {
	if e.Pos == (Pos{}) {
		return e.Err.Error()
	}
	return e.Err.Error() + ", at " + e.Pos.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error at pos whose message is formatted as by
// fmt.Errorf (so %w wraps). The engine uses it for semantic errors so that
// they read like syntax errors: Errorf(st.Pos, "modparam %s %s: must be 0..2",
// mod, param) prints "modparam mqueue db_mode: must be 0..2, at kemi.cfg:12".
func Errorf(pos Pos, format string, args ...any) *Error {
	return &Error{Pos: pos, Err: fmt.Errorf(format, args...)}
}
