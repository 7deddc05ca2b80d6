package rtpengine_test

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"kemi/engine/enginetest"
	"kemi/jsonrpc"
	"kemi/modules/internal/rtprelay/rtptest"
)

func cfg(sock string, extra ...string) string {
	return enginetest.Config(append([]string{`loadmodule "kemix.so"`, `loadmodule "rtpengine.so"`,
		`modparam("rtpengine", "rtpengine_sock", "` + sock + `")`}, extra...)...)
}

var (
	mPort = regexp.MustCompile(`(?m)^m=audio (\d+) `)
	cAddr = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)\r$`)
	oAddr = regexp.MustCompile(`(?m)^o=\S+ \S+ \S+ IN IP4 (\S+)\r$`)
)

// checkRelayed fails unless sdp is rtpengine's: c= and o= 127.0.0.1
// (replace-origin, replace-session-connection) and an m= port other than
// orig.
func checkRelayed(t *testing.T, what, sdp string, orig int) {
	t.Helper()
	m, c, o := mPort.FindStringSubmatch(sdp), cAddr.FindStringSubmatch(sdp), oAddr.FindStringSubmatch(sdp)
	if m == nil || c == nil || o == nil {
		t.Fatalf("%s: SDP not rewritten:\n%s", what, sdp)
	}
	port, _ := strconv.Atoi(m[1])
	if c[1] != "127.0.0.1" || o[1] != "127.0.0.1" || port == orig {
		t.Errorf("%s: SDP does not point at rtpengine:\n%s", what, sdp)
	}
}

// TestCallThroughRTPEngine relays calls through kemi with
// rtpengine_manage talking to a real rtpengine over the ng protocol.
func TestCallThroughRTPEngine(t *testing.T) {
	re := rtptest.StartRTPEngine(t)
	e := enginetest.Start(t, cfg("udp:"+re.NG), map[string]string{"script.lua": rtptest.Script(
		`return KSR.rtpengine.rtpengine_manage("replace-origin replace-session-connection")`)})
	rtptest.ManagedCalls(t, re, e.Addr("udp"), checkRelayed)
}

// TestDeadRelay checks the failover of a set of two relays: a call
// whose Call-ID chooses the first goes to the second once the first stops
// answering (the command sent again to the next relay), the first is
// shown disabled, and after rtpengine_disable_tout it is pinged and chosen
// again.
func TestDeadRelay(t *testing.T) {
	a := rtptest.NewRecorder(t, rtptest.NGAnswer)
	b := rtptest.NewRecorder(t, rtptest.NGAnswer)
	e := enginetest.Start(t, cfg("udp:"+a.Addr+" udp:"+b.Addr, `modparam("rtpengine", "rtpengine_disable_tout", 1)`,
		`modparam("rtpengine", "rtpengine_tout_ms", 500)`, `modparam("rtpengine", "rtpengine_retr", 2)`),
		map[string]string{"script.lua": rtptest.Script(`return KSR.rtpengine.rtpengine_manage0()`)})
	proxy := e.Addr("udp")
	uac, uas := rtptest.NewUA(t), rtptest.NewUA(t)
	a.Take()
	b.Take()
	call := func(n int) rtptest.Flow {
		c := rtptest.Call{ID: rtptest.CallIDFor("dead-"+strconv.Itoa(n)+"-", 0, 2), FromTag: "f", ToTag: "t"}
		return c.Run(proxy, uac, uas, false, nil)
	}
	if f := call(1); len(a.Take()) != 4 || len(b.Take()) != 0 || !strings.Contains(f.Invite, "a=relayed:offer") {
		t.Fatalf("the first relay did not take the call: %q", f.Results)
	}
	a.Close()
	f := call(2)
	if got := b.Take(); len(got) != 4 || !strings.Contains(f.Invite, "a=relayed:offer") {
		t.Fatalf("the second relay did not take over: %q %q", got, f.Results)
	}
	raw, err := jsonrpc.Call(context.Background(), e.RPCURL(), "rtpengine.show", []any{"udp:" + a.Addr})
	if err != nil || !strings.Contains(string(raw), `"disabled":1`) {
		t.Fatalf("rtpengine.show: %s %v", raw, err)
	}
	a.Reopen(t)
	deadline := time.Now().Add(rtptest.Patience)
	for n := 3; len(a.Take()) == 0; n++ {
		if time.Now().After(deadline) {
			t.Fatal("the first relay was not tested again")
		}
		call(n)
	}
}
