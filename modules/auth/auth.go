// Package auth is Kamailio's auth module in kemi: digest challenges
// (KSR.auth.auth_challenge), credentials (has_credentials,
// consume_credentials), the nonce (its generation with secret and
// nonce_expire, its check), and the digest check that auth_db uses
// through Module.Check, with the return codes of auth/api.h at 5.6.3.
//
// The nonce has Kamailio's layout: base64 of the expiry and the issue
// time (4 bytes each, big-endian Unix seconds) and the MD5 of those 8
// bytes and secret. Without a secret modparam one is drawn at start, as
// Kamailio does, so nonces do not outlive a restart.
//
// Concurrency: a Module is configured by one goroutine; afterwards it is
// read-only, and its exports run on any worker. Which credentials a
// request authorized is per message (ksr.Local holds the VM's last one).
package auth

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/config"
	"kemi/ksr"
)

// Return codes to the script (auth/api.h auth_cfg_result).
const (
	UserMismatch    = -8
	NonceReused     = -6
	NoCredentials   = -5
	StaleNonce      = -4
	UserUnknown     = -3
	InvalidPassword = -2
	Error           = -1
	OK              = 1
)

// Settings are the module's parameters.
type Settings struct {
	Secret      string
	NonceExpire int // seconds
	MaxDrift    int // nonce_auth_max_drift, seconds
	Algorithm   string
}

// Module is one configuration's auth.
type Module struct {
	set    Settings
	local  ksr.Local
	secret []byte
}

var _ ksr.Provisioner = (*Module)(nil)

// New returns an auth module with Kamailio's defaults.
func New() *Module { return &Module{set: Settings{NonceExpire: 300, MaxDrift: 3}} }

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	num := func(dst *int) func(*ksr.Setup, config.Stmt) error {
		return ksr.IntSetting("auth", dst, 0, math.MaxInt32)
	}
	return ksr.ModuleInfo{
		Name: "auth",
		Doc:  "digest authentication: challenges, nonces, credentials checks",
		Params: []ksr.Param{
			{Name: "secret", Set: func(_ *ksr.Setup, st config.Stmt) error { m.set.Secret = st.Value.String(); return nil }},
			{Name: "nonce_expire", Set: num(&m.set.NonceExpire)},
			{Name: "nonce_auth_max_drift", Set: num(&m.set.MaxDrift)},
			{Name: "algorithm", Set: func(_ *ksr.Setup, st config.Stmt) error {
				v := st.Value.String()
				if v != "" && !strings.EqualFold(v, "MD5") {
					return config.Errorf(st.Pos, "auth algorithm: %q is not supported by kemi (MD5 only)", v)
				}
				m.set.Algorithm = v
				return nil
			}},
		},
		// Kamailio 5.6.3's other auth parameters: nonce counting and
		// one-time nonces (off by default there too), auth_extra_checks,
		// custom challenge header names and Authentication-Info.
		Ignored: []string{"protect_contacts", "challenge_attr", "proxy_challenge_header", "www_challenge_header", "qop",
			"auth_checks_register", "auth_checks_no_dlg", "auth_checks_in_dlg", "nonce_count", "nc_array_size",
			"nc_array_order", "one_time_nonce", "otn_in_flight_no", "otn_in_flight_order", "nid_pool_no",
			"force_stateless_reply", "realm_prefix", "use_domain", "add_authinfo_hdr"},
		Exports: []ksr.Submodule{{Name: "auth", Funcs: []ksr.Export{
			{Name: "auth_challenge", Func: m.challenge, Ret: ksr.Int, Args: []string{"realm", "flags"},
				Doc: "Reply 401 (REGISTER) or 407 with a digest challenge; flags 1 qop=auth, 2 qop=auth-int, 16 stale. 1 sent, -2 error, -3 reply failed."},
			{Name: "has_credentials", Func: m.hasCredentials, Ret: ksr.Int, Args: []string{"srealm"},
				Doc: "1 when the request has credentials for the realm, else -1."},
			{Name: "pv_auth_check", Func: m.pvAuthCheck, Ret: ksr.Int, Args: []string{"srealm", "spasswd", "vflags", "vchecks"},
				Doc: "auth_check() against the given password (flags 1: it is the HA1); checks 1: the user must be the From (To) user."},
			{Name: "consume_credentials", Func: m.consume, Ret: ksr.Int,
				Doc: "Remove the credentials a successful check authorized from the request: 1, or -1 when none."},
		}}},
	}
}

