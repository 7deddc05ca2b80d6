// Package rtpengine is Kamailio's rtpengine module in kemi: the ng control
// protocol (bencoded dictionaries over UDP, rtpengine's --listen-ng) as
// rtpengine.c at 5.6.3 builds it (the flags string parsed into the
// dictionary: replace-*, direction, transport, codec-*, via-branch, ...),
// the SDP replaced by the one rtpengine returns, relay sets with weights,
// a call kept on the relay that took its offer, a dead relay disabled for
// rtpengine_disable_tout and tested again, and the rtpengine.show /
// rtpengine.enable / rtpengine.ping RPC commands.
//
// Concurrency: the module is configured and provisioned by one goroutine;
// afterwards the relays and the call table are shared by every worker
// (the table behind a mutex). The set chosen with set_rtpengine_set is per
// message.
package rtpengine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"kemi/config"
	"kemi/jsonrpc"
	"kemi/ksr"
	"kemi/modules/internal/rtprelay"
)

// Module is one configuration's rtpengine.
type Module struct {
	socks        []string
	toutMS, retr int
	disableTout  int
	aggressive   int
	queriedLimit int
	setidDefault int
	tableTout    int

	sets *rtprelay.Sets
	log  *slog.Logger
	sel  ksr.Local

	mu    sync.Mutex
	calls map[string]callEntry // Call-ID + via-branch → relay (rtpengine_hash)
	now   func() time.Time
}

type callEntry struct {
	node *rtprelay.Node
	at   time.Time
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
	_ ksr.RPCProvider = (*Module)(nil)
)

