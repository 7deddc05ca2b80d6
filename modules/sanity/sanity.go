// Package sanity is Kamailio's sanity module in kemi: KSR.sanity's
// sanity_check, sanity_check_defaults and sanity_reply, with the
// default_checks, uri_checks, proxy_require and noreply modparams
// (autodrop is accepted and changes nothing, as for Kamailio's
// KEMI functions). The checks, their order, the replies a failed check sends
// (statelessly, as sl_send_reply) and the return codes follow sanity.c and
// sanity_mod.c at 5.6.3:
//
//   - a failed check returns -1, a passed one 1; the KEMI functions do not
//     stop the script, whatever autodrop says (only Kamailio's native cfg
//     functions drop);
//   - with noreply set, a failed check sends nothing and remembers the
//     reply, which sanity_reply sends (500 "Server Sanity Failure" when the
//     last check of this message did not fail);
//   - some failures never reply (missing From, To, Call-ID, CSeq or Via,
//     duplicated ones), as Kamailio marks the message no-reply.
//
// kemi's SIP parser refuses much of what these checks catch before a
// script runs (a missing mandatory header, a bad CSeq, a wrong
// Content-Length on UDP): those requests never reach sanity_check.
//
// Concurrency: the module is configured once; the remembered reply is
// per VM (ksr.Local), as Kamailio's is per process.
package sanity

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/config"
	"kemi/ksr"
	"kemi/modules/siputils"
)

// The checks (msg_checks bits) of sanity_mod.h.
const (
	RURISIPVersion     = 1 << 0
	RURIScheme         = 1 << 1
	RequiredHeaders    = 1 << 2
	ViaSIPVersion      = 1 << 3
	ViaProtocol        = 1 << 4
	CSeqMethod         = 1 << 5
	CSeqValue          = 1 << 6
	CL                 = 1 << 7
	ExpiresValue       = 1 << 8
	ProxyRequire       = 1 << 9
	ParseURIs          = 1 << 10
	CheckDigest        = 1 << 11
	CheckDuptags       = 1 << 12
	CheckAuthorization = 1 << 13
	Via1Header         = 1 << 14

	DefaultChecks = RURISIPVersion | RURIScheme | RequiredHeaders | CSeqMethod | CSeqValue |
		CL | ExpiresValue | ProxyRequire | CheckDigest
)

// The URIs check_parse_uris parses (uri_checks bits).
const (
	URIRURI    = 1 << 0
	URIFrom    = 1 << 1
	URITo      = 1 << 2
	URIContact = 1 << 3

	DefaultURIChecks = URIRURI | URIFrom | URITo
)

// results of the checks (sanity_mod.h).
const (
	passed        = 1
	failed        = 0
	notApplicable = -2
)

// Module is one configuration's sanity.
type Module struct {
	msgChecks, uriChecks int
	proxyRequire         []string
	noreply              bool
	local                ksr.Local
}

// New returns sanity with Kamailio's defaults.
func New() *Module {
	return &Module{msgChecks: DefaultChecks, uriChecks: DefaultURIChecks}
}

// state is one VM's memory of the message being checked: Kamailio's
// _ksr_sanity_info and the message's FL_MSG_NOREPLY flag.
type state struct {
	msg     *ksr.Msg // the message the fields below are about
	code    int
	reason  string
	noReply bool
}

func (s *state) of(m *ksr.Msg) *state {
	if s.msg != m {
		*s = state{msg: m}
	}
	return s
}

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	intp := func(dst *int) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) (err error) {
			*dst, err = config.IntParam(st, "sanity", 0, 1<<31-1)
			return err
		}
	}
	flag := func(dst *bool) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error {
			n, err := config.IntParam(st, "sanity", -1<<31, 1<<31-1)
			*dst = n != 0
			return err
		}
	}
	return ksr.ModuleInfo{
		Name: "sanity",
		Doc:  "SIP message sanity checks",
		Params: []ksr.Param{
			{Name: "default_checks", Set: intp(&m.msgChecks)},
			{Name: "uri_checks", Set: intp(&m.uriChecks)},
			{Name: "proxy_require", Set: m.setProxyRequire},
			{Name: "noreply", Set: flag(&m.noreply)},
		},
		// autodrop only changes Kamailio's native cfg functions: its KEMI
		// ones return -1 on a failure whatever it says, as kemi's do.
		Ignored: []string{"autodrop"},
		Exports: []ksr.Submodule{{Name: "sanity", Funcs: []ksr.Export{
			{Name: "sanity_check", Func: m.check, Ret: ksr.Int, Args: []string{"msg_checks", "uri_checks"},
				Doc: "Run the checks msg_checks (and uri_checks for URI parsing): 1 passed, -1 failed (a reply is sent unless noreply)."},
			{Name: "sanity_check_defaults", Func: m.checkDefaults, Ret: ksr.Int,
				Doc: "sanity_check with the default_checks and uri_checks modparams."},
			{Name: "sanity_reply", Func: m.reply, Ret: ksr.Int,
				Doc: "With noreply set, send the reply of the failed check (500 if none): 1, -1 not sent."},
		}}},
	}
}

