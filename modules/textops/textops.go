// Package textops is Kamailio's textops module in kemi: regular-expression
// searches and edits of the message, body and header checks, and string
// helpers, KSR.textops. The functions and their return codes are those of
// textops.c's sr_kemi_textops_exports at 5.6.3; kemi has the subset listed
// in exports (subst_user, subst_hf, remove_hf_exp, the *_str and replace_hdrs* variants, the multipart-body
// functions, filter_body, is_privacy, is_audio_on_hold and regex_substring
// are not there yet).
//
// Regular expressions are POSIX extended ones in Kamailio, compiled with
// REG_ICASE|REG_NEWLINE; kemi compiles them with Go's regexp and "(?im)".
// The message-wide functions (search, replace, subst) work on the message
// as kemi would send it (its first line, headers and body). As for
// KSR.hdr.*, an edit applies to the message at once (Kamailio adds a lump
// applied when the message is sent), so later reads see it.
//
// Concurrency: the module has no settings and no runtime; its exports act
// only on the calling VM's Env and message.
package textops

import (
	"regexp"
	"strings"

	"github.com/emiago/sipgo/sip"

	"kemi/ksr"
	"kemi/sipnet"
)

// Module is the textops module.
type Module struct{}

// New returns the textops module.
func New() *Module { return &Module{} }

// Info describes the module. textops has no modparams in Kamailio 5.6.3.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name:    "textops",
		Doc:     "regular-expression search and edit of the message, body and header checks",
		Exports: []ksr.Submodule{{Name: "textops", Funcs: exports()}},
	}
}

