// Package siputils is Kamailio's siputils module in kemi: KSR.siputils,
// the checks a routing script makes on a request (has_totag,
// is_first_hop, uri_param...), URI comparisons, the answer to an OPTIONS
// keepalive (options_reply, with the options_* modparams) and the R-URI
// parameter edits. Function names, parameter types and return codes
// follow sr_kemi_siputils_exports and the ki_* functions of siputils at
// 5.6.3 (checks.c, sipops.c, options.c, contact_ops.c): all 29 of them.
//
// Concurrency: the module is configured once; its exports only read its
// settings and act on the calling VM's message.
package siputils

import (
	"net/netip"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"kemi/config"
	"kemi/ksr"
)

// Module is one configuration's siputils.
type Module struct {
	accept, acceptEnc, acceptLang, supported string // options_reply's headers
	separator                                byte   // contact_flds_separator's first character
}

// New returns siputils with Kamailio's defaults: options_accept "*/*",
// options_accept_language "en", the others empty.
func New() *Module { return &Module{accept: "*/*", acceptLang: "en", separator: '*'} }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	str := func(dst *string) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error {
			*dst = st.Value.String()
			return nil
		}
	}
	i := func(name string, f any, args []string, doc string) ksr.Export {
		return ksr.Export{Name: name, Func: f, Ret: ksr.Int, Args: args, Doc: doc}
	}
	return ksr.ModuleInfo{
		Name: "siputils",
		Doc:  "SIP checks, URI parameters and comparisons, OPTIONS replies",
		Params: []ksr.Param{
			{Name: "options_accept", Set: str(&m.accept)},
			{Name: "options_accept_encoding", Set: str(&m.acceptEnc)},
			{Name: "options_accept_language", Set: str(&m.acceptLang)},
			{Name: "options_support", Set: str(&m.supported)},
			{Name: "contact_flds_separator", Set: m.setSeparator},
		},
		// The Remote-Party-ID functions are not KEMI exports: their
		// parameters change nothing.
		Ignored: []string{"rpid_prefix", "rpid_suffix", "rpid_avp"},
		Exports: []ksr.Submodule{{Name: "siputils", Funcs: []ksr.Export{
			i("has_totag", hasTotag, nil, "1 if the To header has a tag, -1 if not (or no To)."),
			i("is_request", isRequest, nil, "1 for a request, -1 for a reply."),
			i("is_reply", isReply, nil, "1 for a reply, -1 for a request."),
			i("is_first_hop", isFirstHop, nil, "is_first_hop_mode(0)."),
			i("is_first_hop_mode", m.isFirstHopMode, []string{"mode"}, "A request with one Via, or a reply whose top Record-Route is ours (an IP unless mode is 1) and not from ourselves: 1, else -1."),
			i("is_uri", isURI, []string{"uri"}, "1 if uri parses as a sip, sips, tel or urn URI, else -1."),
			i("is_user", isUser, []string{"user"}, "1 if the authorized credentials' user is user: always -1 in kemi (no auth module)."),
			i("uri_param", uriParam, []string{"name"}, "1 if the R-URI has the parameter name without a value, else -1."),
			i("uri_param_value", uriParamValue, []string{"name", "value"}, "1 if the R-URI's parameter name has value (case-sensitive), else -1."),
			i("uri_param_any", uriParamAny, []string{"name"}, "1 if the R-URI has the parameter name (any case), with or without a value, else -1."),
			i("uri_param_rm", uriParamRm, []string{"name"}, "Remove the R-URI's parameter name (any case): 1 (also when absent), -1 error."),
			i("is_tel_number", isTelNumber, []string{"tval"}, "1 if tval is digits with an optional + (and a first digit 1-9 after it), else -2."),
			i("is_numeric", isNumeric, []string{"tval"}, "1 if tval is decimal digits, else -2."),
			i("is_alphanum", isAlphanum, []string{"tval"}, "1 if tval is letters and digits, -3 other characters, -2 empty."),
			i("is_alphanumex", isAlphanumex, []string{"tval", "eset"}, "1 if tval is letters, digits and characters of eset, -3 others, -2 empty."),
			i("options_reply", m.optionsReply, nil, "Answer an OPTIONS to the server (no R-URI user) 200 OK with Accept, Accept-Encoding, Accept-Language, Supported: 1, -1 not such an OPTIONS or not sent."),
			i("encode_contact", m.encodeContact, []string{"eprefix", "eaddr"}, "Rewrite each Contact URI as sip:eprefix*user*pass*host*port*proto@eaddr: 1, -1 no Contact, below -1 an unparsable URI."),
			i("decode_contact", m.decodeContact, nil, "Decode an encode_contact URI in the R-URI: 1, below 0 not such a URI."),
			i("decode_contact_header", m.decodeContactHeader, nil, "Decode encode_contact URIs in the Contact headers: 1, -1 no Contact, below -1 not such a URI."),
			i("contact_param_encode", contactParamEncode, []string{"nparam", "saddr"}, "Replace each Contact URI with saddr;nparam=<the URI in base64url>: 1, below 0 error."),
			i("contact_param_decode", contactParamDecode, []string{"nparam"}, "Replace each Contact URI that has the parameter nparam with its decoded value: 1, -1 not base64url."),
			i("contact_param_decode_ruri", contactParamDecodeRURI, []string{"nparam"}, "Replace the R-URI with the decoded value of its parameter nparam: 1 (also without it), -1 error."),
			i("contact_param_rm", contactParamRm, []string{"nparam"}, "Remove the parameter nparam from each Contact URI: 1."),
			i("hdr_date_check", hdrDateCheck, []string{"tdiff"}, "1 if the Date header is at most tdiff seconds old, -4 older, -1 no or bad Date."),
			i("cmp_uri", cmpURIs, []string{"uri1", "uri2"}, "1 if the URIs match (RFC 3261 19.1.4), -1 if not, -2 if one does not parse."),
			i("cmp_aor", cmpAoRs, []string{"uri1", "uri2"}, "1 if the URIs' user, host and port match, -1 if not, -2 if one does not parse."),
			i("cmp_hdr_name", cmpHdrNames, []string{"hname1", "hname2"}, "1 if the header names are the same header (compact forms too), -1 if not, -2 error."),
			i("is_gruu", isGRUU, nil, "1 if the R-URI has a gr parameter with a value, 2 without, -1 none."),
			i("add_uri_param", addURIParam, []string{"param"}, "Append ;param to the R-URI: 1, -1 error."),
		}}},
	}
}

