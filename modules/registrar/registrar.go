// Package registrar is Kamailio's registrar module in kemi: KSR.registrar
// save, lookup, lookup_uri, registered, registered_uri and
// unregister over usrloc's location table, with Kamailio 5.6's return
// codes, its 200 OK carrying the Contact list with each contact's expires,
// its error replies with P-Registrar-Error, and its expires rules
// (default_expires, min_expires, max_expires, max_contacts). See
// docs/registrar.md for what kemi does differently.
//
// Concurrency: a Module is configured by one goroutine; afterwards its
// exports run on any worker. The record of an AOR changes in one
// usrloc.Module.Tx, under its domain's lock, as Kamailio locks the
// udomain slot.
package registrar

import (
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"

	"kemi/config"
	"kemi/ksr"
	"kemi/modules/usrloc"
)

// Settings are the module's parameters.
type Settings struct {
	DefaultExpires int
	MinExpires     int
	MaxExpires     int
	MaxContacts    int
	DefaultQ       int // q * 1000, -1 unspecified
	CaseSensitive  bool
	ReceivedAVP    string // $avp name whose value is the contact's received
	ReceivedParam  string // received_param: the reply's Contact parameter
	UsePath        bool
	PathMode       int
	RetryAfter     int
	// AppendBranches: lookup adds the AOR's other contacts to the
	// destination set (parallel forking); default on.
	AppendBranches bool
	// MethodFiltering: lookup skips contacts whose methods lack the
	// request's; default off.
	MethodFiltering bool
}

// Module is one configuration's registrar.
type Module struct {
	set Settings
	ul  *usrloc.Module
	qov ksr.Local // per-VM: set_q_override's value and the message it is for
	// qovOK is set once qov is allocated (Provision).
	qovOK bool
}

var _ ksr.Provisioner = (*Module)(nil)

