package engine

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/emiago/sipgo/sip"

	"kemi/sipnet"
)

// fuzzScript touches every pseudo-variable and header function on whatever
// message arrives, then replies.
const fuzzScript = `
local pvs = {"$ru","$rU","$rd","$rp","$rm","$rs","$rr","$ci","$fu","$fU","$fd","$ft","$fn",
	"$tu","$tU","$td","$tt","$si","$sp","$Ri","$Rp","$pr","$ua","$cs","$mb","$ml","$rb","$cl",
	"$hdr(Via)","$hdr(Contact)","$du","$TV(Sn)","$Ts","$TF","$ct","$cT","$rz","$rv"}
function touch()
	for _, pv in ipairs(pvs) do KSR.pv.get(pv) end
	KSR.hdr.get("Via"); KSR.hdr.get_idx("Via", -1); KSR.hdr.is_present("To")
	KSR.hdr.append("X-Fuzz: 1\r\n"); KSR.hdr.remove("X-Fuzz")
	KSR.is_method_in("IARBCMOSNPUEFGKDTV"); KSR.is_myself_ruri(); KSR.is_myself_furi()
end
function ksr_request_route()
	touch()
	KSR.pv.sets("$ru", "sip:x@example.com")
	KSR.sl.send_reply(200, "OK")
end
function ksr_reply_route()
	touch()
end
`

// FuzzIngress sends raw datagrams through the ingress path: sipgo's parser,
// the network layer's validation, then pre-routing-free routing in a Lua VM
// that reads every pseudo-variable. Nothing may panic. Seeds: testdata/sip
// (messages after RFC 4475's torture categories).
func FuzzIngress(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/sip/*.sip")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	w := soloWorker(f, "fuzz/0", "modparam(\"app_lua\", \"max_exec_ms\", 2000)\n", fuzzScript)
	parser := sip.NewParser()
	src := netip.MustParseAddrPort("192.0.2.9:5060")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parser.ParseSIP(data)
		if err != nil {
			return
		}
		switch msg := m.(type) {
		case *sip.Request:
			if sipnet.Malformed(msg) != "" {
				return // answered 400 or dropped by the network layer
			}
			r := sipnet.NewFakeRequest(msg)
			r.Src = src
			r.Sink = func(res *sip.Response) error { _ = res.String(); return nil }
			w.e.pending.Add(1)
			w.Run((*requestTask)(r))
		case *sip.Response:
			w.e.pending.Add(1)
			w.Run((*replyTask)(&sipnet.Response{Msg: msg, Src: src}))
		}
	})
}