// setSeparator is contact_flds_separator: its first character (an empty
// value keeps '*', as Kamailio).
func (m *Module) setSeparator(_ *ksr.Setup, st config.Stmt) error {
	if v := st.Value.String(); v != "" {
		m.separator = v[0]
	}
	return nil
}

func hasTotag(e *ksr.Env) int {
	m := e.Msg.SIP()
	if m == nil {
		return -1
	}
	to := m.To()
	if to == nil {
		e.D.Log.Error("no To")
		return -1
	}
	if tag, _ := to.Params.Get("tag"); tag != "" {
		return 1
	}
	return -1
}

func isRequest(e *ksr.Env) int {
	if e.Msg.Request() != nil {
		return 1
	}
	return -1
}

func isReply(e *ksr.Env) int {
	if e.Msg != nil && e.Msg.Res != nil {
		return 1
	}
	return -1
}

func isFirstHop(e *ksr.Env) int { return firstHop(e, 0) }

func (m *Module) isFirstHopMode(e *ksr.Env, mode int) int { return firstHop(e, mode) }

// firstHop is is_first_hop_mode.
func firstHop(e *ksr.Env, mode int) int {
	if r := e.Msg.Request(); r != nil {
		if len(r.GetHeaders("via")) > 1 { // sipgo splits a line of several
			return -1
		}
		return 1
	}
	if e.Msg == nil || e.Msg.Res == nil {
		return -1
	}
	res := e.Msg.Res
	rrs := res.Msg.GetHeaders("record-route")
	if len(rrs) == 0 {
		return 1
	}
	rr, ok := rrs[0].(*sip.RecordRouteHeader)
	if !ok {
		return -1
	}
	host := rr.Address.Host
	var ip netip.Addr
	if mode == 0 {
		a, err := netip.ParseAddr(strings.Trim(host, "[]"))
		if err != nil {
			return -1
		}
		ip = a
	}
	transport, hasTransport := rr.Address.UriParams.Get("transport")
	if !checkSelf(e, host, rr.Address.Port) {
		return -1
	}
	if mode == 0 && res.Src.IsValid() && ip.Unmap() == res.Src.Addr().Unmap() &&
		(int(res.Src.Port()) == rr.Address.Port || (rr.Address.Port == 0 && res.Src.Port() == 5060)) {
		proto := ""
		if res.Listener != nil {
			proto = res.Listener.Proto
		}
		if (hasTransport && strings.EqualFold(transport, proto)) || (!hasTransport && proto == "udp") {
			return -1 // a loop
		}
	}
	return 1
}