// Provision draws a secret when the configuration sets none.
func (m *Module) Provision(h ksr.Host) error {
	m.local = h.Deps().NewLocal()
	if m.set.Secret != "" {
		m.secret = []byte(m.set.Secret)
		return nil
	}
	m.secret = make([]byte, 32)
	_, err := rand.Read(m.secret)
	return err
}

// Nonce returns a new nonce issued at now (Unix seconds).
func (m *Module) Nonce(now int64) string {
	var b [24]byte
	binary.BigEndian.PutUint32(b[0:], uint32(now+int64(m.set.NonceExpire)))
	binary.BigEndian.PutUint32(b[4:], uint32(now))
	sum := md5.Sum(append(append([]byte(nil), b[:8]...), m.secret...))
	copy(b[8:], sum[:])
	return base64.StdEncoding.EncodeToString(b[:])
}

// checkNonce is check_nonce: 0 good, 4 stale (expired, or issued in the
// future beyond nonce_auth_max_drift), 2 forged or malformed.
func (m *Module) checkNonce(nonce string, now int64) int {
	// A valid nonce is 32 characters (24 bytes): decoded on the stack.
	var raw [48]byte
	var b []byte
	if base64.StdEncoding.DecodedLen(len(nonce)) <= len(raw) {
		n, err := base64.StdEncoding.Decode(raw[:], []byte(nonce))
		if err != nil {
			return 2
		}
		b = raw[:n]
	} else {
		var err error
		if b, err = base64.StdEncoding.DecodeString(nonce); err != nil {
			return 2
		}
	}
	if len(b) != 24 {
		return 2
	}
	var buf [128]byte
	sum := md5.Sum(append(append(buf[:0], b[:8]...), m.secret...))
	if string(sum[:]) != string(b[8:]) {
		return 2
	}
	exp, since := int64(binary.BigEndian.Uint32(b[0:])), int64(binary.BigEndian.Uint32(b[4:]))
	if since > now && since-now > int64(m.set.MaxDrift) {
		return 4
	}
	if exp < now {
		return 4
	}
	return 0
}

// realmOf is the realm used when the script gives none: the To host of
// a REGISTER, else the From host.
func realmOf(e *ksr.Env) string {
	req := e.Msg.Req.Msg
	if req.Method == sip.REGISTER {
		if to := req.To(); to != nil {
			return to.Address.Host
		}
	} else if from := req.From(); from != nil {
		return from.Address.Host
	}
	return ""
}

func (m *Module) challenge(e *ksr.Env, realm string, flags int) int {
	if e.Msg == nil || e.Msg.Req == nil {
		return -2
	}
	if realm == "" {
		realm = realmOf(e)
	}
	name, code, reason := "Proxy-Authenticate", 407, "Proxy Authentication Required"
	if e.Msg.Req.Msg.Method == sip.REGISTER {
		name, code, reason = "WWW-Authenticate", 401, "Unauthorized"
	}
	v := `Digest realm="` + realm + `", nonce="` + m.Nonce(e.D.Now().Unix()) + `"`
	switch {
	case flags&2 != 0:
		v += `, qop="auth-int"`
	case flags&1 != 0:
		v += `, qop="auth"`
	}
	if flags&16 != 0 {
		v += ", stale=true"
	}
	if m.set.Algorithm != "" {
		v += ", algorithm=" + m.set.Algorithm
	}
	if e.ReplyWith(code, reason, []sip.Header{sip.NewHeader(name, v)}, false) < 0 {
		return -3
	}
	return 1
}

// Cred is a parsed digest credentials header: its parameters (the
// last of a repeated one), substrings of the header's value.
type Cred struct {
	Header sip.Header

	Username, Realm, Nonce, URI, Response, Algorithm, QOP, NC, CNonce string
}

// ParseCred reads "Digest k=v, k="v", ..." (nil when not Digest).
func ParseCred(h sip.Header) *Cred {
	c := new(Cred)
	if !parseCred(h, c) {
		return nil
	}
	return c
}

