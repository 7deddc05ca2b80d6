package siputils_test

import (
	"os"
	"testing"

	"kemi/modules/internal/kamtest"
)

// TestAgainstKamailio sends the same requests to Kamailio 5.6 and to kemi,
// both running tests/lua/eval.lua, and compares the return codes of
// KSR.siputils, the R-URI after the edits and options_reply's answer.
func TestAgainstKamailio(t *testing.T) {
	script, err := os.ReadFile("../../tests/lua/eval.lua")
	if err != nil {
		t.Fatal(err)
	}
	p := kamtest.Start(t, []string{"sl.so", "pv.so", "siputils.so", "app_lua.so"}, `
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "siputils.so"
loadmodule "app_lua.so"
modparam("siputils", "options_accept", "application/sdp")
modparam("siputils", "options_support", "100rel, timer")
modparam("app_lua", "load", "%DIR%/eval.lua")
`, map[string]string{"eval.lua": string(script)})
	const uri = "sip:bob@example.com;lr;transport=tcp;gr=urn:x;flag"
	var cases []kamtest.Case
	for _, expr := range []string{
		"KSR.siputils.has_totag()", "KSR.siputils.is_request()", "KSR.siputils.is_reply()",
		"KSR.siputils.is_first_hop()", "KSR.siputils.is_first_hop_mode(1)", "KSR.siputils.is_user('alice')",
		"KSR.siputils.is_uri('sip:a@b.com')", "KSR.siputils.is_uri('tel:+123')", "KSR.siputils.is_uri('http://x')",
		"KSR.siputils.is_uri('sip:')", "KSR.siputils.is_uri('sip:a@b:99999')", "KSR.siputils.is_uri('')",
		"KSR.siputils.uri_param('lr')", "KSR.siputils.uri_param('flag')", "KSR.siputils.uri_param('transport')",
		"KSR.siputils.uri_param('LR')", "KSR.siputils.uri_param('none')",
		"KSR.siputils.uri_param_value('transport', 'tcp')", "KSR.siputils.uri_param_value('transport', 'TCP')",
		"KSR.siputils.uri_param_value('lr', '')", "KSR.siputils.uri_param_any('TRANSPORT')", "KSR.siputils.uri_param_any('maddr')",
		"KSR.siputils.is_gruu()",
		"KSR.siputils.uri_param_rm('LR') .. ' ' .. KSR.pv.get('$ru')",
		"KSR.siputils.uri_param_rm('flag') .. ' ' .. KSR.pv.get('$ru')",
		"KSR.siputils.uri_param_rm('none') .. ' ' .. KSR.pv.get('$ru')",
		"KSR.siputils.add_uri_param('x=1') .. ' ' .. KSR.pv.get('$ru')",
		"KSR.siputils.add_uri_param('') .. ' ' .. KSR.pv.get('$ru')",
		"KSR.siputils.is_tel_number('+4930123')", "KSR.siputils.is_tel_number('+0123')", "KSR.siputils.is_tel_number('+')",
		"KSR.siputils.is_tel_number('12a')", "KSR.siputils.is_tel_number('')",
		"KSR.siputils.is_numeric('0123')", "KSR.siputils.is_numeric('1.5')", "KSR.siputils.is_numeric('')",
		"KSR.siputils.is_alphanum('aZ09')", "KSR.siputils.is_alphanum('a-b')", "KSR.siputils.is_alphanum('')",
		"KSR.siputils.is_alphanumex('a-b_c', '-_')", "KSR.siputils.is_alphanumex('a.b', '-_')", "KSR.siputils.is_alphanumex('a.b', '')",
		"KSR.siputils.cmp_uri('sip:a@B.example.com;transport=udp', 'sip:a@b.example.com')",
		"KSR.siputils.cmp_uri('sip:a@b.example.com;user=phone', 'sip:a@b.example.com')",
		"KSR.siputils.cmp_uri('sip:a@b.example.com;transport=tcp', 'sip:a@b.example.com;transport=UDP')",
		"KSR.siputils.cmp_uri('sip:a@b.example.com;transport=tcp', 'sip:a@b.example.com;transport=TCP')",
		"KSR.siputils.cmp_uri('sip:A@b.example.com', 'sip:a@b.example.com')",
		"KSR.siputils.cmp_uri('sip:a@b.example.com:5060', 'sip:a@b.example.com')",
		"KSR.siputils.cmp_uri('bad', 'sip:a@b.example.com')",
		"KSR.siputils.cmp_aor('sip:a@b.example.com:5060', 'sip:a@B.example.com;x=1')",
		"KSR.siputils.cmp_aor('sip:a@b.example.com:5070', 'sip:a@b.example.com')",
		"KSR.siputils.cmp_aor('sip:a@b.example.com:5070', 'sip:a@b.example.com:5080')",
		"KSR.siputils.cmp_aor('sip:a@b.example.com', 'bad')",
		"KSR.siputils.cmp_hdr_name('From', 'f')", "KSR.siputils.cmp_hdr_name('call-id', 'I')",
		"KSR.siputils.cmp_hdr_name('X-A', 'x-a')", "KSR.siputils.cmp_hdr_name('From', 'To')",
		"KSR.siputils.cmp_hdr_name('X-A', 'X-B')", "KSR.siputils.cmp_hdr_name('X-B', 'X-A')",
		"KSR.siputils.cmp_hdr_name('From', 'X-A')", "KSR.siputils.cmp_hdr_name('X-A', 'X-AB')",
		"KSR.siputils.hdr_date_check(60)",
		"KSR.siputils.options_reply()",
	} {
		cases = append(cases, kamtest.Eval("MESSAGE", uri, expr))
	}
	cases = append(cases,
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.has_totag()", "X-Dummy: To-tag below"),
		kamtest.Eval("OPTIONS", "sip:bob@example.com", "KSR.siputils.options_reply()"),
		kamtest.Eval("MESSAGE", "sip:example.com", "KSR.siputils.is_gruu()"),
		kamtest.Eval("MESSAGE", "sip:example.com;gr", "KSR.siputils.is_gruu()"),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.hdr_date_check(60)", "Date: Sat, 13 Nov 2010 23:29:00 GMT"),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.is_first_hop()", "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx"),
	)
	// The contact encoding: the codes, and the R-URI decode_contact
	// writes ($ct is not compared: Kamailio's rewrite goes into the
	// message sent on, kemi's into the header at once).
	ct := "Contact: <sip:alice:pw@10.0.0.1:5062;transport=tcp;x=1>;expires=60"
	enc := "Contact: <sip:enc*alice*pw*10.0.0.1*5062*tcp@1.2.3.4;lr>"
	cases = append(cases,
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.encode_contact('enc', '1.2.3.4')", ct),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.encode_contact('enc', '1.2.3.4')"),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.encode_contact('enc', '1.2.3.4')", "Contact: *"),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.decode_contact_header()", enc),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.decode_contact_header()", ct),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.decode_contact_header()"),
		kamtest.Eval("MESSAGE", "sip:enc*bob**10.0.0.2*5070*udp@1.2.3.4;lr", "KSR.siputils.decode_contact() .. ' ' .. KSR.pv.get('$ru')"),
		kamtest.Eval("MESSAGE", "sip:enc*bob*pw*10.0.0.2**@1.2.3.4", "KSR.siputils.decode_contact() .. ' ' .. KSR.pv.get('$ru')"),
		kamtest.Eval("MESSAGE", "sip:enc*bob**10.0.0.2*5070@1.2.3.4", "KSR.siputils.decode_contact()"),
		kamtest.Eval("MESSAGE", "sip:enc****5070*udp@1.2.3.4", "KSR.siputils.decode_contact()"),
		kamtest.Eval("MESSAGE", "sip:enc**pw*h*5070*udp@1.2.3.4", "KSR.siputils.decode_contact()"),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.decode_contact()"),
		kamtest.Eval("MESSAGE", "sip:a*b*c*d*e*f*g@1.2.3.4", "KSR.siputils.decode_contact()"),
	)
	const b64 = "c2lwOmFsaWNlQDEwLjAuMC41OjUwNjI7dHJhbnNwb3J0PXRjcA" // sip:alice@10.0.0.5:5062;transport=tcp
	cases = append(cases,
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.contact_param_encode('alias', 'sip:203.0.113.1:5060')", ct),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.contact_param_encode('alias', 'sip:203.0.113.1:5060')"),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.contact_param_decode('alias')", "Contact: <sip:203.0.113.1;alias="+b64+">"),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.contact_param_decode('alias')", "Contact: <sip:203.0.113.1;alias=%%%>"),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.contact_param_decode('alias')", ct),
		kamtest.Eval("MESSAGE", "sip:203.0.113.1;alias="+b64, "KSR.siputils.contact_param_decode_ruri('ALIAS') .. ' ' .. KSR.pv.get('$ru')"),
		kamtest.Eval("MESSAGE", "sip:203.0.113.1;lr", "KSR.siputils.contact_param_decode_ruri('alias') .. ' ' .. KSR.pv.get('$ru')"),
		kamtest.Eval("MESSAGE", "sip:203.0.113.1;alias=%%%", "KSR.siputils.contact_param_decode_ruri('alias') .. ' ' .. KSR.pv.get('$ru')"),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.contact_param_rm('x')", ct),
		kamtest.Eval("MESSAGE", "sip:bob@example.com", "KSR.siputils.contact_param_rm('x')"),
	)
	opts := kamtest.Eval("OPTIONS", "sip:127.0.0.1", "KSR.siputils.options_reply()")
	opts.Show = []string{"Accept", "Accept-Encoding", "Accept-Language", "Supported"}
	cases = append(cases, opts)
	p.Compare(t, cases)
}
