package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
)

// sworkerScript delegates in ksr_pre_routing according to the X-Mode header
// ("task:<group>" = task then drop, "exit:<group>" = task then exit without
// drop, "release" = let blocked workers go) and answers every request with
// headers telling where and how it was routed.
const sworkerScript = `
function ksr_pre_routing(evname)
	KSR.pv.sets("$var(evname)", evname)
	local x = KSR.hdr.get("X-Data")
	if x then KSR.pv.sets("$var(xdata)", x) else KSR.pv.unset("$var(xdata)") end
	-- edits, AVPs and flags of pre-routing must not travel to the group
	KSR.hdr.append("X-Edited: pre\r\n")
	KSR.pv.sets("$avp(pre)", "set")
	local mode = KSR.hdr.get("X-Mode") or ""
	KSR.pv.sets("$var(task)", "none")
	if mode == "release" then
		KSR.pv.seti("$shv(release)", 1)
		return
	end
	local kind, group = string.match(mode, "^(%a+):(.*)$")
	if not kind then return end
	local rc = KSR.sworker.task(group)
	KSR.pv.sets("$var(task)", tostring(rc))
	KSR.info("pre-routing task=" .. rc .. " callid=" .. (KSR.pv.get("$ci") or "") .. "\n")
	if rc == 1 and kind == "task" then KSR.x.drop() end
	if kind == "exit" then KSR.x.exit() end
end

local function where()
	local who = "receiver"
	if KSR.sworker.active() == 1 then who = KSR.async.get_gname() end
	return who .. "/" .. KSR.sworker.active()
end

function ksr_request_route()
	if KSR.hdr.get("X-Block") then
		KSR.info("blocked callid=" .. KSR.pv.get("$ci") .. "\n")
		local t0 = os.time()
		while KSR.pv.get("$shv(release)") ~= 1 and os.time() - t0 < 5 do end
	end
	if KSR.hdr.get("X-Mode") == "inroute" then
		KSR.pv.sets("$var(task)", tostring(KSR.sworker.task("g1")))
	end
	KSR.hdr.append_to_reply("X-Worker: " .. where() .. "\r\n")
	KSR.hdr.append_to_reply("X-Xdata: " .. (KSR.pv.get("$var(xdata)") or "<null>") .. "\r\n")
	KSR.hdr.append_to_reply("X-Edited: " .. KSR.hdr.is_present("X-Edited") .. "\r\n")
	KSR.hdr.append_to_reply("X-Avp: " .. (KSR.pv.get("$avp(pre)") or "<null>") .. "\r\n")
	KSR.hdr.append_to_reply("X-Task: " .. (KSR.pv.get("$var(task)") or "<null>") .. "\r\n")
	KSR.sl.send_reply(200, "OK")
end

function ksr_reply_route()
	KSR.info("reply-route where=" .. where() .. " xdata=" .. (KSR.pv.get("$var(xdata)") or "<null>") ..
		" edited=" .. KSR.hdr.is_present("X-Edited") .. " callid=" .. KSR.pv.get("$ci") .. "\n")
end
`

func sworkerConfig(extra ...string) string {
	return enginetest.Config(append([]string{
		`loadmodule "sworker.so"`,
		`modparam("sworker", "xdata", "$var(xdata)")`,
		`async_workers_group="name=g1;workers=1"`,
		`async_workers_group="name=nb;workers=1;nonblock=1;inbox=1"`,
		`kemi.pre_routing_callback="ksr_pre_routing"`,
	}, extra...)...)
}

