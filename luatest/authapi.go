package luatest

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"
)

// Helpers for the flows scripts handle most: answering a digest challenge
// (res:authorize, t.digest) and requests inside a dialog (res:in_dialog).
// kemi has no auth or registrar module yet: a script under test can only
// challenge by hand (KSR.hdr.append_to_reply and a 401), and nothing checks
// the credentials; these helpers build what a UA sends, so the tests are
// ready for auth_db/registrar.

// Challenge is a parsed WWW-Authenticate or Proxy-Authenticate value.
type Challenge struct {
	Realm, Nonce, Opaque, Algorithm string
	Qop                             []string // offered qop values
}

// ParseChallenge reads `Digest realm="r", nonce="n", qop="auth,auth-int", ...`.
func ParseChallenge(v string) (Challenge, error) {
	var c Challenge
	scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
	if !strings.EqualFold(scheme, "Digest") {
		return c, fmt.Errorf("challenge %q: not a Digest challenge", v)
	}
	for _, p := range splitParams(rest) {
		k, val, _ := strings.Cut(p, "=")
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "realm":
			c.Realm = val
		case "nonce":
			c.Nonce = val
		case "opaque":
			c.Opaque = val
		case "algorithm":
			c.Algorithm = val
		case "qop":
			for _, q := range strings.Split(val, ",") {
				if q = strings.TrimSpace(q); q != "" {
					c.Qop = append(c.Qop, q)
				}
			}
		}
	}
	if c.Nonce == "" {
		return c, fmt.Errorf("challenge %q: no nonce", v)
	}
	return c, nil
}