// Provision takes the module's per-VM slot.
func (m *Module) Provision(h ksr.Host) error {
	m.local = h.Deps().NewLocal()
	return nil
}

// setProxyRequire is parse_str_list: comma-separated, trimmed.
func (m *Module) setProxyRequire(_ *ksr.Setup, st config.Stmt) error {
	m.proxyRequire = strList(st.Value.String())
	return nil
}

func strList(s string) []string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// ki_sanity_check and ki_sanity_check_defaults: no range check on the
// flags, a failure is -1.
func (m *Module) check(e *ksr.Env, msgChecks, uriChecks int) int {
	if r := m.run(e, msgChecks, uriChecks); r != failed {
		return r
	}
	return -1
}

func (m *Module) checkDefaults(e *ksr.Env) int { return m.check(e, m.msgChecks, m.uriChecks) }

// checker runs the checks on one message.
type checker struct {
	m   *Module
	e   *ksr.Env
	st  *state
	msg sip.Message
	req *sip.Request
}

// fail is sanity_reply(code, reason) followed by SANITY_CHECK_FAILED.
// extra (the 420's Unsupported) joins the message's reply headers first,
// whether a reply is sent now or not, as Kamailio's reply lump does.
func (c *checker) fail(code int, reason string, extra ...sip.Header) int {
	if len(extra) > 0 {
		c.e.Msg.ReplyHdrs = append(c.e.Msg.ReplyHdrs, extra...)
	}
	if c.req == nil || c.req.IsAck() {
		return failed
	}
	if c.m.noreply {
		c.st.code, c.st.reason = code, reason
		return failed
	}
	if !c.st.noReply {
		c.e.ReplyWith(code, reason, nil, true)
	}
	return failed
}

// silent is a failure Kamailio marks no-reply.
func (c *checker) silent() int {
	c.st.noReply = true
	return failed
}

func (m *Module) run(e *ksr.Env, msgChecks, uriChecks int) int {
	msg := e.Msg.SIP()
	if msg == nil {
		return failed
	}
	st := ksr.LocalOf[state](e, m.local).of(e.Msg)
	if m.noreply {
		st.code, st.reason = 0, ""
	}
	c := checker{m: m, e: e, st: st, msg: msg, req: e.Msg.Request()}
	return c.all(msgChecks, uriChecks)
}

// all runs the checks of msgChecks in sanity_check's order; the first
// that does not pass gives the result.
func (c *checker) all(msgChecks, uriChecks int) int {
	on := func(bit int) bool { return msgChecks&bit != 0 }
	r := passed
	switch {
	case on(RURISIPVersion) && c.set(&r, c.ruriSIPVersion()):
	case on(RURIScheme) && c.set(&r, c.ruriScheme()):
	case on(RequiredHeaders) && c.set(&r, c.requiredHeaders()):
	case on(Via1Header) && c.set(&r, c.via1()):
	// ViaSIPVersion and ViaProtocol pass: "a useless check for now" in 5.6.3
	case on(CSeqMethod) && c.set(&r, c.cseqMethod()):
	case on(CSeqValue) && c.set(&r, c.cseqValue()):
	case on(CL) && c.set(&r, c.contentLength()):
	case on(ExpiresValue) && c.set(&r, c.expires()):
	case on(ProxyRequire) && c.set(&r, c.proxyRequire()):
	case on(ParseURIs) && c.set(&r, c.parseURIs(uriChecks)):
	case on(CheckDigest) && c.set(&r, c.checkDigest()):
	case on(CheckAuthorization) && c.set(&r, c.checkAuthorization()):
	case on(CheckDuptags) && c.set(&r, c.duptags()):
	}
	return r
}