func exports() []ksr.Export {
	re := []string{"sre"}
	return []ksr.Export{
		{Name: "search", Func: search, Ret: ksr.Int, Args: re, Doc: "1 if the message matches the regular expression sre, else -1."},
		{Name: "search_body", Func: searchBody, Ret: ksr.Int, Args: re, Doc: "1 if the body matches sre, -1 if not or no body."},
		{Name: "is_present_hf", Func: isPresentHF, Ret: ksr.Int, Args: []string{"hname"}, Doc: "1 if the message has an hname header, else -1."},
		{Name: "is_present_hf_re", Func: isPresentHFRe, Ret: ksr.Int, Args: re, Doc: "1 if a header name matches sre, else -1."},
		{Name: "remove_hf", Func: removeHF, Ret: ksr.Int, Args: []string{"hname"}, Doc: "Remove every hname header: 1 (also when there was none), -1 error."},
		{Name: "remove_hf_re", Func: removeHFRe, Ret: ksr.Int, Args: re, Doc: "Remove the headers whose name matches sre: 1 some removed, -1 none."},
		{Name: "replace", Func: replace, Ret: ksr.Int, Args: []string{"sre", "sval"}, Doc: "Replace the first match of sre in the message with sval: 1, or -1 no match."},
		{Name: "replace_all", Func: replaceAll, Ret: ksr.Int, Args: []string{"sre", "sval"}, Doc: "Replace every match of sre in the message with sval: 1, or -1 no match."},
		{Name: "replace_body", Func: replaceBody, Ret: ksr.Int, Args: []string{"sre", "sval"}, Doc: "Replace the first match of sre in the body: 1, or -1 no match or no body."},
		{Name: "replace_body_all", Func: replaceBodyAll, Ret: ksr.Int, Args: []string{"sre", "sval"}, Doc: "Replace every match of sre in the body: 1, or -1 no match or no body."},
		{Name: "search_append", Func: searchAppend, Ret: ksr.Int, Args: []string{"sre", "val"}, Doc: "Insert val after the first match of sre in the headers: 1, or -1 no match."},
		{Name: "search_append_body", Func: searchAppendBody, Ret: ksr.Int, Args: []string{"sre", "val"}, Doc: "Insert val after the first match of sre in the body: 1, or -1 no match or no body."},
		{Name: "remove_hf_idx", Func: removeHFIdx, Ret: ksr.Int, Args: []string{"hname", "idx"}, Doc: "Remove hname header idx (negative: from the end): 1, 2 no such index (a negative one past the start: 1)."},
		{Name: "subst_uri", Func: substURI, Ret: ksr.Int, Args: []string{"subst"}, Doc: "sed-like /re/repl/flags on the R-URI: 1 replaced, -1 no match, invalid or the result is not a SIP URI."},
		{Name: "search_hf", Func: searchHF, Ret: ksr.Int, Args: []string{"hname", "sre", "flags"}, Doc: "1 if an hname header's value matches sre (flags \"f\": only the first header, \"l\": only the last), else -1."},
		{Name: "remove_hf_match", Func: removeHFMatch, Ret: ksr.Int, Args: []string{"hname", "op", "expr"}, Doc: "Remove the hname headers whose value is eq, ne, in (contains) or re (matches) expr: 1 some removed, -2 none, -1 bad operator."},
		{Name: "subst", Func: subst, Ret: ksr.Int, Args: []string{"subst"}, Doc: "sed-like /re/repl/flags (i, g) on the headers: 1 replaced, -1 no match or invalid."},
		{Name: "subst_body", Func: substBody, Ret: ksr.Int, Args: []string{"subst"}, Doc: "sed-like /re/repl/flags on the body: 1 replaced, -1 no match, no body or invalid."},
		{Name: "has_body", Func: hasBody, Ret: ksr.Int, Doc: "1 if the message has a body, else -1."},
		{Name: "has_body_type", Func: hasBodyType, Ret: ksr.Int, Args: []string{"ctype"}, Doc: "1 if the message has a body of Content-Type ctype (\"\": any), else -1."},
		{Name: "set_body", Func: setBody, Ret: ksr.Int, Args: []string{"nb", "nc"}, Doc: "Set the body to nb with Content-Type nc: 1, -1 empty argument."},
		{Name: "set_reply_body", Func: setReplyBody, Ret: ksr.Int, Args: []string{"nb", "nc"}, Doc: "Set the body (and Content-Type nc) of the replies generated for this request: 1, -1 empty argument."},
		{Name: "cmp_str", Func: cmpStr, Ret: ksr.Int, Args: []string{"s1", "s2"}, Doc: "1 if s1 equals s2, -1 if s1 sorts after, -2 before."},
		{Name: "cmp_istr", Func: cmpIStr, Ret: ksr.Int, Args: []string{"s1", "s2"}, Doc: "cmp_str ignoring case."},
		{Name: "starts_with", Func: startsWith, Ret: ksr.Int, Args: []string{"s1", "s2"}, Doc: "1 if s1 starts with s2, else -1 or -2."},
		{Name: "ends_with", Func: endsWith, Ret: ksr.Int, Args: []string{"s1", "s2"}, Doc: "1 if s1 ends with s2, else -1 or -2."},
		{Name: "str_find", Func: strFind, Ret: ksr.Int, Args: []string{"txt", "needle"}, Doc: "The position (from 1) of needle in txt, or -1."},
		{Name: "str_ifind", Func: strIFind, Ret: ksr.Int, Args: []string{"txt", "needle"}, Doc: "str_find ignoring case."},
		{Name: "search_str", Func: searchStr, Ret: ksr.Int, Args: []string{"stext", "sre"}, Doc: "1 if stext matches sre, -1 if not, 2 empty sre, -2 empty stext or invalid sre."},
		{Name: "in_list", Func: inList, Ret: ksr.Int, Args: []string{"subject", "list", "vsep"}, Doc: "1 if subject is an item of list (separated by vsep's first character), else -1."},
		{Name: "in_list_prefix", Func: inListPrefix, Ret: ksr.Int, Args: []string{"subject", "list", "vsep"}, Doc: "1 if an item of list is a prefix of subject, else -1."},
	}
}

// compile is a textops regular expression: POSIX ERE with REG_ICASE and
// REG_NEWLINE in Kamailio.
func compile(e *ksr.Env, sre string) *regexp.Regexp {
	re, err := e.Regexp("(?im)" + sre)
	if err != nil {
		e.D.Log.Error("textops: failed to compile regex", "re", sre, "error", err)
		return nil
	}
	return re
}

// text is the message as kemi would send it, "" without one.
func text(e *ksr.Env) string {
	if m := e.Msg.SIP(); m != nil {
		return m.String()
	}
	return ""
}

// body is the message's body; ok is false without a message.
func body(e *ksr.Env) ([]byte, bool) {
	if m := e.Msg.SIP(); m != nil {
		return m.Body(), true
	}
	return nil, false
}

// headerList is what a request and a reply share for header edits.
type headerList interface {
	Headers() []sip.Header
	RemoveHeader(string) bool
	AppendHeader(sip.Header)
	SetBody([]byte)
}