// New returns a registrar over ul with Kamailio's defaults.
func New(ul *usrloc.Module) *Module {
	return &Module{ul: ul, set: Settings{DefaultExpires: 3600, MinExpires: 60, DefaultQ: -1, ReceivedParam: "received", PathMode: 2,
		AppendBranches: true}}
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

func intParam(dst *int) func(*ksr.Setup, config.Stmt) error {
	return ksr.IntSetting("registrar", dst, -1, math.MaxInt32)
}

// boolParam is an integer modparam read as a switch (0 off).
func boolParam(dst *bool) func(*ksr.Setup, config.Stmt) error {
	return ksr.SwitchSetting("registrar", dst)
}

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	str := func(dst *string) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error { *dst = st.Value.String(); return nil }
	}
	var cs, up int
	return ksr.ModuleInfo{
		Name: "registrar",
		Doc:  "SIP registrations (save, lookup) over usrloc's location table",
		Params: []ksr.Param{
			{Name: "default_expires", Set: intParam(&m.set.DefaultExpires)},
			{Name: "min_expires", Set: intParam(&m.set.MinExpires)},
			{Name: "max_expires", Set: intParam(&m.set.MaxExpires)},
			{Name: "max_contacts", Set: intParam(&m.set.MaxContacts)},
			{Name: "retry_after", Set: intParam(&m.set.RetryAfter)},
			{Name: "default_q", Set: intParam(&m.set.DefaultQ)},
			{Name: "path_mode", Set: intParam(&m.set.PathMode)},
			{Name: "case_sensitive", Set: func(s *ksr.Setup, st config.Stmt) error {
				err := intParam(&cs)(s, st)
				m.set.CaseSensitive = cs != 0
				return err
			}},
			{Name: "use_path", Set: func(s *ksr.Setup, st config.Stmt) error {
				err := intParam(&up)(s, st)
				m.set.UsePath = up != 0
				return err
			}},
			{Name: "received_avp", Set: func(_ *ksr.Setup, st config.Stmt) error {
				v := st.Value.String()
				if !strings.HasPrefix(v, "$avp(") || !strings.HasSuffix(v, ")") {
					return config.Errorf(st.Pos, "registrar received_avp: %q is not an $avp(name)", v)
				}
				m.set.ReceivedAVP = v
				return nil
			}},
			{Name: "received_param", Set: str(&m.set.ReceivedParam)},
			{Name: "append_branches", Set: boolParam(&m.set.AppendBranches)},
			{Name: "method_filtering", Set: boolParam(&m.set.MethodFiltering)},
		},
		// Kamailio 5.6.3's other registrar parameters: expires ranges,
		// socket and TCP handling,
		// outbound, GRUU, xavps and event callbacks change nothing here.
		Ignored: []string{"default_expires_range", "expires_range", "tcp_persistent_flag", "realm_prefix",
			"sock_mode", "sock_flag", "sock_hdr_name", "path_use_received", "path_check_local",
			"xavp_cfg", "xavp_rcd", "xavp_rcd_mask", "gruu_enabled", "outbound_mode", "regid_mode", "flow_timer",
			"contact_max_size", "event_callback", "lookup_filter_mode", "min_expires_mode", "use_expired_contacts"},
		Exports: []ksr.Submodule{{Name: "registrar", Funcs: []ksr.Export{
			{Name: "save", Func: m.save, Ret: ksr.Int, Args: []string{"table", "flags"}, Doc: "Save the REGISTER's contacts for the To URI's AOR and reply: 1 added or unchanged, 2 updated, 3 removed (or '*'), 4 query; -1 error, -2 too many contacts."},
			{Name: "save_uri", Func: m.saveURI, Ret: ksr.Int, Args: []string{"table", "flags", "uri"}, Doc: "save() for the AOR of uri instead of the To URI's."},
			{Name: "lookup", Func: m.lookup, Ret: ksr.Int, Args: []string{"table"}, Doc: "Set the R-URI to the best contact of the R-URI's AOR: 1 found, -1 not found or an unknown table (not preloaded), -3 error."},
			{Name: "lookup_uri", Func: m.lookupURI, Ret: ksr.Int, Args: []string{"table", "uri"}, Doc: "lookup() of uri's AOR."},
			{Name: "lookup_branches", Func: m.lookupBranches, Ret: ksr.Int, Args: []string{"table"}, Doc: "lookup() of the R-URI and of each branch of the destination set that is a bare URI: 1 when any was found."},
			{Name: "lookup_to_dset", Func: m.lookupToDset, Ret: ksr.Int, Args: []string{"table", "uri"}, Doc: "Add the contacts of uri's AOR to the destination set, keeping the R-URI (needs append_branches): 1, -1 none, -2 none for the method, -3 bad uri (also \"\")."},
			{Name: "registered", Func: m.registered, Ret: ksr.Int, Args: []string{"table"}, Doc: "1 when the R-URI's AOR has a valid contact, else -1."},
			{Name: "registered_uri", Func: m.registeredURI, Ret: ksr.Int, Args: []string{"table", "uri"}, Doc: "registered() of uri's AOR."},
			{Name: "registered_flags", Func: m.registeredFlags, Ret: ksr.Int, Args: []string{"table", "uri", "flags"}, Doc: "registered_uri() (uri \"\": the R-URI's AOR); the match flags need xavp_cfg, which kemi ignores, so they change nothing."},
			{Name: "registered_action", Func: m.registeredAction, Ret: ksr.Int, Args: []string{"table", "uri", "flags", "aflags"}, Doc: "registered_flags() with action flags (xavp handling, which kemi does not keep)."},
			{Name: "unregister_ruid", Func: m.unregisterRuid, Ret: ksr.Int, Args: []string{"table", "uri", "ruid"}, Doc: "Remove the contact with that ruid from uri's AOR: 1 done, -1 empty or bad uri or unknown table, -3 not found."},
			{Name: "set_q_override", Func: m.setQOverride, Ret: ksr.Int, Args: []string{"q"}, Doc: "The contacts the next save of this message stores get q (\"0.5\"), whatever their q parameters say: 1, -1 for a bad q."},
			{Name: "unregister", Func: m.unregister, Ret: ksr.Int, Args: []string{"table", "uri"}, Doc: "Remove every contact of uri's AOR: 1 done, -1 bad uri or unknown table, -2 error."},
		}}},
	}
}