// set records a check's result and reports whether it stops the run.
func (c *checker) set(r *int, res int) bool {
	*r = res
	return res != passed
}

func (c *checker) checkDigest() int {
	if c.digest() == passed {
		return passed
	}
	return failed
}

func (c *checker) checkAuthorization() int {
	if r := c.digest(); r == passed || r == notApplicable {
		return passed
	}
	return failed
}

func (c *checker) ruriSIPVersion() int {
	if c.req == nil {
		return passed
	}
	v := c.req.SipVersion
	if v == "" {
		return passed
	}
	i := strings.IndexByte(v, '/')
	if i < 0 {
		return failed
	}
	if v[i+1:] != "2.0" {
		return c.fail(505, "Version Not Supported (R-URI)")
	}
	return passed
}

func (c *checker) ruriOK() bool {
	_, ok := siputils.ParseURI(c.req.Recipient.String())
	return ok
}

func (c *checker) ruriScheme() int {
	if c.req == nil {
		return passed
	}
	if !c.ruriOK() {
		return c.fail(400, "Bad Request URI")
	}
	return passed
}

func (c *checker) requiredHeaders() int {
	if c.msg.From() == nil || c.msg.To() == nil || c.msg.CallID() == nil || c.msg.CSeq() == nil {
		return c.silent()
	}
	for _, n := range []string{"from", "to", "call-id", "cseq"} {
		if len(c.msg.GetHeaders(n)) > 1 {
			return failed // duplicated: no reply, as Kamailio
		}
	}
	return passed
}

func (c *checker) via1() int {
	if v := c.msg.Via(); v == nil || v.Host == "" {
		return c.silent()
	}
	return passed
}

func (c *checker) cseqMethod() int {
	cs := c.msg.CSeq()
	if cs == nil {
		return failed
	}
	if cs.MethodName == "" {
		return c.fail(400, "Missing method in CSeq header")
	}
	if c.req != nil && cs.MethodName != c.req.Method {
		return c.fail(400, "CSeq method does not match request method")
	}
	return passed
}

// cseqValue: kemi's parser keeps only CSeq numbers that fit 32 bits.
func (c *checker) cseqValue() int {
	if c.msg.CSeq() == nil {
		return c.silent()
	}
	return passed
}

func (c *checker) contentLength() int {
	cl := c.msg.ContentLength()
	if cl == nil {
		return passed // "content length header missing": a warning only
	}
	if int(*cl) != len(c.msg.Body()) {
		return c.fail(400, "Content-Length mis-match")
	}
	return passed
}

// validUint is str2valid_uint, with its bound: up to 10 digits, not above
// 4294967296.
func validUint(s string) bool {
	if len(s) > 10 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return len(s) < 10 || s <= "4294967296"
}

func (c *checker) expires() int {
	hs := c.msg.GetHeaders("expires")
	if len(hs) == 0 {
		return passed
	}
	v := strings.TrimSpace(hs[0].Value())
	if v == "" {
		return c.fail(400, "Bad Expires Header")
	}
	if i := strings.IndexAny(v, " \t\r\n"); i >= 0 && len(v) <= 10 {
		v = v[:i]
	}
	if !validUint(v) {
		return c.fail(400, "Expires value is illegal")
	}
	return passed
}

// proxyRequire checks the first Proxy-Require header's option tags
// against the proxy_require modparam (case-sensitive, as Kamailio).
func (c *checker) proxyRequire() int {
	hs := c.msg.GetHeaders("proxy-require")
	if len(hs) == 0 {
		return passed
	}
	for _, tag := range strList(hs[0].Value()) {
		known := false
		for _, p := range c.m.proxyRequire {
			if p == tag {
				known = true
				break
			}
		}
		if !known {
			return c.fail(420, "Bad Proxy Require Extension", sip.NewHeader("Unsupported", tag))
		}
	}
	return passed
}

