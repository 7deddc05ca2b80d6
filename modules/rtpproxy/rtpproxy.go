// Package rtpproxy is Kamailio's rtpproxy module in kemi: the rtpproxy
// control protocol (the "U"/"L"/"D"/"R" text commands of rtpproxy.c at
// 5.6.3) over UDP to a media relay (rtpproxy, or rtpengine's
// --listen-udp), the SDP rewritten as the relay answers (m= port, c= and
// o= address, a=rtcp port, a=nortpproxy:yes appended), relay sets with
// weights, a dead relay disabled for rtpproxy_disable_tout and tested
// again, and the rtpproxy.list / rtpproxy.enable RPC commands.
//
// Concurrency: the module is configured and provisioned by one goroutine;
// afterwards the relays (modules/internal/rtprelay) are shared by every
// worker. The set chosen with set_rtpproxy_set is per message.
package rtpproxy

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"kemi/config"
	"kemi/jsonrpc"
	"kemi/ksr"
	"kemi/modules/internal/rtprelay"
)

// Version is the rtpproxy control protocol version kemi speaks
// (SUP_CPROTOVER) and the capabilities it asks for.
const (
	supVersion = "20040107"
	reqVersion = "20050322" // required
	repVersion = "20071116" // re-packetization
	ptlVersion = "20081102" // payload type lists
)

// Module is one configuration's rtpproxy.
type Module struct {
	socks       []string
	tout, retr  int
	disableTout int
	nortpproxy  string
	timeoutSock string

	sets *rtprelay.Sets
	log  *slog.Logger
	deps *ksr.Deps // Deps.Started: Kamailio's ticks count from there
	sel  ksr.Local // per-VM: the set chosen for the message being handled
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
)

// New returns rtpproxy with Kamailio's defaults.
func New() *Module {
	return &Module{tout: 1, retr: 5, disableTout: 60, nortpproxy: "a=nortpproxy:yes"}
}

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	intp := func(dst *int, min int) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) (err error) {
			*dst, err = config.IntParam(st, "rtpproxy", min, 1<<31-1)
			return err
		}
	}
	strp := func(dst *string) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error { *dst = st.Value.String(); return nil }
	}
	i := func(name string, ret ksr.Type, args []string, f any, doc string) ksr.Export {
		return ksr.Export{Name: name, Func: f, Ret: ret, Args: args, Doc: doc}
	}
	fl := []string{"flags"}
	fi := []string{"flags", "ip"}
	return ksr.ModuleInfo{
		Name: "rtpproxy",
		Doc:  "media relay control with the rtpproxy protocol",
		Params: []ksr.Param{
			{Name: "rtpproxy_sock", Set: func(_ *ksr.Setup, st config.Stmt) error {
				m.socks = append(m.socks, st.Value.String())
				if _, err := (&rtprelay.Sets{}).Add(st.Value.String(), false); err != nil {
					return config.Errorf(st.Pos, "modparam rtpproxy rtpproxy_sock: %v", err)
				}
				return nil
			}},
			{Name: "rtpproxy_tout", Set: intp(&m.tout, 0)},
			{Name: "rtpproxy_retr", Set: intp(&m.retr, 0)},
			{Name: "rtpproxy_disable_tout", Set: intp(&m.disableTout, -1)},
			{Name: "nortpproxy_str", Set: strp(&m.nortpproxy)},
			{Name: "timeout_socket", Set: strp(&m.timeoutSock)},
		},
		Ignored: []string{"ice_candidate_priority_avp", "extra_id_pv", "db_url", "table_name", "rtp_inst_pvar"},
		PVs: []ksr.PV{
			{Name: "rtpstat", Get: m.rtpstat},
			{Name: "rtppstat", Get: m.rtpstat},
		},
		Exports: []ksr.Submodule{{Name: "rtpproxy", Funcs: []ksr.Export{
			i("rtpproxy_manage0", ksr.Int, nil, m.manage0, "Offer, answer or destroy as the method and reply say, without flags."),
			i("rtpproxy_manage", ksr.Int, fl, m.manage, "Offer (INVITE, UPDATE, PRACK with SDP), answer (2xx, ACK with SDP) or destroy (BYE, CANCEL, reply >= 300) with flags."),
			i("rtpproxy_manage_ip", ksr.Int, fi, m.manageIP, "rtpproxy_manage with ip as the media address put in the SDP."),
			i("rtpproxy_offer0", ksr.Int, nil, m.offer0, "Create the session (U command) and rewrite the SDP."),
			i("rtpproxy_offer", ksr.Int, fl, m.offer, "rtpproxy_offer with flags: 1, -1 error, -2 already proxied (a=nortpproxy), -3 no relay."),
			i("rtpproxy_offer_ip", ksr.Int, fi, m.offerIP, "rtpproxy_offer with ip as the media address."),
			i("rtpproxy_answer0", ksr.Int, nil, m.answer0, "Look the session up (L command) and rewrite the SDP."),
			i("rtpproxy_answer", ksr.Int, fl, m.answer, "rtpproxy_answer with flags; -1 for a request other than ACK."),
			i("rtpproxy_answer_ip", ksr.Int, fi, m.answerIP, "rtpproxy_answer with ip as the media address."),
			i("rtpproxy_destroy0", ksr.Int, nil, m.destroy0, "Delete the session (D command)."),
			i("rtpproxy_destroy", ksr.Int, fl, m.destroy, "Delete the session with flags (1/2/3 Via branch, t without To tag)."),
			i("set_rtpproxy_set", ksr.Int, []string{"rset"}, m.setSet, "Use relay set rset for this message: 1, -1 unknown set."),
			i("start_recording", ksr.Int, nil, m.startRecording, "Ask the relay to record the session (R command)."),
		}}},
	}
}