// New returns rtpengine with Kamailio's defaults (config.c).
func New() *Module {
	return &Module{toutMS: 1000, retr: 5, disableTout: 60, aggressive: 1, queriedLimit: 30, tableTout: 3600}
}

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	intp := func(dst *int, min, max int) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) (err error) {
			*dst, err = config.IntParam(st, "rtpengine", min, max)
			return err
		}
	}
	x := func(name string, args []string, f any, doc string) ksr.Export {
		return ksr.Export{Name: name, Func: f, Ret: ksr.Int, Args: args, Doc: doc}
	}
	fl := []string{"flags"}
	simple := func(op string) (func(*ksr.Env) int, func(*ksr.Env, string) int) {
		return func(e *ksr.Env) int { return m.simple(e, op, "") },
			func(e *ksr.Env, flags string) int { return m.simple(e, op, flags) }
	}
	bm0, bm := simple("block media")
	ubm0, ubm := simple("unblock media")
	sm0, sm := simple("silence media")
	usm0, usm := simple("unsilence media")
	bd0, bd := simple("block DTMF")
	ubd0, ubd := simple("unblock DTMF")
	stm0, stm := simple("stop media")
	_, play := simple("play media")
	startRec, _ := simple("start recording")
	stopRec, _ := simple("stop recording")
	return ksr.ModuleInfo{
		Name: "rtpengine",
		Doc:  "media relay control with rtpengine's ng protocol",
		Params: []ksr.Param{
			{Name: "rtpengine_sock", Set: func(_ *ksr.Setup, st config.Stmt) error {
				if _, err := (&rtprelay.Sets{}).Add(st.Value.String(), true); err != nil {
					return config.Errorf(st.Pos, "modparam rtpengine rtpengine_sock: %v", err)
				}
				m.socks = append(m.socks, st.Value.String())
				return nil
			}},
			{Name: "rtpengine_tout_ms", Set: intp(&m.toutMS, 1, 1<<31-1)},
			{Name: "rtpengine_retr", Set: intp(&m.retr, 0, 1<<31-1)},
			{Name: "rtpengine_disable_tout", Set: intp(&m.disableTout, 0, 1<<31-1)},
			{Name: "aggressive_redetection", Set: intp(&m.aggressive, 0, 1)},
			{Name: "queried_nodes_limit", Set: intp(&m.queriedLimit, 1, 30)},
			{Name: "setid_default", Set: intp(&m.setidDefault, 0, 1<<31-1)},
			{Name: "hash_table_tout", Set: intp(&m.tableTout, 1, 1<<31-1)},
		},
		Ignored: []string{"rtpengine_allow_op", "control_cmd_tos", "db_url", "table_name", "setid_col", "url_col",
			"weight_col", "disabled_col", "extra_id_pv", "setid_avp", "force_send_interface", "rtp_inst_pvar",
			"write_sdp_pv", "read_sdp_pv", "hash_table_size", "media_duration", "hash_algo", "mos_min_pv",
			"mos_min_at_pv", "mos_min_packetloss_pv", "mos_min_jitter_pv", "mos_min_roundtrip_pv",
			"mos_min_roundtrip_leg_pv", "mos_max_pv", "mos_max_at_pv", "mos_max_packetloss_pv", "mos_max_jitter_pv",
			"mos_max_roundtrip_pv", "mos_max_roundtrip_leg_pv", "mos_average_pv", "mos_average_packetloss_pv",
			"mos_average_jitter_pv", "mos_average_roundtrip_pv", "mos_average_roundtrip_leg_pv",
			"mos_average_samples_pv", "mos_A_label_pv", "mos_min_A_pv", "mos_min_at_A_pv", "mos_min_packetloss_A_pv",
			"mos_min_jitter_A_pv", "mos_min_roundtrip_A_pv", "mos_min_roundtrip_leg_A_pv", "mos_max_A_pv",
			"mos_max_at_A_pv", "mos_max_packetloss_A_pv", "mos_max_jitter_A_pv", "mos_max_roundtrip_A_pv",
			"mos_max_roundtrip_leg_A_pv", "mos_average_A_pv", "mos_average_packetloss_A_pv",
			"mos_average_jitter_A_pv", "mos_average_roundtrip_A_pv", "mos_average_roundtrip_leg_A_pv",
			"mos_average_samples_A_pv", "mos_B_label_pv", "mos_min_B_pv", "mos_min_at_B_pv",
			"mos_min_packetloss_B_pv", "mos_min_jitter_B_pv", "mos_min_roundtrip_B_pv", "mos_min_roundtrip_leg_B_pv",
			"mos_max_B_pv", "mos_max_at_B_pv", "mos_max_packetloss_B_pv", "mos_max_jitter_B_pv",
			"mos_max_roundtrip_B_pv", "mos_max_roundtrip_leg_B_pv", "mos_average_B_pv", "mos_average_packetloss_B_pv",
			"mos_average_jitter_B_pv", "mos_average_roundtrip_B_pv", "mos_average_roundtrip_leg_B_pv",
			"mos_average_samples_B_pv", "wsapi"},
		PVs: []ksr.PV{{Name: "rtpestat", Get: m.rtpestat}},
		Exports: []ksr.Submodule{{Name: "rtpengine", Funcs: []ksr.Export{
			x("rtpengine_manage0", nil, func(e *ksr.Env) int { return m.manage(e, "") }, "Offer, answer or delete as the method and reply say."),
			x("rtpengine_manage", fl, m.manage, "Offer (INVITE, UPDATE with SDP), answer (2xx, ACK, PRACK with SDP) or delete (BYE, CANCEL, reply >= 300), with ng flags."),
			x("rtpengine_offer0", nil, func(e *ksr.Env) int { return m.offerAnswer(e, "", opOffer) }, "Send the SDP as an offer and put rtpengine's SDP in the message."),
			x("rtpengine_offer", fl, func(e *ksr.Env, f string) int { return m.offerAnswer(e, f, opOffer) }, "rtpengine_offer with ng flags: 1, -1 error."),
			x("rtpengine_answer0", nil, func(e *ksr.Env) int { return m.offerAnswer(e, "", opAnswer) }, "Send the SDP as an answer and put rtpengine's SDP in the message."),
			x("rtpengine_answer", fl, func(e *ksr.Env, f string) int { return m.offerAnswer(e, f, opAnswer) }, "rtpengine_answer with ng flags: 1, -1 error."),
			x("rtpengine_delete0", nil, func(e *ksr.Env) int { return m.simple(e, opDelete, "") }, "Delete the call's session."),
			x("rtpengine_delete", fl, func(e *ksr.Env, f string) int { return m.simple(e, opDelete, f) }, "Delete the call's session with ng flags."),
			x("rtpengine_query0", nil, func(e *ksr.Env) int { return m.simple(e, opQuery, "") }, "Query the call's session: 1 ok, -1 error."),
			x("rtpengine_query", fl, func(e *ksr.Env, f string) int { return m.simple(e, opQuery, f) }, "Query the call's session with ng flags."),
			x("rtpengine_query_v", []string{"fmt", "dpv"}, m.queryV, "Query the call's session and store the reply as JSON in variable dpv (fmt j, or jp formatted): 1, -1 error."),
			x("start_recording", nil, startRec, "Ask rtpengine to record the call."),
			x("stop_recording", nil, stopRec, "Ask rtpengine to stop recording the call."),
			x("block_media0", nil, bm0, "Block the call's media."),
			x("block_media", fl, bm, "Block the call's media, with ng flags."),
			x("unblock_media0", nil, ubm0, "Unblock the call's media."),
			x("unblock_media", fl, ubm, "Unblock the call's media, with ng flags."),
			x("silence_media0", nil, sm0, "Silence the call's media."),
			x("silence_media", fl, sm, "Silence the call's media, with ng flags."),
			x("unsilence_media0", nil, usm0, "Stop silencing the call's media."),
			x("unsilence_media", fl, usm, "Stop silencing the call's media, with ng flags."),
			x("block_dtmf0", nil, bd0, "Block the call's DTMF."),
			x("block_dtmf", fl, bd, "Block the call's DTMF, with ng flags."),
			x("unblock_dtmf0", nil, ubd0, "Unblock the call's DTMF."),
			x("unblock_dtmf", fl, ubd, "Unblock the call's DTMF, with ng flags."),
			x("play_media", fl, play, "Play media into the call (ng flags: file=..., ...)."),
			x("stop_media0", nil, stm0, "Stop playing media."),
			x("stop_media", fl, stm, "Stop playing media, with ng flags."),
			x("set_rtpengine_set", []string{"r1"}, m.setSet, "Use relay set r1 for this message: 1, -1 unknown set."),
		}}},
	}
}

