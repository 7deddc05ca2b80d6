package nathelper_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"kemi/engine"
	"kemi/engine/enginetest"
	"kemi/modules/internal/kamtest"
	"kemi/timers"
)

// pingScript registers the REGISTERs nat_uac_test(19) finds NATed with
// fix_nated_register and the NAT bflag (6), and the SIP ping bflag (7)
// when X-SIPPing is there: the upstream example's NAT detection.
const pingScript = `
function ksr_request_route()
	if KSR.is_REGISTER() then
		if KSR.nathelper.nat_uac_test(19) > 0 then
			KSR.nathelper.fix_nated_register()
			KSR.setbflag(6)
			if KSR.hdr.get("X-SIPPing") then
				KSR.setbflag(7)
			end
		end
		KSR.registrar.save("location", 0)
		return
	end
	KSR.sl.send_reply(200, "OK")
end
`

const pingCfg = `loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "nathelper.so"
loadmodule "app_lua.so"
modparam("usrloc", "preload", "location")
modparam("usrloc", "nat_bflag", 6)
modparam("nathelper", "natping_interval", 1)
modparam("nathelper", "ping_nated_only", 1)
modparam("nathelper", "sipping_bflag", 7)
modparam("nathelper", "sipping_from", "sip:pinger@kamailio.org")
modparam("nathelper|registrar", "received_avp", "$avp(RECEIVED)")
modparam("app_lua", "load", "%DIR%/ping.lua")
`

// TestKeepalivesWithKamailio registers a NATed contact (a private Contact,
// the REGISTER really from a loopback UDP socket) with Kamailio 5.6 and
// with kemi on one configuration: each then sends that socket (the
// contact's received address) OPTIONS pings of the same shape; a
// contact without the SIP ping bflag gets the 4-byte UDP ping. The
// replies to the pings are absorbed, as Kamailio's sipping_rpl_filter
// does.
func TestKeepalivesWithKamailio(t *testing.T) {
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "usrloc.so", "registrar.so", "nathelper.so", "app_lua.so"}, pingCfg,
		map[string]string{"ping.lua": pingScript})
	// one user for both: the From tag carries its AOR's hash
	user := "nat" + enginetest.RandomID()[:6]
	kam := pingShape(t, p.KamAddr, user, true)
	kemi := pingShape(t, p.KemiAddr, user, true)
	if kam != kemi {
		t.Errorf("OPTIONS ping:\n kamailio:\n%s\n     kemi:\n%s", kam, kemi)
	} else {
		t.Logf("OPTIONS ping, both:\n%s", kemi)
	}
	kam = pingShape(t, p.KamAddr, user+"u", false)
	kemi = pingShape(t, p.KemiAddr, user+"u", false)
	if kam != kemi || kemi != "udp ping 00000000" {
		t.Errorf("udp ping: kamailio %q, kemi %q", kam, kemi)
	}
	if strings.Contains(p.KemiLog.String(), "forwarding a reply failed") {
		t.Errorf("kemi did not absorb the reply to its ping:\n%s", p.KemiLog.String())
	}
}

var (
	branchRe = regexp.MustCompile(`;branch=z9hG4bK\d{7}\r\n`)
	tagRe    = regexp.MustCompile(`;tag=(.+)-([0-9a-f]+)-([0-9a-f]+)\r\n`)
	callIDRe = regexp.MustCompile(`Call-ID: [0-9a-f]+-[0-9a-f]+-[0-9a-f]+@127\.0\.0\.1\r\n`)
)

