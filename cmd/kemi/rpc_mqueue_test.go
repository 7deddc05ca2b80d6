package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"

	"kemi/engine/enginetest"
)

// TestRPCCommandMqueue runs `kemi rpc` (Main.Run, in process) against a
// running engine whose queues were filled over SIP: results printed as JSON
// on stdout, faults as "error: CODE - MESSAGE" on stderr with exit status 1,
// and kamcmd's parameter typing (a bare number is sent as a number, s:
// forces a string).
func TestRPCCommandMqueue(t *testing.T) {
	e := enginetest.Start(t, enginetest.Config(`loadmodule "mqueue.so"`,
		`modparam("mqueue", "mqueue", "name=myq")`, `modparam("mqueue", "mqueue", "name=7")`),
		map[string]string{"script.lua": `
function ksr_request_route()
	local rc = KSR.mqueue.mq_add(KSR.hdr.gete("X-Queue"), KSR.hdr.gete("X-Key"), KSR.hdr.gete("X-Val"))
	KSR.sl.send_reply(200, "add " .. rc)
end`})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	for _, h := range [][]string{
		{"X-Queue: myq", "X-Key: alice", "X-Val: hello world"},
		{"X-Queue: 7", "X-Key: x", "X-Val: y"},
	} {
		if res := c.Do(enginetest.Req{Method: "MESSAGE", Headers: h}, enginetest.Patience); res.Reason != "add 1" {
			t.Fatalf("%v: %d %s", h, res.StatusCode, res.Reason)
		}
	}
	addr := e.RPC().Addr().String()
	for _, tc := range []struct {
		args   []string
		stdout string // compared as JSON; "" = nothing printed
		stderr string
		fault  bool
	}{
		{[]string{"mqueue.get_size", "myq"}, `{"name":"myq","size":1}`, "", false},
		{[]string{"mqueue.get_sizes"}, `[{"name":"7","size":1},{"name":"myq","size":1}]`, "", false},
		{[]string{"mqueue.get_size", "7"}, "", "error: 400 - No queue name\n", true},
		{[]string{"mqueue.get_size", "s:7"}, `{"name":"7","size":1}`, "", false},
		{[]string{"mqueue.fetch", "myq"}, `{"key":"alice","val":"hello world"}`, "", false},
		{[]string{"mqueue.fetch", "myq"}, "", "error: 404 - Empty queue\n", true},
		{[]string{"mqueue.fetch", "nope"}, "", "error: 500 - No such queue\n", true},
		{[]string{"mqueue.fetch"}, "", "error: 500 - No queue name\n", true},
	} {
		var out, errb bytes.Buffer
		m := &Main{Stdout: &out, Stderr: &errb}
		err := m.Run(context.Background(), append([]string{"rpc", "-s", addr}, tc.args...))
		var ex exitError
		if tc.fault != (errors.As(err, &ex) && ex == 1) || (!tc.fault && err != nil) {
			t.Errorf("kemi rpc %v: error %v, want fault=%v", tc.args, err, tc.fault)
			continue
		}
		if errb.String() != tc.stderr {
			t.Errorf("kemi rpc %v: stderr %q, want %q", tc.args, errb.String(), tc.stderr)
		}
		if tc.stdout == "" {
			if out.Len() != 0 {
				t.Errorf("kemi rpc %v: stdout %q", tc.args, out.String())
			}
			continue
		}
		var got, want any
		if err := json.Unmarshal(out.Bytes(), &got); err != nil {
			t.Errorf("kemi rpc %v: stdout %q: %v", tc.args, out.String(), err)
			continue
		}
		json.Unmarshal([]byte(tc.stdout), &want)
		if g, w := jsonText(got), jsonText(want); g != w {
			t.Errorf("kemi rpc %v: %s, want %s", tc.args, g, w)
		}
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