// Provision reads the relay sets.
func (m *Module) Provision(h ksr.Host) error {
	m.log = h.Logger()
	m.now = h.Clock().Now
	m.calls = map[string]callEntry{}
	m.sets = &rtprelay.Sets{Now: m.now, Tout: time.Duration(m.toutMS) * time.Millisecond, Retr: m.retr,
		DisableTout: time.Duration(m.disableTout) * time.Second, Aggressive: m.aggressive != 0}
	for _, s := range m.socks {
		warn, err := m.sets.Add(s, true)
		if err != nil {
			return fmt.Errorf("rtpengine: rtpengine_sock %q: %w", s, err)
		}
		if warn != "" {
			m.log.Warn("rtpengine: " + warn)
		}
	}
	m.sets.Test = m.ping
	m.sel = h.Deps().NewLocal()
	return nil
}

// Start opens the relays' sockets and pings each one (child_init of the
// first worker).
func (m *Module) Start(ctx context.Context) error {
	return m.sets.Open(ctx, "0_"+rtprelay.Cookie())
}

// Stop closes the sockets.
func (m *Module) Stop(context.Context) error {
	m.sets.Close()
	return nil
}

// Sets returns the relays (tests).
func (m *Module) Sets() *rtprelay.Sets { return m.sets }

func (m *Module) set(e *ksr.Env) *rtprelay.Set {
	return rtprelay.Chosen(e, m.sel, m.sets.ByID(m.setidDefault))
}

// setSet is ki_set_rtpengine_set: -2 when the set has no enabled relay.
func (m *Module) setSet(e *ksr.Env, id int) int {
	set := m.sets.ByID(id)
	if set == nil {
		m.log.Error("rtpengine: rtpp_proxy set not configured", "set", id)
		return -1
	}
	rtprelay.Choose(e, m.sel, set)
	return 1
}