// splitParams splits on commas outside quotes.
func splitParams(s string) []string {
	var out []string
	quoted, start := false, 0
	for i, r := range s {
		switch r {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if t := strings.TrimSpace(s[start:]); t != "" {
		out = append(out, t)
	}
	return out
}

// Credentials answer a challenge.
type Credentials struct {
	Username, Password string
	Method, URI        string
	CNonce             string // default "kemitest"
	NC                 int    // default 1
}

// Authorization computes the value of an Authorization (or
// Proxy-Authorization) header answering c (RFC 2617, RFC 7616's SHA-256):
// qop=auth when offered, else the RFC 2069 form.
func Authorization(c Challenge, cr Credentials) (string, error) {
	var h func() hash.Hash
	alg := strings.ToUpper(c.Algorithm)
	switch alg {
	case "", "MD5", "MD5-SESS":
		h = md5.New
	case "SHA-256", "SHA-256-SESS":
		h = sha256.New
	default:
		return "", fmt.Errorf("digest algorithm %q: MD5 or SHA-256", c.Algorithm)
	}
	sum := func(s string) string {
		d := h()
		d.Write([]byte(s))
		return hex.EncodeToString(d.Sum(nil))
	}
	if cr.CNonce == "" {
		cr.CNonce = "kemitest"
	}
	if cr.NC == 0 {
		cr.NC = 1
	}
	nc := fmt.Sprintf("%08x", cr.NC)
	ha1 := sum(cr.Username + ":" + c.Realm + ":" + cr.Password)
	if strings.HasSuffix(alg, "-SESS") {
		ha1 = sum(ha1 + ":" + c.Nonce + ":" + cr.CNonce)
	}
	ha2 := sum(cr.Method + ":" + cr.URI)
	qop := ""
	for _, q := range c.Qop {
		if q == "auth" {
			qop = "auth"
		}
	}
	var resp string
	if qop != "" {
		resp = sum(ha1 + ":" + c.Nonce + ":" + nc + ":" + cr.CNonce + ":" + qop + ":" + ha2)
	} else {
		resp = sum(ha1 + ":" + c.Nonce + ":" + ha2)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s"`, cr.Username, c.Realm, c.Nonce, cr.URI, resp)
	if c.Algorithm != "" {
		fmt.Fprintf(&b, ", algorithm=%s", c.Algorithm)
	}
	if c.Opaque != "" {
		fmt.Fprintf(&b, `, opaque="%s"`, c.Opaque)
	}
	if qop != "" {
		fmt.Fprintf(&b, `, qop=%s, nc=%s, cnonce="%s"`, qop, nc, cr.CNonce)
	}
	return b.String(), nil
}

// credentials reads {username = ..., password = ..., method = ..., uri =
// ..., cnonce = ..., nc = ...} from argument n.
func credentials(L *lua.LState, n int) Credentials {
	t := L.CheckTable(n)
	str := func(k string) string {
		if v := t.RawGetString(k); v != lua.LNil {
			return v.String()
		}
		return ""
	}
	cr := Credentials{Username: str("username"), Password: str("password"), Method: str("method"), URI: str("uri"), CNonce: str("cnonce")}
	if v, ok := t.RawGetString("nc").(lua.LNumber); ok {
		cr.NC = int(v)
	}
	if cr.Username == "" {
		L.ArgError(n, "username is required")
	}
	return cr
}

// t.digest(challenge, {username, password, method, uri [, cnonce, nc]}):
// the Authorization value answering a WWW-Authenticate/Proxy-Authenticate.
func (f *fileRun) lDigest(L *lua.LState) int {
	c, err := ParseChallenge(L.CheckString(1))
	if err != nil {
		L.RaiseError("t.digest: %v", err)
	}
	cr := credentials(L, 2)
	if cr.Method == "" || cr.URI == "" {
		L.ArgError(2, "method and uri are required")
	}
	v, err := Authorization(c, cr)
	if err != nil {
		L.RaiseError("t.digest: %v", err)
	}
	L.Push(lua.LString(v))
	return 1
}

// rawRequest is a request's text split into its start line, headers and
// body, for the helpers that resend it changed.
type rawRequest struct {
	method, uri string
	hdrs        []string // "Name: value"
	body        string
}

func splitRequest(raw string) rawRequest {
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	parts := strings.Fields(lines[0])
	r := rawRequest{hdrs: lines[1:], body: body}
	if len(parts) >= 2 {
		r.method, r.uri = parts[0], parts[1]
	}
	return r
}

func hdrName(h string) string {
	n, _, _ := strings.Cut(h, ":")
	return strings.TrimSpace(n)
}

func (r *rawRequest) get(name string) string {
	for _, h := range r.hdrs {
		if strings.EqualFold(hdrName(h), name) {
			_, v, _ := strings.Cut(h, ":")
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func (r *rawRequest) drop(names ...string) {
	out := r.hdrs[:0]
	for _, h := range r.hdrs {
		keep := true
		for _, n := range names {
			if strings.EqualFold(hdrName(h), n) {
				keep = false
			}
		}
		if keep {
			out = append(out, h)
		}
	}
	r.hdrs = out
}

func (r *rawRequest) set(name, value string) {
	r.drop(name)
	r.hdrs = append(r.hdrs, name+": "+value)
}

func (r *rawRequest) String() string {
	r.drop("Content-Length")
	hdrs := append(append([]string(nil), r.hdrs...), "Content-Length: "+strconv.Itoa(len(r.body)))
	return r.method + " " + r.uri + " SIP/2.0\r\n" + strings.Join(hdrs, "\r\n") + "\r\n\r\n" + r.body
}

// newBranch gives the request a fresh Via branch (a new transaction).
func (f *fileRun) newBranch(r *rawRequest) {
	f.seq++
	via := r.get("Via")
	if i := strings.Index(via, "branch="); i >= 0 {
		end := strings.IndexAny(via[i:], ";,")
		rest := ""
		if end >= 0 {
			rest = via[i+end:]
		}
		via = via[:i] + "branch=z9hG4bK-kemitest-" + strconv.Itoa(f.seq) + rest
	}
	r.set("Via", via)
}

func cseqOf(r *rawRequest) int {
	n, _ := strconv.Atoi(strings.Fields(r.get("CSeq") + " 0")[0])
	return n
}

// send injects r as the handle h was injected and returns the new handle.
func (f *fileRun) send(L *lua.LState, h *handle, r *rawRequest, what string) int {
	raw := r.String()
	msg, err := parseRaw(raw)
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	out, err := f.eng.Inject(f.ctx, msg, h.opts)
	if err != nil {
		L.RaiseError("%s: %v", what, err)
	}
	ud := f.newHandle(L, out, msg)
	nh := ud.Value.(*handle)
	nh.raw, nh.opts = raw, h.opts
	L.Push(ud)
	return 1
}

// res:authorize{username = ..., password = ... [, cnonce, nc]}: the
// request again (same Call-ID and From tag, CSeq + 1, a new branch) with
// the Authorization (401) or Proxy-Authorization (407) answering the last
// reply's challenge. Returns the new request's handle.
func (f *fileRun) lAuthorize(L *lua.LState) int {
	f.running(L, "authorize")
	h := checkHandle(L)
	cr := credentials(L, 2)
	rs := h.out.Replies()
	if h.raw == "" || len(rs) == 0 {
		L.RaiseError("res:authorize: the request has no reply to answer")
	}
	last := rs[len(rs)-1]
	var chal, answer string
	switch last.StatusCode {
	case 401:
		chal, answer = "WWW-Authenticate", "Authorization"
	case 407:
		chal, answer = "Proxy-Authenticate", "Proxy-Authorization"
	default:
		L.RaiseError("res:authorize: the last reply is %d %s, not a 401 or 407 challenge", last.StatusCode, last.Reason)
	}
	hd := last.GetHeader(chal)
	if hd == nil {
		L.RaiseError("res:authorize: the %d has no %s header", last.StatusCode, chal)
	}
	c, err := ParseChallenge(hd.Value())
	if err != nil {
		L.RaiseError("res:authorize: %v", err)
	}
	r := splitRequest(h.raw)
	if cr.Method == "" {
		cr.Method = r.method
	}
	if cr.URI == "" {
		cr.URI = r.uri
	}
	v, err := Authorization(c, cr)
	if err != nil {
		L.RaiseError("res:authorize: %v", err)
	}
	f.newBranch(&r)
	r.set("CSeq", strconv.Itoa(cseqOf(&r)+1)+" "+r.method)
	r.set(answer, v)
	return f.send(L, h, &r, "res:authorize")
}

// res:in_dialog(method [, {headers = {...}, body = "..."}]): a request
// inside the dialog the last reply established: the R-URI is the reply's
// Contact, the Route set its Record-Route reversed (from the reply to the
// dialog's initial request only: a re-INVITE's reply refreshes the target,
// not the route set), the To carries its tag, the Call-ID and From stay;
// CSeq + 1 (an ACK keeps the INVITE's). A reply without Contact keeps the
// request's R-URI, so res:in_dialog("INVITE"):in_dialog("BYE") works.
// Returns the new request's handle.
func (f *fileRun) lInDialog(L *lua.LState) int {
	f.running(L, "in_dialog")
	h := checkHandle(L)
	method := strings.ToUpper(L.CheckString(2))
	rs := h.out.Replies()
	if h.raw == "" || len(rs) == 0 {
		L.RaiseError("res:in_dialog: the request has no reply: no dialog")
	}
	last := rs[len(rs)-1]
	if last.StatusCode < 200 && method != "CANCEL" {
		L.RaiseError("res:in_dialog: the last reply is provisional (%d): answer the request first", last.StatusCode)
	}
	r := splitRequest(h.raw)
	prevMethod := r.method
	initial := !strings.Contains(r.get("To"), "tag=") // the route set is fixed by the dialog's first request
	if to := last.GetHeader("To"); to != nil {
		r.set("To", to.Value())
	}
	if c := last.GetHeader("Contact"); c != nil {
		v := c.Value()
		if i, j := strings.Index(v, "<"), strings.Index(v, ">"); i >= 0 && j > i {
			v = v[i+1 : j]
		}
		r.uri = v
	}
	if c := last.GetHeader("Contact"); c != nil && initial {
		var routes []string
		for _, rr := range last.GetHeaders("Record-Route") {
			for _, p := range splitParams(rr.Value()) {
				routes = append([]string{p}, routes...)
			}
		}
		r.drop("Route")
		for _, rt := range routes {
			r.hdrs = append(r.hdrs, "Route: "+rt)
		}
	}
	n := cseqOf(&r)
	if method != "ACK" && method != "CANCEL" {
		n++
	}
	r.method = method
	r.set("CSeq", strconv.Itoa(n)+" "+method)
	r.drop("Authorization", "Proxy-Authorization", "Content-Type")
	if method != "INVITE" && method != "UPDATE" && method != "SUBSCRIBE" {
		r.drop("Contact")
	}
	r.body = ""
	if method != "ACK" || prevMethod != "INVITE" || last.StatusCode < 300 {
		f.newBranch(&r) // the ACK of a negative reply belongs to the INVITE's transaction
	}
	if o, ok := L.Get(3).(*lua.LTable); ok {
		extra, err := headerList(o.RawGetString("headers"))
		if err != nil {
			L.RaiseError("res:in_dialog: %v", err)
		}
		for _, hd := range extra {
			r.drop(hdrName(hd))
		}
		r.hdrs = append(r.hdrs, extra...)
		if b := o.RawGetString("body"); b != lua.LNil {
			r.body = b.String()
			if r.get("Content-Type") == "" {
				r.hdrs = append(r.hdrs, "Content-Type: application/sdp")
			}
		}
	}
	return f.send(L, h, &r, "res:in_dialog")
}