// parseCred is ParseCred into c: false when h is not Digest credentials.
// Parameter names are matched in any case; other parameters are skipped.
func parseCred(h sip.Header, c *Cred) bool {
	v := strings.TrimSpace(h.Value())
	if len(v) < 7 || !asciiEqualFold(v[:6], "digest") {
		return false
	}
	*c = Cred{Header: h}
	rest := v[6:]
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t,")
		k, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.TrimSpace(k)
		after = strings.TrimLeft(after, " \t")
		var val string
		if strings.HasPrefix(after, `"`) {
			end := strings.IndexByte(after[1:], '"')
			if end < 0 {
				return false
			}
			val, rest = after[1:1+end], after[2+end:]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			val = strings.TrimSpace(val)
		}
		if f := c.field(k); f != nil {
			*f = val
		}
	}
	return true
}

// field is the parameter k's field, nil for one the check does not use.
func (c *Cred) field(k string) *string {
	switch len(k) {
	case 2:
		if asciiEqualFold(k, "nc") {
			return &c.NC
		}
	case 3:
		switch {
		case asciiEqualFold(k, "uri"):
			return &c.URI
		case asciiEqualFold(k, "qop"):
			return &c.QOP
		}
	case 5:
		switch {
		case asciiEqualFold(k, "realm"):
			return &c.Realm
		case asciiEqualFold(k, "nonce"):
			return &c.Nonce
		}
	case 6:
		if asciiEqualFold(k, "cnonce") {
			return &c.CNonce
		}
	case 8:
		switch {
		case asciiEqualFold(k, "username"):
			return &c.Username
		case asciiEqualFold(k, "response"):
			return &c.Response
		}
	case 9:
		if asciiEqualFold(k, "algorithm") {
			return &c.Algorithm
		}
	}
	return nil
}

// asciiEqualFold is strings.EqualFold for ASCII letters only, as
// sip.HeaderToLower (and so GetHeaders) compares names.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// headerName is the credentials header a request carries: Authorization
// for REGISTER, Proxy-Authorization for the others.
func headerName(e *ksr.Env) string {
	if e.Msg.Req.Msg.Method == sip.REGISTER {
		return "Authorization"
	}
	return "Proxy-Authorization"
}

// find is find_credentials: c becomes the first Digest credentials for
// realm among the name headers (false: none).
func find(e *ksr.Env, name, realm string, c *Cred) bool {
	for _, h := range e.Msg.Req.Msg.Headers() {
		if asciiEqualFold(h.Name(), name) && parseCred(h, c) && c.Realm == realm {
			return true
		}
	}
	return false
}

func (m *Module) hasCredentials(e *ksr.Env, realm string) int {
	if e.Msg == nil || e.Msg.Req == nil {
		return -1
	}
	var c Cred
	for _, n := range []string{"Authorization", "Proxy-Authorization"} {
		if find(e, n, realm, &c) {
			return 1
		}
	}
	return -1
}

// authorized is the VM's last authorized credentials and their message.
type authorized struct {
	msg *ksr.Msg
	hdr sip.Header
}

func (m *Module) consume(e *ksr.Env) int {
	a := ksr.LocalOf[authorized](e, m.local)
	if e.Msg == nil || e.Msg.Req == nil || a.msg != e.Msg || a.hdr == nil {
		return -1
	}
	req := e.Msg.Req.Msg
	name := a.hdr.Name()
	hs := req.GetHeaders(name)
	req.RemoveHeader(name)
	for _, h := range hs {
		if h != a.hdr {
			req.AppendHeader(h)
		}
	}
	a.hdr = nil
	return 1
}

// HA1 is MD5(user:realm:password) in hex.
func HA1(user, realm, password string) string {
	var h [32]byte
	digestHex(&h, user, realm, password)
	return string(h[:])
}

// digestHex writes into dst the MD5, in lowercase hex, of parts joined
// by ':' (a digest's HA1, HA2 or response), without allocating for
// the usual sizes.
func digestHex(dst *[32]byte, parts ...string) {
	var buf [256]byte
	b := buf[:0]
	for i, p := range parts {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, p...)
	}
	sum := md5.Sum(b)
	hex.Encode(dst[:], sum[:])
}

// Lookup finds a user's HA1 (auth_db's subscriber table): found false
// for an unknown user, err for a database error.
type Lookup func(user, realm string) (ha1 string, found bool, err error)

