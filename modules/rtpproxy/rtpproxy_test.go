package rtpproxy_test

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
	return enginetest.Config(append([]string{`loadmodule "kemix.so"`, `loadmodule "textops.so"`, `loadmodule "rtpproxy.so"`,
		`modparam("rtpproxy", "rtpproxy_sock", "` + sock + `")`}, extra...)...)
}

var (
	mPort = regexp.MustCompile(`(?m)^m=audio (\d+) `)
	cAddr = regexp.MustCompile(`(?m)^c=IN IP4 (\S+)\r$`)
	rtcp  = regexp.MustCompile(`(?m)^a=rtcp:(\d+)\r$`)
)

// checkRelayed fails unless sdp points at the relay: c= 127.0.0.1, an
// m= port other than orig, a=rtcp one above it, a=nortpproxy:yes.
func checkRelayed(t *testing.T, what, sdp string, orig int) {
	t.Helper()
	m := mPort.FindStringSubmatch(sdp)
	c := cAddr.FindStringSubmatch(sdp)
	r := rtcp.FindStringSubmatch(sdp)
	if m == nil || c == nil || r == nil {
		t.Fatalf("%s: SDP not rewritten:\n%s", what, sdp)
	}
	port, _ := strconv.Atoi(m[1])
	rp, _ := strconv.Atoi(r[1])
	if c[1] != "127.0.0.1" || port == orig || rp != port+1 || !strings.HasSuffix(sdp, "\r\na=nortpproxy:yes\r\n") {
		t.Errorf("%s: SDP does not point at the relay (port %d, rtcp %d, c %s):\n%q", what, port, rp, c[1], sdp)
	}
	if !strings.Contains(sdp, "o=- 1 1 IN IP4 127.0.0.1\r\n") {
		t.Errorf("%s: o= not rewritten:\n%q", what, sdp)
	}
}

// TestCallThroughRTPEngine relays a call through kemi with
// rtpproxy_manage("co") talking to a real rtpengine over the rtpproxy
// protocol (--listen-udp): the offer and the answer are rewritten to
// rtpengine's ports, rtpengine holds the call until the BYE deletes it.
func TestCallThroughRTPEngine(t *testing.T) {
	re := rtptest.StartRTPEngine(t)
	e := enginetest.Start(t, cfg("udp:"+re.UDP), map[string]string{"script.lua": rtptest.Script(`return KSR.rtpproxy.rtpproxy_manage("co")`)})
	rtptest.ManagedCalls(t, re, e.Addr("udp"), checkRelayed)
}

// TestDeadRelay checks the failover of a set of two relays: a call
// whose Call-ID chooses the first goes to the second once the first stops
// answering, the first is listed disabled, and after
// rtpproxy_disable_tout it is tested again and chosen again.
func TestDeadRelay(t *testing.T) {
	a := rtptest.NewRecorder(t, rtptest.RTPProxyAnswer)
	b := rtptest.NewRecorder(t, rtptest.RTPProxyAnswer)
	e := enginetest.Start(t, cfg("udp:"+a.Addr+" udp:"+b.Addr, `modparam("rtpproxy", "rtpproxy_disable_tout", 1)`,
		`modparam("rtpproxy", "rtpproxy_tout", 1)`, `modparam("rtpproxy", "rtpproxy_retr", 2)`),
		map[string]string{"script.lua": rtptest.Script(`return KSR.rtpproxy.rtpproxy_manage("co")`)})
	proxy := e.Addr("udp")
	uac, uas := rtptest.NewUA(t), rtptest.NewUA(t)
	a.Take()
	b.Take()
	call := func(n int) rtptest.Flow {
		c := rtptest.Call{ID: rtptest.CallIDFor("dead-"+strconv.Itoa(n)+"-", 0, 2), FromTag: "f", ToTag: "t"}
		return c.Run(proxy, uac, uas, false, nil)
	}
	if f := call(1); len(a.Take()) != 4 || len(b.Take()) != 0 || !strings.Contains(f.Invite, "m=audio 35000 ") {
		t.Fatalf("the first relay did not take the call: %q", f.Results)
	}
	a.Close()
	f := call(2)
	if got := b.Take(); len(got) != 4 || !strings.Contains(f.Invite, "m=audio 35000 ") {
		t.Fatalf("the second relay did not take over: %q %q", got, f.Results)
	}
	raw, err := jsonrpc.Call(context.Background(), e.RPCURL(), "rtpproxy.list", nil)
	if err != nil || !strings.Contains(string(raw), `"url":"udp:`+a.Addr+`","index":0,"disabled":1`) {
		t.Fatalf("rtpproxy.list: %s %v", raw, err)
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

// TestBranchRoute calls rtpproxy_manage in a t_on_branch function, as
// Kamailio's example does (ksr_branch_manage): the branch's copy of the
// INVITE carries the rewritten SDP.
func TestBranchRoute(t *testing.T) {
	re := rtptest.StartRTPEngine(t)
	script := strings.Replace(rtptest.Script(`return KSR.rtpproxy.rtpproxy_manage("co")`),
		`	local r = relay_manage()
	KSR.hdr.append("X-Manage: " .. KSR.pv.get("$rm") .. " " .. tostring(r) .. "\r\n")`,
		`	if KSR.is_INVITE() then
		KSR.tm.t_on_branch("ksr_branch")
	else
		local r = relay_manage()
		KSR.hdr.append("X-Manage: " .. KSR.pv.get("$rm") .. " " .. tostring(r) .. "\r\n")
	end`, 1) + `
function ksr_branch()
	local r = relay_manage()
	KSR.hdr.append("X-Manage: branch " .. tostring(r) .. "\r\n")
end
`
	e := enginetest.Start(t, cfg("udp:"+re.UDP), map[string]string{"script.lua": script})
	uac, uas := rtptest.NewUA(t), rtptest.NewUA(t)
	call := rtptest.Call{ID: "branch-" + enginetest.RandomID(), FromTag: "fb", ToTag: "tb"}
	f := call.Run(e.Addr("udp"), uac, uas, false, func() { re.WaitCalls(t, 1) })
	checkRelayed(t, "INVITE", f.Invite, 10000)
	checkRelayed(t, "200", f.OK, 20000)
	if got := strings.Join(f.Results, ", "); got != "branch 1, 200 1, ACK -1, BYE 1" {
		t.Errorf("manage results: %s", got)
	}
	re.WaitCalls(t, 0)
}

// TestConfigErrors: a bad relay list or value is refused with the
// statement's file:line; an ignored parameter is accepted.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct{ line, want string }{
		{`modparam("rtpproxy", "rtpproxy_sock", "x == udp:127.0.0.1:7722")`, `rtpproxy_sock: invalid set name "x": must be an integer, at `},
		{`modparam("rtpproxy", "rtpproxy_tout", "soon")`, `rtpproxy_tout: expected an integer, got "soon", at `},
		{`modparam("rtpproxy", "no_such", 1)`, `unknown parameter`},
	} {
		_, err := enginetest.TryStart(t, cfg("udp:127.0.0.1:1", c.line), map[string]string{"script.lua": ""})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasSuffix(err.Error(), "kemi.cfg:15") {
			t.Errorf("%s: %v, want %q", c.line, err, c.want)
		}
	}
	if _, err := enginetest.TryStart(t, cfg("udp:127.0.0.1:1", `modparam("rtpproxy", "db_url", "x")`),
		map[string]string{"script.lua": "function ksr_request_route() end"}); err != nil {
		t.Errorf("ignored parameter refused: %v", err)
	}
}
