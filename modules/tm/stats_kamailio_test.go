package tm_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/engine/enginetest"
	"kemi/modules/internal/kamtest"
)

// statsScript answers or relays as X-Op says; CANCELs and ACKs of a
// transaction go to tm as Kamailio's default configuration does.
const statsScript = `
function ksr_request_route()
	local op = KSR.hdr.get("X-Op")
	if KSR.is_CANCEL() or KSR.is_ACK() then
		if KSR.tm.t_check_trans() > 0 then KSR.tm.t_relay() end
		return
	end
	if op == nil or op == "sl" then
		KSR.sl.send_reply(200, "OK")
	elseif op == "t_reply" then
		KSR.tm.t_newtran()
		KSR.tm.t_reply(404, "Not Here")
	elseif op == "newtran" then
		KSR.tm.t_newtran()
		KSR.tm.t_reply(200, "OK")
	elseif op == "relay" then
		KSR.setdsturi(KSR.hdr.get("X-Relay"))
		KSR.tm.t_relay()
	end
end

function ksr_xhttp_event(evname)
	KSR.xhttp_prom.dispatch()
end
`

const statsCfg = `loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "xhttp.so"
loadmodule "xhttp_prom.so"
loadmodule "app_lua.so"
tcp_accept_no_cl=yes
modparam("tm", "fr_timer", 2000)
modparam("tm", "fr_inv_timer", 2000)
modparam("xhttp", "event_callback", "ksr_xhttp_event")
modparam("xhttp_prom", "xhttp_prom_stats", "tmx:")
modparam("app_lua", "load", "%DIR%/stats.lua")
`

// statsUAS is the next hop: as X-Uas says it answers 180 and then, once
// the test calls finish with the Call-ID, 486 ("486"); 200 ("200"); 180
// and then 487 once the CANCEL comes ("cancel"); or nothing ("silent").
// CANCELs get 200; ACKs nothing.
func statsUAS(t *testing.T) (addr string, finish func(callID string)) {
	type pending struct {
		inv   *sip.Request
		reply func(*sip.Response)
	}
	var mu sync.Mutex
	invites := map[string]pending{} // by Call-ID, waiting for a CANCEL or finish
	respond := func(r *sip.Request, code int, reason string, reply func(*sip.Response)) {
		res := sip.NewResponseFromRequest(r, code, reason, nil)
		if code > 100 {
			if to := res.To(); to != nil && to.Params != nil {
				to.Params.Add("tag", "uas1")
			}
		}
		reply(res)
	}
	// end answers the INVITE of Call-ID cid, if one waits, with code.
	end := func(cid string, code int, reason string) {
		mu.Lock()
		p, ok := invites[cid]
		delete(invites, cid)
		mu.Unlock()
		if ok {
			respond(p.inv, code, reason, p.reply)
		}
	}
	finish = func(cid string) { end(cid, 486, "Busy Here") }
	addr = enginetest.UAS(t, func(req *sip.Request, reply func(*sip.Response)) {
		cid := ""
		if h := req.CallID(); h != nil {
			cid = string(*h)
		}
		if req.IsCancel() {
			respond(req, 200, "OK", reply)
			end(cid, 487, "Request Terminated")
			return
		}
		mode := ""
		if h := req.GetHeader("X-Uas"); h != nil {
			mode = h.Value()
		}
		switch mode {
		case "486", "cancel":
			mu.Lock()
			invites[cid] = pending{req, reply}
			mu.Unlock()
			respond(req, 180, "Ringing", reply)
		case "200":
			respond(req, 200, "OK", reply)
		}
	})
	return addr, finish
}

var (
	statLine  = regexp.MustCompile(`^kamailio_tmx_([A-Za-z0-9_]+) ([0-9]+)( [0-9]+)?$`)
	firstLine = regexp.MustCompile(`^[A-Z]+ `)
)

// tmxStats fetches the tmx statistics from a /metrics.
func tmxStats(t *testing.T, addr string) map[string]string {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	res, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET %s/metrics: %v", addr, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if m := statLine.FindStringSubmatch(l); m != nil {
			out[m[1]] = m[2]
		}
	}
	return out
}