func hdr(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// checkHeaders fails unless res carries every name: value of want.
func checkHeaders(t *testing.T, what string, res *sip.Response, want map[string]string) {
	t.Helper()
	if res.StatusCode != 200 {
		t.Fatalf("%s: got %d %s", what, res.StatusCode, res.Reason)
	}
	for k, v := range want {
		if got := hdr(res, k); got != v {
			t.Errorf("%s: %s = %q, want %q", what, k, got, v)
		}
	}
}

// recvByCallID reads responses until n have arrived, keyed by Call-ID.
func recvByCallID(t *testing.T, c *enginetest.Client, n int, timeout time.Duration) map[string][]*sip.Response {
	t.Helper()
	out := map[string][]*sip.Response{}
	deadline := time.Now().Add(timeout)
	for got := 0; got < n; got++ {
		res, err := c.RecvResponse(time.Until(deadline))
		if err != nil {
			t.Fatalf("got %d of %d responses: %v", got, n, err)
		}
		id := res.CallID().Value()
		out[id] = append(out[id], res)
	}
	return out
}

func TestSworkerDelegatesToGroup(t *testing.T) {
	e := enginetest.Start(t, sworkerConfig(), map[string]string{"script.lua": sworkerScript})
	for _, proto := range []string{"udp", "tcp"} {
		t.Run(proto, func(t *testing.T) {
			c := enginetest.Dial(t, proto, e.Addr(proto))
			res := c.Do(enginetest.Req{Method: "OPTIONS", Headers: []string{"X-Mode: task:g1", "X-Data: hello " + proto}}, enginetest.Patience)
			checkHeaders(t, "delegated", res, map[string]string{
				"X-Worker": "g1/1", "X-Xdata": "hello " + proto,
				// the group sees the request as received: no pre-routing edits, no AVPs
				"X-Edited": "-1", "X-Avp": "<null>",
			})
			// xdata is reset in the (same, single) g1 worker when empty: an
			// unset $var reads 0, as in Kamailio.
			res = c.Do(enginetest.Req{Method: "OPTIONS", Headers: []string{"X-Mode: task:g1"}}, enginetest.Patience)
			checkHeaders(t, "delegated without xdata", res, map[string]string{"X-Worker": "g1/1", "X-Xdata": "0"})
			// Not delegated: routed in the receiver, with the pre-routing edits.
			res = c.Do(enginetest.Req{Method: "OPTIONS", Headers: []string{"X-Data: local"}}, enginetest.Patience)
			checkHeaders(t, "not delegated", res, map[string]string{
				"X-Worker": "receiver/-1", "X-Xdata": "local", "X-Edited": "1", "X-Avp": "set", "X-Task": "none",
			})
		})
	}
	if !e.Log.Contains("pre-routing task=1") {
		t.Errorf("pre-routing log line missing:\n%s", e.Log)
	}
}

func TestSworkerErrorsKeepTheMessage(t *testing.T) {
	e := enginetest.Start(t, sworkerConfig(), map[string]string{"script.lua": sworkerScript})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))

	// Unknown group: -1 (Kamailio: 1 and the message is lost), routed here.
	res := c.Do(enginetest.Req{Method: "OPTIONS", Headers: []string{"X-Mode: task:nope"}}, enginetest.Patience)
	checkHeaders(t, "unknown group", res, map[string]string{"X-Worker": "receiver/-1", "X-Task": "-1"})
	if !e.Log.WaitFor(`group not found`, enginetest.Patience) || !e.Log.Contains("group=nope") {
		t.Errorf("no log line for the unknown group:\n%s", e.Log)
	}

	// Outside pre-routing: -1 with a log line.
	res = c.Do(enginetest.Req{Method: "OPTIONS", Headers: []string{"X-Mode: inroute"}}, enginetest.Patience)
	checkHeaders(t, "outside pre-routing", res, map[string]string{"X-Worker": "receiver/-1", "X-Task": "-1"})
	if !e.Log.WaitFor("not used in pre-routing phase", enginetest.Patience) {
		t.Errorf("no log line for task outside pre-routing:\n%s", e.Log)
	}
}

func TestSworkerNonblockFullGroup(t *testing.T) {
	e := enginetest.Start(t, sworkerConfig(), map[string]string{"script.lua": sworkerScript})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	release := func() {
		c.Send(c.Build(enginetest.Req{Method: "OPTIONS", CallID: "release", Headers: []string{"X-Mode: release"}}))
	}
	t.Cleanup(release) // never leave the nb worker spinning

	// A blocks nb's only worker, B fills its one-slot inbox, C finds it full.
	c.Send(c.Build(enginetest.Req{Method: "OPTIONS", CallID: "A", Headers: []string{"X-Mode: task:nb", "X-Block: 1"}}))
	if !e.Log.WaitFor("blocked callid=A", enginetest.Patience) {
		t.Fatalf("A did not block the nb worker:\n%s", e.Log)
	}
	c.Send(c.Build(enginetest.Req{Method: "OPTIONS", CallID: "B", Headers: []string{"X-Mode: task:nb"}}))
	if !e.Log.WaitFor("pre-routing task=1 callid=B", enginetest.Patience) {
		t.Fatalf("B was not queued for nb:\n%s", e.Log)
	}
	res := c.Do(enginetest.Req{Method: "OPTIONS", CallID: "C", Headers: []string{"X-Mode: task:nb"}}, enginetest.Patience)
	checkHeaders(t, "C (nb full)", res, map[string]string{"X-Worker": "receiver/-1", "X-Task": "-1"})
	if !e.Log.Contains("group queue full") {
		t.Errorf("no log line for the full group:\n%s", e.Log)
	}

	release()
	got := recvByCallID(t, c, 3, enginetest.Patience) // A, B and the release
	for _, id := range []string{"A", "B"} {
		if len(got[id]) != 1 {
			t.Fatalf("%s: %d responses, want 1", id, len(got[id]))
		}
		checkHeaders(t, id, got[id][0], map[string]string{"X-Worker": "nb/1"})
	}
}

