package jsonrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Params are the positional parameters of one call. When the request sent an
// object, its values are taken in document order and the names are ignored,
// as Kamailio does. The zero value has no parameters.
//
// Params is read-only and safe for concurrent use.
type Params struct {
	raw []json.RawMessage
}

// NewParams builds Params from Go values, each marshalled with encoding/json.
// It is meant for tests and in-process callers; see also Server.Call.
func NewParams(values ...any) (Params, error) {
	raw := make([]json.RawMessage, len(values))
	for i, v := range values {
		b, err := json.Marshal(v)
		if err != nil {
			return Params{}, fmt.Errorf("marshal param %d: %w", i, err)
		}
		raw[i] = b
	}
	return Params{raw: raw}, nil
}

// Len is the number of parameters.
func (p Params) Len() int { return len(p.raw) }

// Raw is parameter i as sent (a complete JSON value), or nil when i is out of
// range. The slice must not be modified.
func (p Params) Raw(i int) json.RawMessage {
	if i < 0 || i >= len(p.raw) {
		return nil
	}
	return p.raw[i]
}

// String is parameter i when it is a JSON string. Like Kamailio's "s"/"S"
// scan without auto-conversion, a number (or anything else) does not match:
// ok is false.
func (p Params) String(i int) (string, bool) {
	r := p.Raw(i)
	if len(r) == 0 || r[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(r, &s); err != nil {
		return "", false
	}
	return s, true
}

// Int is parameter i as an int: a JSON number with an integral value that
// fits an int (12, -3, 1e3, 12.0), or a JSON string holding a decimal
// integer ("12", "-3"). Anything else gives ok false.
func (p Params) Int(i int) (int, bool) {
	r := p.Raw(i)
	if len(r) == 0 {
		return 0, false
	}
	if r[0] == '"' {
		var s string
		if err := json.Unmarshal(r, &s); err != nil {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	if r[0] != '-' && (r[0] < '0' || r[0] > '9') {
		return 0, false
	}
	s := string(r)
	if n, err := strconv.ParseInt(s, 10, strconv.IntSize); err == nil {
		return int(n), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) {
		return 0, false
	}
	limit := math.Ldexp(1, strconv.IntSize-1) // 2^63 on 64-bit
	if f < -limit || f >= limit {
		return 0, false
	}
	return int(f), true
}

// parseParams reads a present "params" member: an array gives its elements,
// an object its values in order. Anything else is an error (the caller
// answers Invalid Request).
func parseParams(raw json.RawMessage) (Params, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return Params{}, errors.New("empty params")
	}
	switch raw[0] {
	case '[':
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return Params{}, err
		}
		return Params{raw: list}, nil
	case '{':
		return objectValues(raw)
	}
	return Params{}, errors.New("params must be an array or an object")
}

// objectValues returns the values of a JSON object in document order.
func objectValues(raw json.RawMessage) (Params, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		return Params{}, err
	}
	var list []json.RawMessage
	for dec.More() {
		if _, err := dec.Token(); err != nil { // the name
			return Params{}, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return Params{}, err
		}
		list = append(list, v)
	}
	if _, err := dec.Token(); err != nil { // '}'
		return Params{}, err
	}
	return Params{raw: list}, nil
}