// pingShape registers a contact from a new UDP socket at server and
// returns the first keepalive that socket receives, with the parts that
// differ by nature (the server's port, random branch, ruid and counters)
// replaced by their shape; the aor hash in the From tag stays as sent.
// It answers an OPTIONS ping with 200 OK.
func pingShape(t *testing.T, server, user string, sipPing bool) string {
	t.Helper()
	c, err := net.Dial("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	extra := ""
	if sipPing {
		extra = "X-SIPPing: yes\r\n"
	}
	reg := fmt.Sprintf("REGISTER sip:kemi.test SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
		"From: <sip:%s@kemi.test>;tag=%s\r\nTo: <sip:%s@kemi.test>\r\nCall-ID: %s\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:%s@10.0.0.5:5070>;expires=300\r\n%sMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
		c.LocalAddr(), enginetest.RandomID(), user, enginetest.RandomID()[:8], user, enginetest.RandomID(), user, extra)
	if _, err := c.Write([]byte(reg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	c.SetReadDeadline(time.Now().Add(enginetest.Patience))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("%s: no keepalive: %v", server, err)
		}
		msg := string(buf[:n])
		if strings.HasPrefix(msg, "SIP/2.0 ") {
			if !strings.HasPrefix(msg, "SIP/2.0 200 ") {
				t.Fatalf("%s: REGISTER: %q", server, msg)
			}
			continue
		}
		if !strings.HasPrefix(msg, "OPTIONS ") {
			if bytes.Equal(buf[:n], []byte{0, 0, 0, 0}) {
				return "udp ping 00000000"
			}
			return fmt.Sprintf("datagram %q", msg)
		}
		c.Write([]byte(okTo(msg)))
		// an OPTIONS after the reply, answered once the reply is handled
		// (one receiver, in order)
		id := enginetest.RandomID()
		c.Write([]byte(fmt.Sprintf("OPTIONS sip:kemi.test SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s;rport\r\n"+
			"From: <sip:%s@kemi.test>;tag=1\r\nTo: <sip:kemi.test>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
			c.LocalAddr(), id, user, id)))
		for {
			n, err := c.Read(buf[len(msg):])
			if err != nil {
				t.Fatalf("%s: no reply to the OPTIONS after the ping: %v", server, err)
			}
			if strings.Contains(string(buf[len(msg):len(msg)+n]), id) {
				break
			}
		}
		shape := strings.ReplaceAll(msg, server, "SERVER")
		shape = branchRe.ReplaceAllString(shape, ";branch=z9hG4bK<7 digits>\r\n")
		shape = tagRe.ReplaceAllString(shape, ";tag=<ruid>-$2-<counter>\r\n")
		shape = callIDRe.ReplaceAllString(shape, "Call-ID: <hex>-<hex>-<hex>@127.0.0.1\r\n")
		return strings.ReplaceAll(shape, user, "USER")
	}
}

// okTo is a 200 OK to the request msg (its Via, From, To, Call-ID, CSeq).
func okTo(msg string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 200 OK\r\n")
	for _, l := range strings.Split(msg, "\r\n") {
		for _, h := range []string{"Via:", "From:", "To:", "Call-ID:", "CSeq:"} {
			if strings.HasPrefix(l, h) {
				b.WriteString(l + "\r\n")
			}
		}
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return b.String()
}

// TestKeepalivesOnTheEngineClock: the same configuration in kemi alone on
// a virtual clock: the keepalive goes out over the network only as the
// engine's clock moves, from the socket the contact registered on to its
// received address.
func TestKeepalivesOnTheEngineClock(t *testing.T) {
	clk := timers.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	dir := t.TempDir()
	cfg := "#!KAMAILIO\ndebug=2\nchildren=1\nlisten=udp:127.0.0.1:0\n" +
		strings.ReplaceAll(pingCfg, "%DIR%", dir) + "\ncfgengine \"lua\"\n"
	enginetest.Files(t, dir, map[string]string{"ping.lua": pingScript})
	e := enginetest.Start(t, cfg, nil, func(o *engine.Options) { o.Clock = clk })
	server := e.Addr("udp")
	c, err := net.Dial("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reg := fmt.Sprintf("REGISTER sip:kemi.test SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bKv1;rport\r\n"+
		"From: <sip:vc@kemi.test>;tag=1\r\nTo: <sip:vc@kemi.test>\r\nCall-ID: vc1\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <sip:vc@10.0.0.5:5070>;expires=300\r\nX-SIPPing: yes\r\nContent-Length: 0\r\n\r\n", c.LocalAddr())
	c.Write([]byte(reg))
	buf := make([]byte, 65535)
	c.SetReadDeadline(time.Now().Add(enginetest.Patience))
	n, err := c.Read(buf)
	if err != nil || !strings.HasPrefix(string(buf[:n]), "SIP/2.0 200 ") {
		t.Fatalf("REGISTER: %q %v", buf[:n], err)
	}
	deadline := time.Now().Add(enginetest.Patience)
	for time.Now().Before(deadline) {
		clk.Advance(time.Second)
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			continue // not yet: move the clock again
		}
		msg := string(buf[:n])
		if !strings.HasPrefix(msg, "OPTIONS sip:vc@10.0.0.5:5070 SIP/2.0\r\nVia: SIP/2.0/UDP "+server+";branch=z9hG4bK") {
			t.Fatalf("keepalive: %q", msg)
		}
		// nathelper.enable_ping over the control plane
		for _, c := range [][2]string{{`[0]`, `"result":{}`}, {`[]`, `"message":"No parameter"`}} {
			body := `{"jsonrpc":"2.0","method":"nathelper.enable_ping","params":` + c[0] + `,"id":1}`
			res, err := http.Post(e.RPCURL(), "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			out, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if !strings.Contains(string(out), c[1]) {
				t.Errorf("nathelper.enable_ping %s: %s, want %s", c[0], out, c[1])
			}
		}
		return
	}
	t.Fatal("no keepalive while the engine's clock moved")
}
