package nathelper

import (
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/ksr/ksrtest"
	"kemi/modules/usrloc"
	"kemi/sipnet"
)

// FuzzRURIAlias runs handle_ruri_alias (both modes), the alias trim and
// the SDP rewrite on arbitrary R-URIs and bodies: errors are fine,
// panics are not.
func FuzzRURIAlias(f *testing.F) {
	for _, s := range []string{
		"sip:alice@10.0.0.5;alias=192.0.2.1~5090~1",
		"sip:alice@10.0.0.5;alias=192.0.2.1~5090",
		"sip:alice@10.0.0.5;alias=~~;alias=1~2~3;x",
		"sip:a@[2001:db8::1]:5060;alias=[2001:db8::2]~5070~2",
		"sip:alice@h;alias=1.2.3.4~5~",
	} {
		f.Add(s, "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 1 RTP/AVP 0\r\na=rtcp:2 IN IP6 ::1\r\n")
	}
	m := New(usrloc.New())
	m.alias, m.salias = "alias=", ";alias="
	v := ksrtest.NewVM(f, ksrtest.Deps(f, io.Discard, m))
	f.Fuzz(func(t *testing.T, uri, body string) {
		raw := "INVITE " + strings.NewReplacer(" ", "", "\r", "", "\n", "").Replace(uri) + " SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n" +
			"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
		msg, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		for _, mode := range []int{0, 1} {
			r := sipnet.NewFakeRequest(req.Clone())
			r.Src = netip.MustParseAddrPort("198.51.100.7:5000")
			v.Env.Msg = &ksr.Msg{Req: r}
			m.handleRURIAliasMode(v.Env, mode)
			m.trimAlias(uri)
			splitURI(uri)
			m.replaceSDPIP(body, "c=", "127.0.0.1", false)
			m.replaceSDPIP(body, "a=rtcp", "127.0.0.1", true)
			mediaIP(body, 0)
		}
	})
}