// ping is rtpp_test: {"command":"ping"} answered "pong".
func (m *Module) ping(ctx context.Context, n *rtprelay.Node) error {
	d := &dict{}
	d.add("command", "ping")
	r, err := m.sets.Send(ctx, n, d.encode(nil), false)
	if err != nil {
		m.log.Error("rtpengine: proxy did not respond to ping", "url", n.URL, "error", err)
		return err
	}
	res, err := decodeDict(r)
	if err != nil || res["result"] != "pong" {
		m.log.Error("rtpengine: proxy responded with invalid response", "url", n.URL)
		return fmt.Errorf("invalid ping response")
	}
	m.log.Info("rtpengine: rtpengine instance found, support for it enabled", "url", n.URL)
	return nil
}

type urlStatus struct {
	URL    string `json:"url"`
	Status string `json:"status"`
}

// RPC returns rtpengine.show, rtpengine.enable and rtpengine.ping.
func (m *Module) RPC() []jsonrpc.Method {
	iterate := func(url string, f func(set *rtprelay.Set, n *rtprelay.Node)) error {
		found := false
		m.sets.Each(func(set *rtprelay.Set, n *rtprelay.Node) {
			if url == "all" || len(url) >= 3 && url[:3] == "all" || n.URL == url {
				found = true
				f(set, n)
			}
		})
		if len(m.sets.List) == 0 {
			return &jsonrpc.Fault{Code: 404, Message: "Instance not found (no sets loaded)"}
		}
		if !found {
			return &jsonrpc.Fault{Code: 404, Message: "Instance not found"}
		}
		return nil
	}
	url0 := func(p jsonrpc.Params) (string, error) {
		u, ok := p.String(0)
		if !ok {
			return "", &jsonrpc.Fault{Code: 500, Message: "Not enough parameters"}
		}
		return u, nil
	}
	show := func(ctx context.Context, p jsonrpc.Params) (any, error) {
		url, err := url0(p)
		if err != nil {
			return nil, err
		}
		type item struct { // in Kamailio's order
			URL      string `json:"url"`
			Set      int    `json:"set"`
			Index    int    `json:"index"`
			Weight   int    `json:"weight"`
			Disabled any    `json:"disabled"`
			Recheck  any    `json:"recheck_ticks"`
		}
		out := []item{}
		err = iterate(url, func(set *rtprelay.Set, n *rtprelay.Node) {
			st := n.State()
			it := item{URL: n.URL, Set: set.ID, Index: n.Index, Weight: n.Weight}
			switch {
			case st.Permanent:
				it.Disabled, it.Recheck = "1(permanent)", "N/A"
			default:
				d, left := 0, 0
				if st.Disabled {
					d = 1
				}
				if l := int(st.Recheck.Sub(m.now()) / time.Second); l > 0 {
					left = l
				}
				it.Disabled, it.Recheck = d, left
			}
			out = append(out, it)
		})
		return out, err
	}
	enable := func(ctx context.Context, p jsonrpc.Params) (any, error) {
		url, ok1 := p.String(0)
		flag, ok2 := p.Int(1)
		if !ok1 || !ok2 {
			return nil, &jsonrpc.Fault{Code: 500, Message: "Not enough parameters"}
		}
		status := "disable"
		if flag != 0 {
			status = "enable"
		}
		err := iterate(url, func(_ *rtprelay.Set, n *rtprelay.Node) {
			if flag == 0 {
				n.SetEnabled(false)
				return
			}
			if m.ping(ctx, n) == nil {
				n.SetEnabled(true)
			} else {
				n.SetEnabled(true)
				m.sets.Disable(n)
				status = "fail"
			}
		})
		if err != nil {
			return nil, err
		}
		return urlStatus{url, status}, nil
	}
	ping := func(ctx context.Context, p jsonrpc.Params) (any, error) {
		url, err := url0(p)
		if err != nil {
			return nil, err
		}
		status := "success"
		err = iterate(url, func(_ *rtprelay.Set, n *rtprelay.Node) {
			if m.ping(ctx, n) != nil {
				m.sets.Disable(n)
				status = "fail"
			}
		})
		if err != nil {
			return nil, err
		}
		return urlStatus{url, status}, nil
	}
	return []jsonrpc.Method{
		{Name: "rtpengine.show", Doc: "Get details about an rtpengine instance", Handler: show},
		{Name: "rtpengine.enable", Doc: "Enable or disable an rtpengine instance", Handler: enable},
		{Name: "rtpengine.ping", Doc: "Ping an rtpengine instance", Handler: ping},
	}
}