func (c *checker) parseURIs(checks int) int {
	if checks&URIRURI != 0 && c.req != nil && !c.ruriOK() {
		return c.fail(400, "Bad Request URI")
	}
	if checks&URIFrom != 0 {
		f := c.msg.From()
		if f == nil {
			return c.silent()
		}
		if _, ok := siputils.ParseURI(f.Address.String()); !ok {
			return c.fail(400, "Invalid From Header")
		}
	}
	if checks&URITo != 0 {
		t := c.msg.To()
		if t == nil {
			return c.silent()
		}
		if _, ok := siputils.ParseURI(t.Address.String()); !ok {
			return c.fail(400, "Ivalid To Header") // sic, as Kamailio
		}
	}
	if checks&URIContact != 0 {
		for _, h := range c.msg.GetHeaders("contact") {
			ct, ok := h.(*sip.ContactHeader)
			if !ok {
				return c.fail(400, "Bad Contact Header")
			}
			if ct.Address.Wildcard {
				break
			}
			if _, ok := siputils.ParseURI(ct.Address.String()); !ok {
				return c.fail(400, "Bad Contact URI")
			}
			break // the first Contact only
		}
	}
	return passed
}

// digest is check_digest_only: every Authorization header, then every
// Proxy-Authorization one, must hold Digest credentials with a username,
// realm, nonce, uri and response (cnonce and nc with qop auth/auth-int),
// non-empty username, nonce and response; credentials of another scheme
// are "not applicable".
func (c *checker) digest() int {
	hs := append(c.msg.GetHeaders("authorization"), c.msg.GetHeaders("proxy-authorization")...)
	for _, h := range hs {
		p, ok := digestParams(h.Value())
		if !ok {
			return notApplicable
		}
		if p == nil {
			return c.fail(400, "Bad Auth Header")
		}
		qop := strings.ToLower(p["qop"].v)
		bad := !p["username"].ok || !p["realm"].ok || !p["nonce"].ok || !p["uri"].ok || !p["response"].ok ||
			((qop == "auth" || qop == "auth-int") && (!p["cnonce"].ok || !p["nc"].ok))
		switch {
		case bad:
			return c.fail(400, "Bad Auth Credentials")
		case p["username"].v == "":
			return c.fail(400, "Auth Empty User")
		case p["nonce"].v == "":
			return c.fail(400, "Auth Empty Nonce")
		case p["response"].v == "":
			return c.fail(400, "Auth Empty Response")
		}
	}
	return passed
}

type opt struct {
	v  string
	ok bool
}

// digestParams parses Digest credentials' parameters (names lower case);
// false for another scheme, a nil map for unparsable credentials.
func digestParams(v string) (map[string]opt, bool) {
	v = strings.TrimSpace(v)
	sp := strings.IndexAny(v, " \t")
	if sp < 0 {
		return nil, strings.EqualFold(v, "digest")
	}
	if !strings.EqualFold(v[:sp], "digest") {
		return nil, false
	}
	out := map[string]opt{}
	rest := v[sp:]
	for {
		rest = strings.TrimLeft(rest, " \t,")
		if rest == "" {
			return out, true
		}
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			return nil, true
		}
		name := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t")
		var val string
		if strings.HasPrefix(rest, "\"") {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return nil, true
			}
			val, rest = rest[1:1+end], rest[2+end:]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		out[name] = opt{val, true}
	}
}

func (c *checker) duptags() int {
	count := func(ps sip.HeaderParams) int {
		n := 0
		for _, kv := range ps {
			if strings.EqualFold(kv.K, "tag") {
				n++
			}
		}
		return n
	}
	f, t := c.msg.From(), c.msg.To()
	if f == nil || t == nil {
		return c.silent()
	}
	if count(f.Params) > 1 {
		return c.fail(400, "Many From Tag Params")
	}
	if count(t.Params) > 1 {
		return c.fail(400, "Many To Tag Params")
	}
	return passed
}

// reply is ki_sanity_reply: only with noreply set, only for a request
// other than ACK not marked no-reply.
func (m *Module) reply(e *ksr.Env) int {
	r := e.Msg.Request()
	if r == nil || r.IsAck() || !m.noreply {
		return 1
	}
	st := ksr.LocalOf[state](e, m.local)
	if st.msg == e.Msg && st.noReply {
		return 1
	}
	code, reason := 500, "Server Sanity Failure"
	if st.msg == e.Msg && st.code != 0 && st.reason != "" {
		code, reason = st.code, st.reason
	} else {
		e.D.Log.Info("no sanity reply info set - sending 500")
	}
	if e.ReplyWith(code, reason, nil, true) < 0 {
		return -1
	}
	return 1
}