// TestSworkerExitWithoutDrop: Kamailio stops the receiving process only on
// the drop flag, so task + exit routes the message twice: in the group and
// in the receiver. Both answer here.
func TestSworkerExitWithoutDrop(t *testing.T) {
	e := enginetest.Start(t, sworkerConfig(), map[string]string{"script.lua": sworkerScript})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	c.Send(c.Build(enginetest.Req{Method: "OPTIONS", CallID: "twice", Headers: []string{"X-Mode: exit:g1"}}))
	got := recvByCallID(t, c, 2, enginetest.Patience)["twice"]
	if len(got) != 2 {
		t.Fatalf("got %d responses for the request, want 2", len(got))
	}
	seen := map[string]*sip.Response{}
	for _, r := range got {
		seen[hdr(r, "X-Worker")] = r
	}
	if seen["g1/1"] == nil || seen["receiver/-1"] == nil {
		t.Fatalf("responses came from %v, want g1/1 and receiver/-1", keys(seen))
	}
	// The receiver keeps its own edits and AVPs; the group got the request
	// as received.
	checkHeaders(t, "receiver copy", seen["receiver/-1"], map[string]string{"X-Edited": "1", "X-Avp": "set", "X-Task": "1"})
	checkHeaders(t, "group copy", seen["g1/1"], map[string]string{"X-Edited": "-1", "X-Avp": "<null>"})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSworkerReplies: replies arriving at the engine go through pre-routing
// and can be delegated; the core reply route then runs in the group.
func TestSworkerReplies(t *testing.T) {
	e := enginetest.Start(t, sworkerConfig(), map[string]string{"script.lua": sworkerScript})
	c := enginetest.Dial(t, "udp", e.Addr("udp"))
	reply := func(callID string, headers ...string) string {
		var b strings.Builder
		b.WriteString("SIP/2.0 200 OK\r\n")
		fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=z9hG4bK%s\r\n", e.Addr("udp"), enginetest.RandomID())
		b.WriteString("From: <sip:kemi@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b2\r\n")
		fmt.Fprintf(&b, "Call-ID: %s\r\nCSeq: 1 OPTIONS\r\n", callID)
		for _, h := range headers {
			b.WriteString(h + "\r\n")
		}
		b.WriteString("Content-Length: 0\r\n\r\n")
		return b.String()
	}
	c.Send(reply("rep-g1", "X-Mode: task:g1", "X-Data: r1"))
	if !e.Log.WaitFor("reply-route where=g1/1 xdata=r1 edited=-1 callid=rep-g1", enginetest.Patience) {
		t.Fatalf("delegated reply not routed in g1:\n%s", e.Log)
	}
	c.Send(reply("rep-local"))
	if !e.Log.WaitFor("reply-route where=receiver/-1 xdata=0 edited=1 callid=rep-local", enginetest.Patience) {
		t.Fatalf("undelegated reply not routed in the receiver:\n%s", e.Log)
	}
	if n := strings.Count(e.Log.String(), "callid=rep-g1"); n != 2 { // pre-routing + reply route
		t.Errorf("rep-g1 logged %d times, want 2 (dropped after the task)", n)
	}
}

// BenchmarkReceivedCopy compares the ways to give a group the message as
// received: kemi clones the parsed message before pre-routing (paid for
// every message when sworker is loaded and pre-routing is set); keeping the
// raw bytes would cost a copy per message plus a parse per delegation (and
// sipgo's read filter sees TCP chunks, not messages).
func BenchmarkReceivedCopy(b *testing.B) {
	sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n"
	msgs := map[string]string{
		"options": "OPTIONS sip:bench@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-1-0;rport\r\n" +
			"From: <sip:sipp@127.0.0.1:5070>;tag=1\r\nTo: <sip:bench@127.0.0.1:5060>\r\nCall-ID: 1-1@127.0.0.1\r\n" +
			"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nUser-Agent: kemi-bench\r\nContent-Length: 0\r\n\r\n",
		"invite": "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n" +
			"Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK776asdhdt\r\nRecord-Route: <sip:10.0.0.2;lr>\r\n" +
			"Max-Forwards: 70\r\nTo: Bob <sip:bob@example.com>\r\nFrom: Alice <sip:alice@example.com>;tag=1928301774\r\n" +
			"Call-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 314159 INVITE\r\nContact: <sip:alice@10.0.0.1>\r\n" +
			"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\nSupported: replaces, timer\r\nUser-Agent: bench\r\n" +
			fmt.Sprintf("Content-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", len(sdp), sdp),
	}
	for _, name := range []string{"options", "invite"} {
		raw := []byte(msgs[name])
		m, err := sip.ParseMessage(raw)
		if err != nil {
			b.Fatal(err)
		}
		req := m.(*sip.Request)
		req.Via() // headers the routing logic parses anyway
		req.CSeq()
		b.Run(name+"/clone", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = req.Clone()
			}
		})
		b.Run(name+"/raw-copy", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = append([]byte(nil), raw...)
			}
		})
		b.Run(name+"/raw-parse", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sip.ParseMessage(raw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
