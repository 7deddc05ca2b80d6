// Package corex is Kamailio's corex module in kemi: KSR.corex's cheap
// exports (has_ruri_user, has_user_agent, is_faked_msg, is_socket_name,
// file_read, file_write) with the return codes of corex_mod.c at 5.6.3,
// and the alias_subdomains modparam, which extends KSR.is_myself* (and rr's
// loose routing) to a domain and its subdomains, optionally bound to a
// protocol and a port (corex_check_self).
//
// Concurrency: the module is configured once; its check-self function and
// its exports only read its settings and the calling VM's message.
package corex

import (
	"os"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"kemi/config"
	"kemi/ksr"
)

// alias is one alias_subdomains value: proto:host:port, proto and port
// optional (0 matches any).
type alias struct {
	proto string
	host  string
	port  int
}

// Module is one configuration's corex.
type Module struct {
	aliases []alias
}

// New returns corex without aliases.
func New() *Module { return &Module{} }

// Info describes the module. dns_cache, nio_intercept, nio_min_msg_len,
// nio_msg_avp and evcb_reply_out are accepted and ignored.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name:    "corex",
		Doc:     "core extensions: R-URI and message checks, alias_subdomains",
		Params:  []ksr.Param{{Name: "alias_subdomains", Set: m.setAlias}},
		Ignored: []string{"dns_cache", "nio_intercept", "nio_min_msg_len", "nio_msg_avp", "evcb_reply_out"},
		Exports: []ksr.Submodule{{Name: "corex", Funcs: []ksr.Export{
			{Name: "append_branch", Func: appendBranch, Ret: ksr.Int, Doc: "Move the R-URI (with $du, path and branch flags, which are reset) into a new branch of the destination set: 1, -1 when it is full."},
			{Name: "append_branch_uri", Func: appendBranchURI, Ret: ksr.Int, Args: []string{"uri"}, Doc: "Add uri as a branch, with branch 0's $du, path and flags: 1, -1 when the set is full."},
			{Name: "append_branch_uri_q", Func: appendBranchURIQ, Ret: ksr.Int, Args: []string{"uri", "q"}, Doc: "append_branch_uri with a q value (\"0.5\"): -1 for a bad q."},
			{Name: "has_ruri_user", NoRetain: true, Func: hasRURIUser, Ret: ksr.Int, Doc: "1 if the R-URI has a user, -1 if not (or for a reply)."},
			{Name: "has_user_agent", Func: hasUserAgent, Ret: ksr.Int, Doc: "1 if there is a non-empty User-Agent header, -1 if not."},
			{Name: "is_faked_msg", Func: isFakedMsg, Ret: ksr.Int, Doc: "1 for the faked request of timer and event routes, -1 otherwise."},
			{Name: "is_socket_name", Func: isSocketName, Ret: ksr.Int, Args: []string{"sockname"}, Doc: "1 if a listen socket has that name: always -1 in kemi (no socket names)."},
			{Name: "file_read", Func: fileRead, Ret: ksr.Xval, Args: []string{"fname"}, Doc: "The file's content, \"\" when it cannot be read."},
			{Name: "file_write", Func: fileWrite, Ret: ksr.Int, Args: []string{"fname", "fdata"}, Doc: "Write fdata to the file (truncated first): 1, or -1 if it cannot be opened."},
		}}},
	}
}

// setAlias parses an alias_subdomains value as corex_add_alias_subdomains
// does: host, host:port, or proto:host[:port] with proto udp, tcp, tls or
// sctp ("abc:5060" is refused, as in Kamailio).
func (m *Module) setAlias(_ *ksr.Setup, st config.Stmt) error {
	v := st.Value.String()
	bad := func() error {
		return config.Errorf(st.Pos, "modparam corex alias_subdomains: invalid value %q", v)
	}
	a := alias{}
	parts := strings.Split(v, ":")
	switch p := strings.ToLower(parts[0]); {
	case len(parts) > 1 && (p == "udp" || p == "tcp" || p == "tls" || p == "sctp"):
		a.proto = p
		parts = parts[1:]
	case len(parts) > 1 && (len(p) == 3 || len(p) == 4):
		return bad() // as Kamailio: a 3- or 4-letter first part must be a protocol
	}
	a.host = parts[0]
	switch {
	case a.host == "" || len(parts) > 2:
		return bad()
	case len(parts) == 2:
		n, err := strconv.Atoi(parts[1])
		if err != nil || n < 0 || n > 65535 {
			return bad()
		}
		a.port = n
	}
	m.aliases = append(m.aliases, a)
	return nil
}

// Provision adds the aliases to the engine's is_myself checks.
func (m *Module) Provision(h ksr.Host) error {
	if len(m.aliases) > 0 {
		d := h.Deps()
		d.CheckSelf = append(d.CheckSelf, m.checkSelf)
	}
	return nil
}

// checkSelf is corex_check_self: host is an alias or a subdomain of one,
// with a matching port when both are set. The protocol is not known here
// (kemi's check-self has none), so an alias bound to one matches any.
func (m *Module) checkSelf(host string, port int) bool {
	for _, a := range m.aliases {
		if len(host) < len(a.host) || a.port != 0 && port != 0 && a.port != port {
			continue
		}
		if strings.EqualFold(host, a.host) {
			return true
		}
		n := len(host) - len(a.host)
		if strings.EqualFold(host[n:], a.host) && host[n-1] == '.' {
			return true
		}
	}
	return false
}

func hasRURIUser(e *ksr.Env) int {
	if r := e.Msg.Request(); r != nil && r.Recipient.User != "" {
		return 1
	}
	return -1
}

func hasUserAgent(e *ksr.Env) int {
	if m := e.Msg.SIP(); m != nil {
		if h := m.GetHeaders("User-Agent"); len(h) > 0 && h[0].Value() != "" {
			return 1
		}
	}
	return -1
}

func isFakedMsg(e *ksr.Env) int {
	if e.Msg != nil && e.Msg.Faked {
		return 1
	}
	return -1
}

func isSocketName(e *ksr.Env, name string) int {
	if name == "" {
		e.D.Log.Error("corex: invalid socket name value")
	}
	return -1
}

// fileRead is ki_file_read: the content, "" (SR_KEMI_XVAL_NULL_EMPTY)
// when the file cannot be read.
func fileRead(e *ksr.Env, name string) lua.LValue {
	b, err := os.ReadFile(name)
	if err != nil {
		e.D.Log.Error("corex: cannot read file", "file", name, "error", err)
		return lua.LString("")
	}
	return lua.LString(b)
}

func fileWrite(e *ksr.Env, name, data string) int {
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		e.D.Log.Error("corex: cannot open file", "file", name, "error", err)
		return -1
	}
	return 1
}