// Check is digest_authenticate for auth_db's auth_check: the request's
// credentials for realm (the From or To host when empty) checked against
// the HA1 that lookup gives, with auth_check's flags (1: the From user,
// To user for REGISTER and PUBLISH, must be the authentication user; 2:
// not for INVITE, BYE, PRACK, UPDATE and MESSAGE). It returns one of the
// codes above.
func (m *Module) Check(e *ksr.Env, realm string, flags int, useDomain bool, lookup Lookup) int {
	if e.Msg == nil || e.Msg.Req == nil {
		return Error
	}
	req := e.Msg.Req.Msg
	switch req.Method {
	case sip.ACK, sip.CANCEL, sip.PRACK:
		return OK
	}
	if realm == "" {
		realm = realmOf(e)
	}
	var c Cred
	if !find(e, headerName(e), realm, &c) {
		return NoCredentials
	}
	// pre_auth marks the credentials before checking them: consume
	// removes them whatever the check says.
	a := ksr.LocalOf[authorized](e, m.local)
	a.msg, a.hdr = e.Msg, c.Header
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" ||
		(c.QOP != "" && (c.NC == "" || c.CNonce == "")) {
		return Error // BAD_CREDENTIALS
	}
	if alg := c.Algorithm; alg != "" && !strings.EqualFold(alg, "MD5") && !strings.EqualFold(alg, "MD5-sess") {
		return Error
	}
	switch m.checkNonce(c.Nonce, e.D.Now().Unix()) {
	case 0:
	case 4:
		return StaleNonce
	default:
		return Error // NOT_AUTHENTICATED
	}
	ha1, found, err := lookup(c.Username, realm)
	if err != nil {
		// A lost database connection is logged once where it is found
		// (kdb); each failed lookup is only a debug line then.
		var r interface{ Reported() bool }
		if errors.As(err, &r) && r.Reported() {
			e.D.Log.Debug("auth: credentials lookup failed", "user", c.Username, "error", err)
		} else {
			e.D.Log.Error("auth: credentials lookup failed", "user", c.Username, "error", err)
		}
		return Error
	}
	if !found {
		return UserUnknown
	}
	var sess, ha2, want [32]byte
	if strings.EqualFold(c.Algorithm, "MD5-sess") {
		digestHex(&sess, ha1, c.Nonce, c.CNonce)
		ha1 = string(sess[:])
	}
	digestHex(&ha2, string(req.Method), c.URI)
	if c.QOP != "" {
		digestHex(&want, ha1, c.Nonce, c.NC, c.CNonce, c.QOP, string(ha2[:]))
	} else {
		digestHex(&want, ha1, c.Nonce, string(ha2[:]))
	}
	if !strings.EqualFold(string(want[:]), c.Response) {
		return InvalidPassword
	}
	if flags&1 != 0 {
		return checkID(req, c.Username, flags, useDomain)
	}
	return OK
}

// checkID is auth_check's AUTH_CHECK_ID_F part (auth_db/authorize.c).
func checkID(req *sip.Request, user string, flags int, useDomain bool) int {
	from := req.From()
	if from == nil {
		return Error
	}
	furi := &from.Address
	uri := furi
	regPub := req.Method == sip.REGISTER || req.Method == sip.PUBLISH
	var turi *sip.Uri
	if regPub {
		to := req.To()
		if to == nil {
			return Error
		}
		turi = &to.Address
		uri = turi
	}
	skip := flags&2 != 0
	switch req.Method {
	case sip.INVITE, sip.BYE, sip.PRACK, sip.UPDATE, sip.MESSAGE:
	default:
		skip = false
	}
	if !skip && user != uri.User {
		return UserMismatch
	}
	if regPub {
		if furi.User != turi.User || (useDomain && furi.Host != turi.Host) {
			return UserMismatch
		}
		if req.Method == sip.PUBLISH {
			r := &req.Recipient
			if furi.User != r.User || (useDomain && furi.Host != r.Host) {
				return UserMismatch
			}
		}
	}
	return OK
}

// pvAuthCheck is pv_auth_check: the request's credentials checked against
// passwd (the HA1 itself with flags 1), checks 1 as auth_check's flags 1.
// Flags 2, 4 and 8 (challenge AVPs) are not supported.
func (m *Module) pvAuthCheck(e *ksr.Env, realm, passwd string, flags, checks int) int {
	return m.Check(e, realm, checks&1, false, func(user, realm string) (string, bool, error) {
		if flags&1 != 0 {
			return passwd, true, nil
		}
		return HA1(user, realm, passwd), true, nil
	})
}
