package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strconv"
)

// Handle dispatches one JSON-RPC document (a request or a batch) without any
// transport and returns the reply document, or nil when nothing is to be
// sent (a notification, or a batch of notifications). It never panics and
// always returns valid JSON or nil. MaxBody is not applied: it belongs to
// the HTTP transport.
func (s *Server) Handle(ctx context.Context, body []byte) []byte {
	reply, _ := s.handle(ctx, body)
	return reply
}

// Call runs a method in-process with params marshalled by encoding/json and
// returns its marshalled result. A fault is returned as a *Fault error
// (unknown method: Fault{500, "Method Not Found"}); a param that cannot be
// marshalled gives a plain error.
func (s *Server) Call(ctx context.Context, method string, params ...any) (json.RawMessage, error) {
	p, err := NewParams(params...)
	if err != nil {
		return nil, fmt.Errorf("call %q: %w", method, err)
	}
	res, f := s.invoke(ctx, method, p)
	if f != nil {
		return nil, f
	}
	return res, nil
}

// handle returns the reply and the HTTP status that goes with it.
func (s *Server) handle(ctx context.Context, body []byte) ([]byte, int) {
	if !json.Valid(body) {
		return appendError(nil, CodeParseError, msgParseError, nil), httpStatus(CodeParseError)
	}
	doc := bytes.TrimLeft(body, " \t\r\n")
	if doc[0] == '[' {
		return s.batch(ctx, doc)
	}
	return s.single(ctx, doc)
}

func (s *Server) batch(ctx context.Context, doc []byte) ([]byte, int) {
	var elems []json.RawMessage
	if err := json.Unmarshal(doc, &elems); err != nil || len(elems) == 0 {
		return appendError(nil, CodeInvalidRequest, msgInvalidReq, nil), httpStatus(CodeInvalidRequest)
	}
	var out []byte
	for _, e := range elems {
		r, _ := s.single(ctx, e)
		if r == nil {
			continue
		}
		if out == nil {
			out = append(out, '[')
		} else {
			out = append(out, ',')
		}
		out = append(out, r...)
	}
	if out == nil {
		return nil, 204
	}
	return append(out, ']'), 200
}

// request is one decoded request object. id is nil when the request has no
// id member (a notification); otherwise it is the raw id token.
type request struct {
	method string
	params Params
	id     json.RawMessage
}

// single handles one request object (doc is valid JSON of any kind).
func (s *Server) single(ctx context.Context, doc []byte) ([]byte, int) {
	req, ok := parseRequest(doc)
	if !ok {
		return appendError(nil, CodeInvalidRequest, msgInvalidReq, req.id), httpStatus(CodeInvalidRequest)
	}
	res, f := s.invoke(ctx, req.method, req.params)
	if req.id == nil {
		return nil, 204
	}
	if f != nil {
		return appendError(nil, f.Code, f.Message, req.id), httpStatus(f.Code)
	}
	return appendResult(nil, res, req.id), 200
}

// parseRequest checks the request object. When ok is false, req.id holds the
// id to answer with if one could be read (else nil, sent as null).
func parseRequest(doc []byte) (req request, ok bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(doc, &m); err != nil || m == nil {
		return req, false
	}
	if id, has := m["id"]; has {
		if !validID(id) {
			return req, false
		}
		req.id = id
	}
	var version string
	if err := json.Unmarshal(m["jsonrpc"], &version); err != nil || version != "2.0" {
		return req, false
	}
	if mraw, has := m["method"]; !has || len(mraw) == 0 || mraw[0] != '"' ||
		json.Unmarshal(mraw, &req.method) != nil {
		return req, false
	}
	if praw, has := m["params"]; has {
		p, err := parseParams(praw)
		if err != nil {
			return req, false
		}
		req.params = p
	}
	return req, true
}

// validID accepts a string, a number or null.
func validID(id json.RawMessage) bool {
	if len(id) == 0 {
		return false
	}
	switch c := id[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
		return true
	}
	return string(id) == "null"
}

// invoke looks the method up and runs it, recovering a panic. Exactly one of
// res and f is non-nil.
func (s *Server) invoke(ctx context.Context, name string, p Params) (res json.RawMessage, f *Fault) {
	m, ok := s.lookup(name)
	if !ok {
		return nil, &Fault{Code: 500, Message: MsgMethodNotFound}
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("jsonrpc method panicked", "method", name, "panic", fmt.Sprint(v),
				"stack", string(debug.Stack()))
			res, f = nil, &Fault{Code: 500, Message: MsgInternalError}
		}
	}()
	v, err := m.Handler(ctx, p)
	if err != nil {
		if fault, isFault := faultOf(err); isFault {
			return nil, &fault
		}
	}
	return marshalResult(v)
}

// marshalResult encodes a handler result; nil and JSON null give {}.
func marshalResult(v any) (json.RawMessage, *Fault) {
	if v == nil {
		return json.RawMessage("{}"), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, &Fault{Code: 500, Message: "marshal result: " + err.Error()}
	}
	b := bytes.TrimRight(buf.Bytes(), "\n")
	if string(b) == "null" {
		return json.RawMessage("{}"), nil
	}
	return b, nil
}

// appendResult writes {"jsonrpc":"2.0","result":R,"id":X}; a nil id is null.
func appendResult(buf []byte, result, id json.RawMessage) []byte {
	buf = append(buf, `{"jsonrpc":"2.0","result":`...)
	buf = append(buf, result...)
	return appendID(buf, id)
}

// appendError writes {"jsonrpc":"2.0","error":{"code":C,"message":M},"id":X}.
func appendError(buf []byte, code int, msg string, id json.RawMessage) []byte {
	buf = append(buf, `{"jsonrpc":"2.0","error":{"code":`...)
	buf = strconv.AppendInt(buf, int64(code), 10)
	buf = append(buf, `,"message":`...)
	buf = appendString(buf, msg)
	buf = append(buf, '}')
	return appendID(buf, id)
}

func appendID(buf []byte, id json.RawMessage) []byte {
	buf = append(buf, `,"id":`...)
	if id == nil {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, id...)
	}
	return append(buf, '}')
}

// appendString appends s as a JSON string (invalid UTF-8 becomes U+FFFD).
func appendString(buf []byte, s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil { // cannot fail for a string
		return append(buf, `""`...)
	}
	return append(buf, bytes.TrimRight(b.Bytes(), "\n")...)
}

// builtins are the methods every server has.
func (s *Server) builtins() []Method {
	return []Method{
		{
			Name: "system.listMethods",
			Doc:  "Lists all RPC methods supported by the server.",
			Handler: func(context.Context, Params) (any, error) {
				return s.Methods(), nil
			},
		},
		{
			Name: "system.methodHelp",
			Doc:  "Print the help string for given method.",
			Handler: func(_ context.Context, p Params) (any, error) {
				name, ok := p.String(0)
				if !ok {
					return nil, &Fault{Code: 400, Message: "Method Name Expected"}
				}
				m, ok := s.lookup(name)
				if !ok {
					return nil, &Fault{Code: 500, Message: MsgMethodNotFound}
				}
				if m.Doc == "" {
					return "undocumented", nil
				}
				return m.Doc, nil
			},
		},
	}
}