func headers(e *ksr.Env) headerList {
	switch {
	case e.Msg == nil:
	case e.Msg.Req != nil:
		return e.Msg.Req.Msg
	case e.Msg.Res != nil:
		return e.Msg.Res.Msg
	}
	return nil
}

// rewrite replaces the message's headers and body (and a request's
// R-URI) with those of txt, the edited text of the message; false when txt
// no longer parses (the message is left as it was).
func rewrite(e *ksr.Env, txt string) bool {
	parsed, err := sipnet.Parse([]byte(txt))
	if err != nil {
		e.D.Log.Error("textops: the edited message does not parse", "error", err)
		return false
	}
	hl := headers(e)
	var nh []sip.Header
	switch p := parsed.(type) {
	case *sip.Request:
		r, ok := hl.(*sip.Request)
		if !ok {
			return false
		}
		r.Recipient = p.Recipient
		nh = p.Headers()
	case *sip.Response:
		if _, ok := hl.(*sip.Response); !ok {
			return false
		}
		nh = p.Headers()
	}
	old := append([]sip.Header(nil), hl.Headers()...)
	for _, h := range old {
		hl.RemoveHeader(h.Name())
	}
	for _, h := range nh {
		if strings.EqualFold(h.Name(), "Content-Length") {
			continue
		}
		hl.AppendHeader(h)
	}
	hl.SetBody(parsed.Body())
	return true
}

func search(e *ksr.Env, sre string) int {
	if sre == "" {
		return 1
	}
	re := compile(e, sre)
	if re == nil || !re.MatchString(text(e)) {
		return -1
	}
	return 1
}

func searchBody(e *ksr.Env, sre string) int {
	if sre == "" {
		return 1
	}
	b, _ := body(e)
	re := compile(e, sre)
	if re == nil || len(b) == 0 || !re.Match(b) {
		return -1
	}
	return 1
}

func isPresentHF(e *ksr.Env, hname string) int {
	if hname == "" {
		return -1
	}
	return e.HdrIsPresent(hname)
}

func isPresentHFRe(e *ksr.Env, sre string) int {
	hl := headers(e)
	re := compile(e, sre)
	if hl == nil || re == nil {
		return -1
	}
	for _, h := range hl.Headers() {
		if re.MatchString(h.Name()) {
			return 1
		}
	}
	return -1
}

// removeHF is KSR.textops.remove_hf: kemi.c's sr_kemi_hdr_remove, 1 even
// when there was no such header.
func removeHF(e *ksr.Env, hname string) int { return e.HdrRemove(hname) }

// removeHFRe removes the headers whose name matches sre: 1 when some
// went, -1 when none matched.
func removeHFRe(e *ksr.Env, sre string) int {
	hl := headers(e)
	re := compile(e, sre)
	if hl == nil || re == nil {
		return -1
	}
	var names []string
	for _, h := range hl.Headers() {
		if re.MatchString(h.Name()) {
			names = append(names, h.Name())
		}
	}
	for _, n := range names {
		hl.RemoveHeader(n)
	}
	if len(names) == 0 {
		return -1
	}
	return 1
}