// checkSelf is Kamailio's check_self: host is one of our addresses or
// aliases, on port (0: any of our ports).
func checkSelf(e *ksr.Env, host string, port int) bool {
	host = strings.Trim(host, "[]")
	for _, a := range e.D.Aliases {
		if strings.EqualFold(a, host) {
			return true
		}
	}
	if e.D.Myself == nil {
		return false
	}
	for _, ap := range e.D.Myself() {
		if ap.Addr().String() != host && !(host == e.D.Hostname && host != "") {
			continue
		}
		if port == 0 || port == int(ap.Port()) {
			return true
		}
	}
	return false
}

func isURI(e *ksr.Env, s string) int {
	if _, ok := ParseURI(s); !ok {
		return -1
	}
	return 1
}

// isUser is ki_is_user: without authorized credentials (kemi has no auth
// module to authorize them) it logs and fails, as Kamailio does.
func isUser(e *ksr.Env, user string) int {
	e.D.Log.Error("no authorized credentials found (error in scripts)")
	return -1
}

// ruri returns the current R-URI as text, and false for a reply.
func ruri(e *ksr.Env) (string, bool) {
	r := e.Msg.Request()
	if r == nil {
		return "", false
	}
	return r.Recipient.String(), true
}

// ruriParsed is parse_sip_msg_uri.
func ruriParsed(e *ksr.Env) (*URI, string, bool) {
	s, ok := ruri(e)
	if !ok {
		e.D.Log.Error("ruri parsing failed")
		return nil, "", false
	}
	u, ok := ParseURI(s)
	if !ok {
		e.D.Log.Error("ruri parsing failed", "uri", s)
		return nil, s, false
	}
	return u, s, true
}

// uriParamValue is ki_uri_param_value: the first parameter named name
// (case-sensitive) decides.
func uriParamValue(e *ksr.Env, name, value string) int { return paramValue(e, name, &value) }

func uriParam(e *ksr.Env, name string) int { return paramValue(e, name, nil) }

func paramValue(e *ksr.Env, name string, value *string) int {
	u, _, ok := ruriParsed(e)
	if !ok {
		return -1
	}
	for _, p := range splitParams(u.Params) {
		if p.name != name {
			continue
		}
		if value == nil {
			if p.value == "" {
				return 1
			}
			return -1
		}
		if p.value == *value {
			return 1
		}
		return -1
	}
	return -1
}

func uriParamAny(e *ksr.Env, name string) int {
	u, _, ok := ruriParsed(e)
	if !ok {
		return -1
	}
	if _, ok := u.Param(name); ok {
		return 1
	}
	return -1
}

// uriParamRm is ki_uri_param_rm: the first parameter named name (any
// case) goes, from the ';' before it to the end of its value.
func uriParamRm(e *ksr.Env, name string) int {
	u, s, ok := ruriParsed(e)
	if !ok {
		return -1
	}
	if u.Params == "" {
		return 1
	}
	base := strings.Index(s, ";"+u.Params) + 1
	if u.Type == sipURI || u.Type == sipsURI {
		// the params of the host part: after the last '@'
		at := strings.LastIndexByte(s, '@')
		if i := strings.Index(s[at+1:], ";"+u.Params); i >= 0 {
			base = at + 1 + i + 1
		}
	}
	for _, p := range splitParams(u.Params) {
		if !strings.EqualFold(p.name, name) {
			continue
		}
		nu := s[:base+p.start-1] + s[base+p.end:]
		if !e.SetPVString("$ru", nu) {
			return -1
		}
		return 1
	}
	return 1
}