func show(m map[string]string) string {
	var ks []string
	for k, v := range m {
		ks = append(ks, k+"="+v)
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

// call sends r and reads its replies up to the final one; an INVITE's
// non-2xx final reply is acknowledged. Once a provisional reply above 100
// came, cancel, when set, sends a CANCEL, and ringing, when set, is called
// with the Call-ID.
func call(t *testing.T, c *enginetest.Client, r enginetest.Req, cancel bool, ringing func(string)) []int {
	t.Helper()
	r.CallID = enginetest.RandomID()
	raw := c.Build(r)
	c.Send(raw)
	var codes []int
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := c.RecvResponse(time.Until(deadline))
		if err != nil {
			t.Fatalf("%s %v: replies so far %v: %v", r.Method, r.Headers, codes, err)
		}
		if res.CallID() == nil || string(*res.CallID()) != r.CallID || res.CSeq() == nil || string(res.CSeq().MethodName) != r.Method {
			continue
		}
		code := int(res.StatusCode)
		codes = append(codes, code)
		if ringing != nil && code > 100 && code < 200 {
			ringing(r.CallID)
			ringing = nil
		}
		if cancel && code > 100 && code < 200 {
			cancel = false
			cr := firstLine.ReplaceAllString(raw, "CANCEL ")
			cr = strings.Replace(cr, "CSeq: 1 INVITE", "CSeq: 1 CANCEL", 1)
			c.Send(cr)
		}
		if code < 200 {
			continue
		}
		if r.Method == "INVITE" && code >= 300 {
			ack := firstLine.ReplaceAllString(raw, "ACK ")
			ack = strings.Replace(ack, "CSeq: 1 INVITE", "CSeq: 1 ACK", 1)
			ack = regexp.MustCompile(`(?m)^To: .*\r$`).ReplaceAllString(ack, "To: "+res.To().Value()+"\r")
			c.Send(ack)
		}
		return codes
	}
}

// TestTMXStatisticsAgainstKamailio sends the same traffic through Kamailio
// 5.6 and kemi (stateless replies, t_reply, t_newtran, INVITE and MESSAGE
// relayed to a UAS answering 180 and 486, 200, or nothing until fr_timer,
// and a CANCELled INVITE) and compares every tmx statistic, read from both
// /metrics: the counts once the last reply is in, then inuse and active
// once the transactions have ended (tm's 5 s wait).
func TestTMXStatisticsAgainstKamailio(t *testing.T) {
	p := kamtest.StartTCP(t, []string{"sl.so", "pv.so", "tm.so", "tmx.so", "xhttp.so", "xhttp_prom.so", "app_lua.so"},
		statsCfg, map[string]string{"stats.lua": statsScript})
	uas, finish := statsUAS(t)
	relay := "X-Relay: sip:" + uas
	type step struct {
		method string
		hdrs   []string
		cancel bool
	}
	steps := []step{
		{"OPTIONS", []string{"X-Op: sl"}, false},
		{"MESSAGE", []string{"X-Op: t_reply"}, false},
		{"MESSAGE", []string{"X-Op: t_reply"}, false},
		{"INVITE", []string{"X-Op: t_reply"}, false},
		{"MESSAGE", []string{"X-Op: newtran"}, false},
		{"INVITE", []string{"X-Op: relay", relay, "X-Uas: 486"}, false},
		{"MESSAGE", []string{"X-Op: relay", relay, "X-Uas: 200"}, false},
		{"MESSAGE", []string{"X-Op: relay", relay, "X-Uas: silent"}, false},
		{"INVITE", []string{"X-Op: relay", relay, "X-Uas: cancel"}, true},
	}
	for _, s := range steps {
		r := enginetest.Req{Method: s.method, URI: "sip:bob@example.com", Headers: s.hdrs}
		var ringing func(string)
		if strings.Contains(strings.Join(s.hdrs, " "), "X-Uas: 486") {
			ringing = finish // 486 once the 180 is through
		}
		kam, kemi := call(t, p.Kam, r, s.cancel, ringing), call(t, p.Kemi, r, s.cancel, ringing)
		if fmt.Sprint(kam) != fmt.Sprint(kemi) {
			t.Errorf("%s %v: kamailio %v, kemi %v", s.method, s.hdrs, kam, kemi)
		}
	}
	compare := func(what string, keep func(string) bool, want string) {
		t.Helper()
		var kam, kemi map[string]string
		for deadline := time.Now().Add(30 * time.Second); ; {
			kam, kemi = tmxStats(t, p.KamTCP), tmxStats(t, p.KemiTCP)
			for _, m := range []map[string]string{kam, kemi} {
				for k := range m {
					if !keep(k) {
						delete(m, k)
					}
				}
			}
			if show(kam) == show(kemi) && len(kam) > 0 && (want == "" || show(kemi) == want) {
				t.Logf("%s: %s", what, show(kemi))
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%s:\n kamailio: %s\n     kemi: %s", what, show(kam), show(kemi))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	gauge := func(k string) bool { return k == "inuse_transactions" || k == "active_transactions" }
	compare("counts", func(k string) bool { return !gauge(k) }, "")
	compare("after the wait", gauge, "active_transactions=0 inuse_transactions=0")
}