// Provision reads the relay sets.
func (m *Module) Provision(h ksr.Host) error {
	m.log = h.Logger()
	m.deps = h.Deps()
	m.sets = &rtprelay.Sets{Now: h.Clock().Now, Tout: time.Duration(m.tout) * time.Second, Retr: m.retr, Aggressive: true}
	m.sets.DisableTout = time.Duration(m.disableTout) * time.Second
	if m.disableTout < 0 {
		m.sets.DisableTout = -1
	}
	for _, s := range m.socks {
		if _, err := m.sets.Add(s, false); err != nil {
			return fmt.Errorf("rtpproxy: rtpproxy_sock %q: %w", s, err)
		}
	}
	m.sets.Test = m.test
	m.sel = h.Deps().NewLocal()
	return nil
}

// Start opens the relays' sockets and tests each one (child_init).
func (m *Module) Start(ctx context.Context) error {
	return m.sets.Open(ctx, rtprelay.Cookie())
}

// Stop closes the sockets.
func (m *Module) Stop(context.Context) error {
	m.sets.Close()
	return nil
}

// Sets returns the relays (tests).
func (m *Module) Sets() *rtprelay.Sets { return m.sets }

func (m *Module) set(e *ksr.Env) *rtprelay.Set {
	return rtprelay.Chosen(e, m.sel, m.sets.ByID(0))
}

func (m *Module) setSet(e *ksr.Env, id int) int {
	set := m.sets.ByID(id)
	if set == nil {
		m.log.Error("rtpproxy: could not locate rtpproxy set", "set", id)
		return -1
	}
	rtprelay.Choose(e, m.sel, set)
	return 1
}

// test is rtpp_test: the version, the required capability, then the
// optional ones.
func (m *Module) test(ctx context.Context, n *rtprelay.Node) error {
	r, err := m.sets.Send(ctx, n, []byte("V"), false)
	if err != nil {
		m.log.Warn("rtpproxy: can't get version of the RTP proxy", "url", n.URL, "error", err)
		return err
	}
	if v := strings.TrimSpace(string(r)); v != supVersion {
		m.log.Warn("rtpproxy: unsupported version of RTP proxy", "url", n.URL, "version", v)
		return fmt.Errorf("unsupported version %q", v)
	}
	caps := map[string]bool{}
	for _, c := range []string{reqVersion, repVersion, ptlVersion} {
		r, err := m.sets.Send(ctx, n, []byte("VF "+c), false)
		if err != nil {
			if c == reqVersion {
				m.log.Warn("rtpproxy: RTP proxy went down during version query", "url", n.URL)
				return err
			}
			continue
		}
		ok := len(r) > 0 && r[0] != 'E' && atoi(string(r)) == 1
		if c == reqVersion && !ok {
			m.log.Warn("rtpproxy: RTP proxy doesn't support the required protocol version", "url", n.URL, "version", c)
			return fmt.Errorf("no protocol %s", c)
		}
		caps[c] = ok
	}
	n.SetCaps(caps)
	m.log.Info("rtpproxy: rtp proxy found, support for it enabled", "url", n.URL)
	return nil
}

// atoi is C's atoi: the leading integer, 0 without one.
func atoi(s string) int {
	s = strings.TrimLeft(s, " \t\r\n")
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, _ := strconv.Atoi(s[:i])
	return n
}

// RPC returns rtpproxy.list and rtpproxy.enable.
func (m *Module) RPC() []jsonrpc.Method {
	type item struct {
		SetID    int    `json:"setid"`
		URL      string `json:"url"`
		Index    int    `json:"index"`
		Disabled int    `json:"disabled"`
		Weight   int    `json:"weight"`
		Recheck  int64  `json:"recheck"`
	}
	list := func(ctx context.Context, p jsonrpc.Params) (any, error) {
		out := []item{}
		m.sets.Each(func(set *rtprelay.Set, n *rtprelay.Node) {
			st := n.State()
			it := item{SetID: set.ID, URL: n.URL, Index: n.Index, Weight: n.Weight}
			if st.Disabled {
				it.Disabled = 1
			}
			switch {
			case st.Permanent:
				it.Recheck = -1 // RPC_MAX_RECHECK_TICKS printed as an int
			case !st.Recheck.IsZero():
				it.Recheck = int64(st.Recheck.Sub(m.deps.Started) / time.Second)
			}
			out = append(out, it)
		})
		return out, nil
	}
	enable := func(ctx context.Context, p jsonrpc.Params) (any, error) {
		url, ok1 := p.String(0)
		on, ok2 := p.Int(1)
		if !ok1 || !ok2 {
			return nil, &jsonrpc.Fault{Code: 500, Message: "Not enough parameters"}
		}
		found := false
		m.sets.Each(func(_ *rtprelay.Set, n *rtprelay.Node) {
			if n.URL == url {
				found = true
				n.SetEnabled(on != 0)
			}
		})
		if !found {
			return nil, &jsonrpc.Fault{Code: 404, Message: "RTPProxy not found"}
		}
		return nil, nil
	}
	return []jsonrpc.Method{
		{Name: "rtpproxy.list", Doc: "List rtp proxies.", Handler: list},
		{Name: "rtpproxy.enable", Doc: "Set state (enable/disable) for a rtp proxy.", Handler: enable},
	}
}