// replaceIn replaces the first (all: every) non-empty match of sre in s
// with the text sval; false when nothing matched.
func replaceIn(re *regexp.Regexp, s, sval string, all bool) (string, bool) {
	locs := re.FindAllStringIndex(s, -1)
	var b strings.Builder
	last, n := 0, 0
	for _, l := range locs {
		if l[0] == l[1] {
			continue
		}
		b.WriteString(s[last:l[0]])
		b.WriteString(sval)
		last = l[1]
		n++
		if !all {
			break
		}
	}
	if n == 0 {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

func replaceMsg(e *ksr.Env, sre, sval string, all bool) int {
	re := compile(e, sre)
	if re == nil {
		return -1
	}
	out, ok := replaceIn(re, text(e), sval, all)
	if !ok || !rewrite(e, out) {
		return -1
	}
	return 1
}

func replace(e *ksr.Env, sre, sval string) int    { return replaceMsg(e, sre, sval, false) }
func replaceAll(e *ksr.Env, sre, sval string) int { return replaceMsg(e, sre, sval, true) }

func replaceBodyMsg(e *ksr.Env, sre, sval string, all bool) int {
	b, _ := body(e)
	re := compile(e, sre)
	hl := headers(e)
	if re == nil || len(b) == 0 || hl == nil {
		return -1
	}
	out, ok := replaceIn(re, string(b), sval, all)
	if !ok {
		return -1
	}
	hl.SetBody([]byte(out))
	return 1
}

func replaceBody(e *ksr.Env, sre, sval string) int    { return replaceBodyMsg(e, sre, sval, false) }
func replaceBodyAll(e *ksr.Env, sre, sval string) int { return replaceBodyMsg(e, sre, sval, true) }

// substExpr is a parsed sed-like expression: /re/repl/flags.
type substExpr struct {
	re   *regexp.Regexp
	repl string // in Go's Expand syntax
	all  bool
}

// parseSubst parses /re/repl/flags (any delimiter; \N in repl is group N;
// flags i and g), as Kamailio's subst_parser.
func parseSubst(s string) (*substExpr, bool) {
	if len(s) < 4 {
		return nil, false
	}
	d := s[0]
	var parts []string
	var cur strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == d:
			cur.WriteByte(d)
			i++
		case c == d:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if len(parts) != 2 {
		return nil, false
	}
	flags := cur.String()
	x := &substExpr{}
	prefix := "(?m)"
	for _, f := range flags {
		switch f {
		case 'i':
			prefix = "(?im)"
		case 'g':
			x.all = true
		case 's':
		default:
			return nil, false
		}
	}
	re, err := regexp.Compile(prefix + parts[0])
	if err != nil {
		return nil, false
	}
	x.re = re
	var r strings.Builder
	repl := parts[1]
	for i := 0; i < len(repl); i++ {
		c := repl[i]
		switch {
		case c == '\\' && i+1 < len(repl) && repl[i+1] >= '0' && repl[i+1] <= '9':
			r.WriteString("${" + string(repl[i+1]) + "}")
			i++
		case c == '\\' && i+1 < len(repl):
			r.WriteByte(repl[i+1])
			i++
		case c == '$':
			r.WriteString("$$")
		default:
			r.WriteByte(c)
		}
	}
	x.repl = r.String()
	return x, true
}

// apply substitutes in s: the first match, or every one with g.
func (x *substExpr) apply(s string) (string, bool) {
	locs := x.re.FindAllStringSubmatchIndex(s, -1)
	if len(locs) == 0 {
		return s, false
	}
	if !x.all {
		locs = locs[:1]
	}
	var b []byte
	last := 0
	for _, l := range locs {
		b = append(b, s[last:l[0]]...)
		b = x.re.ExpandString(b, x.repl, s, l)
		last = l[1]
	}
	b = append(b, s[last:]...)
	return string(b), true
}

// searchHF is search_hf_helper_f: the values of the hname headers tried
// in order; with flags "f" the first one decides, with "l" the last one.
func searchHF(e *ksr.Env, hname, sre, flags string) int {
	hl := headers(e)
	if hl == nil || hname == "" || sre == "" {
		return -1
	}
	re := compile(e, sre)
	if re == nil {
		return -1
	}
	var last sip.Header
	for _, h := range hl.Headers() {
		if !e.HdrNamed(h, hname) {
			continue
		}
		if strings.HasPrefix(flags, "l") {
			last = h
			continue
		}
		if re.MatchString(h.Value()) {
			return 1
		}
		if strings.HasPrefix(flags, "f") {
			return -1
		}
	}
	if last != nil && re.MatchString(last.Value()) {
		return 1
	}
	return -1
}

// removeHFMatch is ki_remove_hf_match: op eq, ne, in (the value contains
// expr) or re (case-insensitive match); 1 when some went, -2 when none.
func removeHFMatch(e *ksr.Env, hname, op, expr string) int {
	hl := headers(e)
	if hl == nil {
		return -1
	}
	var match func(v string) bool
	switch strings.ToLower(op) {
	case "eq":
		match = func(v string) bool { return v == expr }
	case "ne":
		match = func(v string) bool { return v != expr }
	case "in":
		match = func(v string) bool { return strings.Contains(v, expr) }
	case "re":
		re := compile(e, expr)
		if re == nil {
			return -1
		}
		match = re.MatchString
	default:
		e.D.Log.Error("textops: remove_hf_match: unknown operator", "op", op)
		return -1
	}
	all := hl.Headers()
	keep := make([]sip.Header, 0, len(all))
	for _, h := range all {
		if e.HdrNamed(h, hname) && match(h.Value()) {
			continue
		}
		keep = append(keep, h)
	}
	if len(keep) == len(all) {
		return -2
	}
	for _, h := range append([]sip.Header(nil), all...) {
		hl.RemoveHeader(h.Name())
	}
	for _, h := range keep {
		hl.AppendHeader(h)
	}
	return 1
}

// afterFirstLine splits the message text after its first line.
func afterFirstLine(t string) (string, string, bool) {
	i := strings.Index(t, "\r\n")
	if i < 0 {
		return "", "", false
	}
	return t[:i+2], t[i+2:], true
}

// searchAppend is search_append_helper: val inserted after the first
// match of sre, searched from the headers on.
func searchAppend(e *ksr.Env, sre, val string) int {
	re := compile(e, sre)
	first, rest, ok := afterFirstLine(text(e))
	if re == nil || !ok {
		return -1
	}
	l := re.FindStringIndex(rest)
	if l == nil || !rewrite(e, first+rest[:l[1]]+val+rest[l[1]:]) {
		return -1
	}
	return 1
}

func searchAppendBody(e *ksr.Env, sre, val string) int {
	b, _ := body(e)
	re := compile(e, sre)
	hl := headers(e)
	if re == nil || len(b) == 0 || hl == nil {
		return -1
	}
	l := re.FindIndex(b)
	if l == nil {
		return -1
	}
	out := append(append(append([]byte{}, b[:l[1]]...), val...), b[l[1]:]...)
	hl.SetBody(out)
	return 1
}

// removeHFIdx is ki_remove_hf_idx: header idx of hname removed (1), 2
// when there is no such header; a negative idx counts from the end, and
// one past the first header gives 1 without removing anything.
func removeHFIdx(e *ksr.Env, hname string, idx int) int {
	hl := headers(e)
	if hl == nil || hname == "" {
		return -1
	}
	var match []int
	all := hl.Headers()
	for i, h := range all {
		if e.HdrNamed(h, hname) {
			match = append(match, i)
		}
	}
	pos := idx
	if idx < 0 {
		pos = len(match) + idx
		if pos < 0 {
			return 1
		}
	}
	if pos >= len(match) {
		return 2
	}
	keep := make([]sip.Header, 0, len(all)-1)
	keep = append(keep, all[:match[pos]]...)
	keep = append(keep, all[match[pos]+1:]...)
	for _, h := range append([]sip.Header(nil), all...) {
		hl.RemoveHeader(h.Name())
	}
	for _, h := range keep {
		hl.AppendHeader(h)
	}
	return 1
}

// substURI is subst_uri_helper_f: the R-URI replaced by the substitution's
// result. Kamailio takes any text; kemi refuses one that is not a SIP URI.
func substURI(e *ksr.Env, expr string) int {
	x, ok := parseSubst(expr)
	r := e.Msg.Request()
	if !ok || r == nil {
		return -1
	}
	out, ok := x.apply(r.Recipient.String())
	if !ok {
		return -1
	}
	var u sip.Uri
	if err := sip.ParseUri(out, &u); err != nil || u.Host == "" {
		e.D.Log.Error("textops: subst_uri: the result is not a SIP URI", "uri", out)
		return -1
	}
	r.Recipient = u
	return 1
}

// subst is KSR.textops.subst: on the headers (after the first line).
func subst(e *ksr.Env, expr string) int {
	x, ok := parseSubst(expr)
	if !ok {
		e.D.Log.Error("textops: cannot compile subst expression", "subst", expr)
		return -1
	}
	t := text(e)
	i := strings.Index(t, "\r\n")
	if i < 0 {
		return -1
	}
	out, ok := x.apply(t[i+2:])
	if !ok || !rewrite(e, t[:i+2]+out) {
		return -1
	}
	return 1
}

func substBody(e *ksr.Env, expr string) int {
	x, ok := parseSubst(expr)
	if !ok {
		e.D.Log.Error("textops: cannot compile subst expression", "subst", expr)
		return -1
	}
	b, _ := body(e)
	hl := headers(e)
	if len(b) == 0 || hl == nil {
		return -1
	}
	out, ok := x.apply(string(b))
	if !ok {
		return -1
	}
	hl.SetBody([]byte(out))
	return 1
}

func hasBody(e *ksr.Env) int { return hasBodyType(e, "") }

// hasBodyType is KSR.textops.has_body_type: a body (Content-Length > 0)
// whose Content-Type is ctype (without parameters, case-insensitive); a
// body without Content-Type is application/sdp (RFC 3261, as textops).
func hasBodyType(e *ksr.Env, ctype string) int {
	b, ok := body(e)
	if !ok || len(b) == 0 {
		return -1
	}
	if ctype == "" {
		return 1
	}
	ct := "application/sdp"
	if v, ok := e.HdrValue("Content-Type"); ok {
		ct, _, _ = strings.Cut(v, ";")
	}
	if !strings.EqualFold(strings.TrimSpace(ct), strings.TrimSpace(ctype)) {
		return -1
	}
	return 1
}

// setBody is KSR.textops.set_body: the body replaced and the Content-Type
// header set to nc.
func setBody(e *ksr.Env, nb, nc string) int {
	hl := headers(e)
	if nb == "" || nc == "" || hl == nil {
		e.D.Log.Error("textops: set_body: invalid body or content-type")
		return -1
	}
	e.HdrRemove("Content-Type")
	hl.AppendHeader(sip.NewHeader("Content-Type", nc))
	hl.SetBody([]byte(nb))
	return 1
}

// setReplyBody is KSR.textops.set_reply_body: the body and Content-Type of
// the replies kemi generates for this request.
func setReplyBody(e *ksr.Env, nb, nc string) int {
	if nb == "" || nc == "" || e.Msg == nil {
		e.D.Log.Error("textops: set_reply_body: invalid body or content-type")
		return -1
	}
	e.Msg.ReplyHdrs = append(e.Msg.ReplyHdrs, sip.NewHeader("Content-Type", nc))
	e.Msg.ReplyBody = []byte(nb)
	return 1
}

// cmpResult maps a comparison to textops' codes: 1 equal, -1 s1 after s2,
// -2 s1 before.
func cmpResult(c int) int {
	switch {
	case c == 0:
		return 1
	case c > 0:
		return -1
	}
	return -2
}

func cmpStr(_ *ksr.Env, s1, s2 string) int { return cmpResult(strings.Compare(s1, s2)) }
func cmpIStr(_ *ksr.Env, s1, s2 string) int {
	return cmpResult(strings.Compare(strings.ToLower(s1), strings.ToLower(s2)))
}

func startsWith(_ *ksr.Env, s1, s2 string) int {
	if len(s1) < len(s2) {
		return -1
	}
	return cmpResult(strings.Compare(s1[:len(s2)], s2))
}

func endsWith(_ *ksr.Env, s1, s2 string) int {
	if len(s1) < len(s2) {
		return -1
	}
	return cmpResult(strings.Compare(s1[len(s1)-len(s2):], s2))
}

func strFind(_ *ksr.Env, txt, needle string) int {
	if len(needle) > len(txt) {
		return -1
	}
	if i := strings.Index(txt, needle); i >= 0 {
		return i + 1
	}
	return -1
}

func strIFind(e *ksr.Env, txt, needle string) int {
	return strFind(e, strings.ToLower(txt), strings.ToLower(needle))
}

func searchStr(e *ksr.Env, stext, sre string) int {
	switch {
	case sre == "":
		return 2
	case stext == "":
		return -2
	}
	re := compile(e, sre)
	if re == nil {
		return -2
	}
	if re.MatchString(stext) {
		return 1
	}
	return -1
}

// listItems splits list on vsep's first character, items trimmed of
// blanks, as textops' in_list.
func listItems(list, vsep string) []string {
	items := strings.Split(list, vsep[:1])
	for i := range items {
		items[i] = strings.Trim(items[i], " \t\r\n")
	}
	return items
}

func inList(_ *ksr.Env, subject, list, vsep string) int {
	if subject == "" || list == "" || vsep == "" {
		return -1
	}
	for _, it := range listItems(list, vsep) {
		if it == subject {
			return 1
		}
	}
	return -1
}

func inListPrefix(_ *ksr.Env, subject, list, vsep string) int {
	if subject == "" || list == "" || vsep == "" {
		return -1
	}
	for _, it := range listItems(list, vsep) {
		if it != "" && strings.HasPrefix(subject, it) {
			return 1
		}
	}
	return -1
}
