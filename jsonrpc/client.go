package jsonrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxReply bounds the reply body read by Call.
const maxReply = 64 << 20

// Call sends one JSON-RPC 2.0 request (id 1) to url with HTTP POST and
// returns the result. A fault reply is returned as a *Fault error carrying
// the server's code and message; transport problems and malformed replies
// are plain errors. nil params are sent as []. ctx bounds the whole call.
func Call(ctx context.Context, url, method string, params []any) (json.RawMessage, error) {
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  []any  `json:"params"`
		ID      int    `json:"id"`
	}{"2.0", method, params, 1})
	if err != nil {
		return nil, fmt.Errorf("rpc %s: marshal request: %w", method, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("rpc %s: %w", method, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rpc %s: %w", method, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return nil, fmt.Errorf("rpc %s: read reply: %w", method, err)
	}
	if len(data) > maxReply {
		return nil, fmt.Errorf("rpc %s: reply larger than %d bytes", method, maxReply)
	}
	var env struct {
		Result json.RawMessage `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("rpc %s: HTTP %s: invalid reply %q: %w", method, resp.Status, snippet(data), err)
	}
	if env.Error != nil {
		return nil, &Fault{Code: env.Error.Code, Message: env.Error.Message}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("rpc %s: unexpected HTTP status %s", method, resp.Status)
	}
	if env.Result == nil {
		return nil, fmt.Errorf("rpc %s: reply has neither result nor error", method)
	}
	return env.Result, nil
}

func snippet(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// ParseCLIArgs converts command-line words into RPC params the way kamctl
// does: a bare decimal integer becomes a JSON number, "s:xxx" forces the
// string "xxx", "i:12" forces the number 12, and every other word is a
// string. A bare word is an integer only when it is a valid JSON integer
// that fits int64 ("12", "-3"; not "007", "+5" or "1.5"). An "i:" word whose
// value is not an integer stays the whole word as a string; use ParseCLIArg
// to report it instead.
func ParseCLIArgs(args []string) []any {
	out := make([]any, len(args))
	for i, a := range args {
		v, err := ParseCLIArg(a)
		if err != nil {
			v = a
		}
		out[i] = v
	}
	return out
}

// ParseCLIArg converts one word as ParseCLIArgs does (to string or int64),
// but returns an error for an "i:" word whose value is not a decimal
// integer fitting int64.
func ParseCLIArg(arg string) (any, error) {
	if s, ok := strings.CutPrefix(arg, "s:"); ok {
		return s, nil
	}
	if s, ok := strings.CutPrefix(arg, "i:"); ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("param %q: want a decimal integer after i: (%w)", arg, errors.Unwrap(err))
		}
		return n, nil
	}
	if isJSONInteger(arg) {
		if n, err := strconv.ParseInt(arg, 10, 64); err == nil {
			return n, nil
		}
	}
	return arg, nil
}

// isJSONInteger reports whether s is -?(0|[1-9][0-9]*).
func isJSONInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
