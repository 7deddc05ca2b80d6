package jsonrpc

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
)

// FuzzHandle feeds arbitrary documents to Server.Handle: it must never panic
// and must return nil or valid JSON shaped as a reply (an object with
// "jsonrpc":"2.0" and exactly one of result/error, or a non-empty array of
// them).
func FuzzHandle(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","method":"echo","params":["a",1],"id":1}`,
		`{"jsonrpc":"2.0","method":"echo","params":{"a":1,"b":[2]},"id":"x"}`,
		`{"jsonrpc":"2.0","method":"str","params":[12],"id":null}`,
		`{"jsonrpc":"2.0","method":"int","params":["12"],"id":1.5e3}`,
		`{"jsonrpc":"2.0","method":"panic","id":1}`,
		`{"jsonrpc":"2.0","method":"fault0","id":1}`,
		`{"jsonrpc":"2.0","method":"echo"}`,
		`[{"jsonrpc":"2.0","method":"echo","id":1},{"jsonrpc":"2.0","method":"nope"},3]`,
		`[]`, `[[]]`, `{}`, `null`, `"x"`, `{"jsonrpc":"2.0","method":`, ``,
		`{"jsonrpc":"2.0","method":"echo","id":{"a":1}}`,
		`{"jsonrpc":"2.0","method":"system.methodHelp","params":["echo"],"id":1}`,
		"{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"\xff\"],\"id\":\"\xfe\"}",
	} {
		f.Add([]byte(seed))
	}
	s, err := NewServer(Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range testMethods() {
		if err := s.Register(m); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out := s.Handle(t.Context(), body)
		if out == nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON reply %q for %q", out, body)
		}
		if out[0] == '[' {
			var list []json.RawMessage
			if err := json.Unmarshal(out, &list); err != nil || len(list) == 0 {
				t.Fatalf("bad batch reply %q", out)
			}
			for _, r := range list {
				checkReply(t, r)
			}
			return
		}
		checkReply(t, out)
	})
}

func checkReply(t *testing.T, r []byte) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r, &m); err != nil {
		t.Fatalf("reply not an object: %q", r)
	}
	if string(m["jsonrpc"]) != `"2.0"` {
		t.Fatalf("reply without jsonrpc 2.0: %q", r)
	}
	_, hasRes := m["result"]
	_, hasErr := m["error"]
	_, hasID := m["id"]
	if hasRes == hasErr || !hasID || len(m) != 3 {
		t.Fatalf("reply shape: %q", r)
	}
	if !bytes.HasPrefix(r, []byte(`{"jsonrpc":"2.0","`)) {
		t.Fatalf("key order: %q", r)
	}
}
