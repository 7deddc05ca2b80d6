// Package tm is Kamailio's tm and tmx modules in kemi: KSR.tm (server
// transactions, stateful replies and relaying, failure/reply/branch
// routes) with tm's fr_timer and fr_inv_timer, and tmx's $T_reply_code,
// $T_reply_reason and $T(reply_type). The relay runtime itself is the
// engine's (engine/relay.go), reached through ksr.Relay; it reads the
// timers from this module's Settings.
//
// Concurrency: a Module is configured by one goroutine and read-only
// afterwards; the exports act only on the calling VM's Env and message.
package tm

import (
	"strings"
	"time"

	"kemi/config"
	"kemi/ksr"
	"kemi/sipnet"
)

// Settings are the tm parameters kemi's relay honours.
type Settings struct {
	FrTimer    time.Duration // fr_timer: wait for a final reply (INVITE: until a provisional one)
	FrInvTimer time.Duration // fr_inv_timer: wait for the final reply to INVITE after a provisional
	// Inv100Reason is auto_inv_100_reason: the reason of the 100 tm sends
	// when it relays an INVITE.
	Inv100Reason string
}

// DefaultInv100Reason is tm's auto_inv_100_reason default (tm/config.c).
const DefaultInv100Reason = "trying -- your call is important to us"

// Module is one configuration's tm.
type Module struct {
	set Settings
}

// New returns tm with Kamailio's default timers.
func New() *Module {
	return &Module{set: Settings{FrTimer: sipnet.DefaultFrTimer, FrInvTimer: sipnet.DefaultFrInvTimer,
		Inv100Reason: DefaultInv100Reason}}
}

// Settings returns the module's parameters as read from the configuration.
func (m *Module) Settings() *Settings { return &m.set }

// ignored are Kamailio 5.6.3's tm modparams (tm.c params[]) but fr_timer
// and fr_inv_timer and auto_inv_100_reason: kemi's relay has fixed
// behaviour for all of them.
func ignored() []string {
	return []string{"ruri_matching", "via1_matching", "callid_matching", "callid_cseq_matching",
		"wt_timer", "retr_timer1", "retr_timer2", "max_inv_lifetime", "max_noninv_lifetime",
		"noisy_ctimer", "auto_inv_100", "unix_tx_timeout",
		"restart_fr_on_each_reply", "fr_timer_avp", "fr_inv_timer_avp", "tw_append",
		"pass_provisional_replies", "aggregate_challenges", "unmatched_cancel", "default_code",
		"default_reason", "reparse_invite", "ac_extra_hdrs", "blst_503", "blst_503_def_timeout",
		"blst_503_min_timeout", "blst_503_max_timeout", "blst_methods_add", "blst_methods_lookup",
		"cancel_b_method", "reparse_on_dns_failover", "on_sl_reply", "contacts_avp",
		"contact_flows_avp", "disable_6xx_block", "local_ack_mode", "failure_reply_mode",
		"faked_reply_prio", "remap_503_500", "failure_exec_mode", "dns_reuse_rcv_socket",
		"local_cancel_reason", "e2e_cancel_reason", "xavp_contact", "event_callback", "relay_100",
		"rich_redirect", "event_callback_lres_sent", "exec_time_check", "reply_relay_mode",
		"enable_uac_fr"}
}

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	return ksr.ModuleInfo{
		Name: "tm",
		Doc:  "server transactions, stateful replies and relaying",
		Params: []ksr.Param{
			{Name: "fr_timer", Set: m.paramTimer},
			{Name: "fr_inv_timer", Set: m.paramTimer},
			{Name: "auto_inv_100_reason", Set: m.paramInv100Reason},
		},
		Ignored: ignored(),
		Exports: append(exports(), ksr.Submodule{Name: "tm", Funcs: tmExportsMore()}),
	}
}

// paramTimer reads fr_timer or fr_inv_timer, in milliseconds as Kamailio.
func (m *Module) paramTimer(_ *ksr.Setup, st config.Stmt) error {
	n, err := config.IntParam(st, "tm", 1, 24*3600*1000)
	if err != nil {
		return err
	}
	d := time.Duration(n) * time.Millisecond
	if st.Param == "fr_timer" {
		m.set.FrTimer = d
	} else {
		m.set.FrInvTimer = d
	}
	return nil
}

// paramInv100Reason reads auto_inv_100_reason: a reason phrase on one line.
func (m *Module) paramInv100Reason(_ *ksr.Setup, st config.Stmt) error {
	v := st.Value
	if v.IsInt || v.Str == "" || strings.ContainsAny(v.Str, "\r\n") {
		return config.Errorf(st.Pos, "modparam tm %s: expected a reason phrase", st.Param)
	}
	m.set.Inv100Reason = v.Str
	return nil
}