// Provision checks usrloc is loaded.
func (m *Module) Provision(h ksr.Host) error {
	if m.ul.Settings() == nil {
		return fmt.Errorf("registrar: usrloc is not loaded")
	}
	m.qov, m.qovOK = h.Deps().NewLocal(), true
	return nil
}

// qOverride is set_q_override's choice: q for the contacts save stores
// from msg.
type qOverride struct {
	msg *ksr.Msg
	q   int
}

// setQOverride is regapi_set_q_override: the contacts the next save of
// this message stores get q (str2q), whatever their q parameters say.
// 1, or -1 for a q str2q refuses.
func (m *Module) setQOverride(e *ksr.Env, q string) int {
	if !m.qovOK || e.Msg == nil {
		return -1
	}
	v, ok := ksr.ParseQ(q)
	if !ok || v < 0 || v > 1000 {
		e.D.Log.Error("registrar: invalid q parameter", "q", q)
		return -1
	}
	o := ksr.LocalOf[qOverride](e, m.qov)
	o.msg, o.q = e.Msg, v
	return 1
}

// qFor is the q override for e's message, ok false when none was set.
func (m *Module) qFor(e *ksr.Env) (int, bool) {
	if !m.qovOK {
		return 0, false
	}
	o := ksr.LocalOf[qOverride](e, m.qov)
	return o.q, o.msg != nil && o.msg == e.Msg
}

// rerr is Kamailio's rerrno: a reply code and a P-Registrar-Error text
// (reply.c's codes and error_info).
type rerr int

const (
	errToUser rerr = iota + 1
	errAORParse
	errInvExp
	errInvQ
	errParse
	errStarExp
	errStarCont
	errTooMany
	errUL
)

// reply returns the error's reply code and P-Registrar-Error text.
func (r rerr) reply() (int, string) {
	switch r {
	case errToUser:
		return 400, "No username in To URI"
	case errAORParse:
		return 400, "Error while parsing AOR"
	case errInvExp:
		return 400, "Invalid expires param in contact"
	case errInvQ:
		return 400, "Invalid q param in contact"
	case errParse:
		return 400, "Message parse error"
	case errStarExp:
		return 400, "* used in contact and expires is not zero"
	case errStarCont:
		return 400, "* used in contact and more than 1 contact"
	case errTooMany:
		return 503, "Too many registered contacts"
	}
	return 500, "Error while accessing usrloc"
}

var uriPool = sync.Pool{New: func() any { return new(sip.Uri) }}

// aor is extract_aor: user (and @domain with use_domain), lowercased
// unless case_sensitive (then the domain only).
func (m *Module) aor(uri string) (string, rerr) {
	// sip.ParseUri's result lives on the heap (its states are func
	// values): a pooled one spares lookup an allocation.
	u := uriPool.Get().(*sip.Uri)
	defer func() { *u = sip.Uri{}; uriPool.Put(u) }()
	*u = sip.Uri{}
	if err := sip.ParseUri(strings.TrimSpace(uri), u); err != nil || u.Host == "" {
		return "", errAORParse
	}
	a, user := u.User, u.User
	if m.ul.UseDomain() {
		if user != "" {
			a += "@"
		}
		a += u.Host
	}
	if m.set.CaseSensitive && user != "" {
		return user + strings.ToLower(a[len(user):]), 0
	}
	return strings.ToLower(a), 0
}

func (m *Module) domain(e *ksr.Env, table string) *usrloc.Domain {
	d, err := m.ul.Domain(table)
	if err != nil {
		e.D.Log.Error("registrar: usrloc table", "table", table, "error", err)
		return nil
	}
	return d
}