// addURIParam is ki_add_uri_param. With URI headers, Kamailio 5.6.3
// rebuilds the URI wrongly (it loses the user and the ';' before the
// parameters); kemi puts the parameter before the headers.
func addURIParam(e *ksr.Env, param string) int {
	if param == "" {
		return 1
	}
	u, s, ok := ruriParsed(e)
	if !ok {
		return -1
	}
	nu := s + ";" + param
	if u.Headers != "" {
		q := strings.LastIndexByte(s, '?')
		nu = s[:q] + ";" + param + s[q:]
	}
	if !e.SetPVString("$ru", nu) {
		return -1
	}
	return 1
}

func isGRUU(e *ksr.Env) int {
	u, _, ok := ruriParsed(e)
	if !ok {
		return -1
	}
	v, ok := u.Param("gr")
	switch {
	case !ok:
		return -1
	case v != "":
		return 1
	}
	return 2
}

func isTelNumber(e *ksr.Env, s string) int {
	if s == "" {
		return -2
	}
	i := 0
	if s[0] == '+' {
		if len(s) < 2 || s[1] < '1' || s[1] > '9' {
			return -2
		}
		i = 2
	}
	for ; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -2
		}
	}
	return 1
}

func isNumeric(e *ksr.Env, s string) int {
	if s == "" {
		return -2
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return -2
		}
	}
	return 1
}

func alnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func isAlphanum(e *ksr.Env, s string) int { return isAlphanumex(e, s, "") }

func isAlphanumex(e *ksr.Env, s, eset string) int {
	if s == "" {
		return -2
	}
	for i := 0; i < len(s); i++ {
		if !alnum(s[i]) && strings.IndexByte(eset, s[i]) < 0 {
			return -3
		}
	}
	return 1
}

// optionsReply is ki_opt_reply: only for an OPTIONS whose R-URI has no
// user; 200 OK through sl's send_reply (the transaction if there is one)
// with the four headers, even when their values are empty.
func (m *Module) optionsReply(e *ksr.Env) int {
	r := e.Msg.Request()
	if r == nil || r.Method != sip.OPTIONS {
		e.D.Log.Error("called for non-OPTIONS request")
		return -1
	}
	u, _, ok := ruriParsed(e)
	if !ok {
		return -1
	}
	if u.User != "" {
		e.D.Log.Error("ruri contains username")
		return -1
	}
	hdrs := []sip.Header{
		sip.NewHeader("Accept", m.accept),
		sip.NewHeader("Accept-Encoding", m.acceptEnc),
		sip.NewHeader("Accept-Language", m.acceptLang),
		sip.NewHeader("Supported", m.supported),
	}
	return e.ReplyWith(200, "OK", hdrs, false)
}

// hdrDateCheck is ki_hdr_date_check.
func hdrDateCheck(e *ksr.Env, tdiff int) int {
	m := e.Msg.SIP()
	if m == nil {
		return -1
	}
	hs := m.GetHeaders("date")
	if len(hs) == 0 {
		e.D.Log.Error("Date header field is not found")
		return -1
	}
	t, err := time.Parse(time.RFC1123, strings.TrimSpace(hs[0].Value()))
	if err != nil || !strings.HasSuffix(strings.TrimSpace(hs[0].Value()), "GMT") {
		e.D.Log.Error("failed parsing DATE body")
		return -1
	}
	if e.D.Now().Unix() > t.Unix()+int64(tdiff) {
		e.D.Log.Error("outdated date header value")
		return -4
	}
	return 1
}

// cmpRet maps a Kamailio comparison (0 match, >0 no match, <0 error) to
// the KEMI result: 1, -1, -2.
func cmpRet(r int) int {
	switch {
	case r == 0:
		return 1
	case r > 0:
		return -1
	}
	return -2
}

func cmpURIs(e *ksr.Env, s1, s2 string) int {
	u1, ok1 := ParseURI(s1)
	u2, ok2 := ParseURI(s2)
	if !ok1 || !ok2 {
		return -2
	}
	return cmpRet(cmpURI(u1, u2))
}

func cmpAoRs(e *ksr.Env, s1, s2 string) int {
	u1, ok1 := ParseURI(s1)
	u2, ok2 := ParseURI(s2)
	if !ok1 || !ok2 {
		return -2
	}
	return cmpRet(cmpAoR(u1, u2))
}

func cmpHdrNames(e *ksr.Env, a, b string) int { return cmpRet(cmpHdrName(a, b)) }
