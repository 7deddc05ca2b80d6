package ksr

import (
	"kemi/kdb"
	"kemi/stats"
	"log/slog"
	"net/netip"
	"regexp"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/sipnet"
)

// RouteType is the kind of callback running, as Kamailio's route types.
type RouteType int

const (
	RouteRequest RouteType = iota // ksr_request_route
	RouteReply                    // ksr_reply_route (core reply route)
	RouteFailure                  // t_on_failure callbacks and async resumes
	RouteBranch                   // t_on_branch callbacks
	RouteOnReply                  // t_on_reply callbacks
	RouteEvent                    // rtimer, async data tasks, pre-routing, other events
)

// Branch is one entry of the destination set (Kamailio's branch_t): the
// request URI of a branch and its destination, path, q and flags.
type Branch struct {
	URI, DstURI, Path string
	Q                 int // q * 1000; -1: unspecified
	Flags             uint32
	Instance, Ruid    string
	UserAgent         string
}

// MaxBranches is Kamailio's default max_branches (sr_dst_max_branches):
// the R-URI's branch and the destination set together.
const MaxBranches = 12

// AppendBranch adds b to the destination set: false when it is full
// (Kamailio's "max nr of branches exceeded").
func (m *Msg) AppendBranch(b Branch) bool {
	if len(m.Branches) >= MaxBranches-1 {
		return false
	}
	m.Branches = append(m.Branches, b)
	return true
}

// Msg is the message one event acts on: a received request or reply, or a
// faked request for events that have none (timers). It may travel between
// VMs (async resume, sworker delegation), so it holds only Go values.
type Msg struct {
	Req   *sipnet.Request  // set for requests (received or faked)
	Res   *sipnet.Response // set for replies
	Route RouteType
	Faked bool

	// PreRouting is true while the pre-routing callback runs.
	PreRouting bool
	// Drop is set by KSR.x.drop / KSR.set_drop.
	Drop bool
	// Delegated is set when KSR.sworker.task handed the message to a group.
	Delegated bool
	// Suspended is set when KSR.async suspended the request: the engine hands
	// it to a waiter instead of finishing it.
	Suspended bool

	// DstURI is $du.
	DstURI string
	// ReplyHdrs are added to locally generated replies (append_to_reply).
	ReplyHdrs []sip.Header
	// ReplyBody is the body of locally generated replies
	// (textops set_reply_body; its Content-Type is in ReplyHdrs).
	ReplyBody []byte
	// AddrEdits are the From/To changes made with $fu, $fU, $fd, $fn and
	// the To counterparts: applied to the copies the request is forwarded
	// as (ApplyEdits), while reads still see the received headers, as
	// Kamailio's lumps.
	AddrEdits []AddrEdit
	// AVPs are $avp(name) values (string or int64), a stack per name,
	// oldest first; they travel with the message across an async resume.
	AVPs map[string][]any
	// XAVPs are the $xavp(...) items by name, newest first.
	XAVPs map[string][]*XAVP
	// XAVUs are the $xavu(...) values: one item per name, fields unique.
	XAVUs map[string]*XAVP
	// Kept is set when a route called a KSR function that may keep a
	// reference to the message (one not declared Export.NoRetain): the
	// engine then leaves the request's memory to the collector instead of
	// reusing it.
	Kept bool
	// Time is the message's time for $Ts/$TV(s): zero until a route first
	// reads one of them (then the clock's time, kept for the rest of the
	// message's routing), or set by whoever starts the routing.
	Time time.Time

	// Flags are the message flags 0..31 (KSR.setflag/resetflag/isflagset);
	// a relayed request's flags are seen by its failure and reply routes.
	Flags uint32
	// BFlags are the branch flags of branch 0, the R-URI's (KSR.setbflag;
	// core_more.go); the other branches' are in Branches.
	BFlags uint32
	// PathVec is branch 0's path vector (registrar lookup of a contact
	// with a Path): Route headers the relayed copy gets first.
	PathVec string
	// Branches is the destination set: branches 1..n added by
	// KSR.corex.append_branch*, registrar lookup (append_branches) and
	// lookup_to_dset. t_relay sends the R-URI's branch (unless consumed)
	// and one per entry, then empties the set, as Kamailio's dset.
	Branches []Branch
	// RuriConsumed is Kamailio's !ruri_is_new: t_relay has used the R-URI
	// for a branch and it was not set again since (a new R-URI is
	// available for forking again).
	RuriConsumed bool
	// ForceRport, ReplyNoConnect, ReplyClose, ForwardNoConnect and
	// ForwardClose are KSR.force_rport and the KSR.set_*_no_connect /
	// set_*_close marks (core_more.go).
	ForceRport, ReplyNoConnect, ReplyClose, ForwardNoConnect, ForwardClose bool
	// OnFailure, OnReply and OnBranch are the Lua functions armed with
	// KSR.tm.t_on_failure / t_on_reply / t_on_branch (modules/tm).
	OnFailure, OnReply, OnBranch string
	// BranchIndex is the index of the branch a branch route runs for
	// ($T_branch_idx).
	BranchIndex int
	// RR is rr's state for this message (modules/rr).
	RR RRState
	// TM is the reply a failure route runs for (relay.go), nil elsewhere.
	TM *TMReply
}

// RRState is what rr remembers about a message: the Record-Route it
// added (add_rr_param extends it), the parameters add_rr_param stored
// before it, and the parameters of the Route URI loose_route consumed
// (check_route_param, is_direction).
type RRState struct {
	// Done is set once a Record-Route was added (rr's FL_RR_ADDED): a second
	// record_route* fails.
	Done         bool
	Added        *sip.RecordRouteHeader
	Params       string
	Routed       bool
	RoutedParams string
}

// SIP returns the underlying sipgo message (request or reply), or nil.
func (m *Msg) SIP() sip.Message {
	switch {
	case m == nil:
		return nil
	case m.Req != nil:
		return m.Req.Msg
	case m.Res != nil:
		return m.Res.Msg
	}
	return nil
}

// Request returns the sipgo request or nil.
func (m *Msg) Request() *sip.Request {
	if m == nil || m.Req == nil {
		return nil
	}
	return m.Req.Msg
}

// Deps are the engine services the bindings use, shared by every VM.
type Deps struct {
	Log      *slog.Logger
	Now      func() time.Time
	Started  time.Time
	Version  string
	Shv      *SharedVars
	Relay    Relay // stateful/stateless forwarding (relay.go); nil without network
	Myself   func() []netip.AddrPort
	Aliases  []string
	Hostname string
	// CheckSelf are more checks for KSR.is_myself and loose routing, added
	// by modules while provisioning (corex's alias_subdomains): Kamailio's
	// register_check_self_func.
	CheckSelf []func(host string, port int) bool
	// Table is every KSR function; each VM's KSR is built from it.
	Table *Table
	// PVs are the pseudo-variable classes the modules add, by name.
	PVs map[string]*PV
	// VarInit are the initial $var values of every VM (pv's varset),
	// string or int64; nil when none.
	VarInit map[string]any
	// TMCallbacks are told when a relayed transaction fails or completes
	// (AddTMCallback, tmcb.go): acc's accounting.
	TMCallbacks []TMCallback
	// TMFlags are the message flags some callback watches: a transaction
	// with none of them set runs no callback.
	TMFlags uint32
	// Stats are Kamailio's statistics (core:, sl:, tmx: ...); nil counts
	// nothing.
	Stats *stats.Registry
	// DB are the database drivers' connection settings by URL scheme
	// ("mysql": db_mysql's modparams), set while the driver modules are
	// provisioned; modules open their db_url with DBOptions (db.go).
	DB      map[string]kdb.Options
	replies *replyStats // the reply counters of Stats (ResolveReplyStats)

	locals int // per-VM slots handed out (NewLocal)
}

// Env is one VM's private state: Kamailio's per-process memory.
type Env struct {
	D     *Deps
	Msg   *Msg
	Name  string // worker name, e.g. "receiver/0"
	Group string // worker group, e.g. "receivers", "default", "rtimer:t1"
	Index int    // index within the group ($rtimer_worker)

	// AsyncWorker is true in async worker groups (KSR.async.get_gname).
	AsyncWorker bool
	// AsyncData is the data of the running async data task, when
	// InAsyncData is true (Kamailio's _ksr_async_data_param: "" is a
	// task's empty data, not no task).
	AsyncData   string
	InAsyncData bool
	// Runner is the worker that owns the VM (nil for a scratch VM):
	// KSR.async.sleep suspends and resumes its coroutines.
	Runner Runner

	vars     map[string]lua.LValue
	pvCache  map[string]*pvSpec
	reCache  map[string]*regexp.Regexp // Regexp's compiled expressions
	fmtCache map[string]*pvFormat      // parsed format strings (pvformat.go)
	sflags   uint32                    // script flags: per VM, as per process in Kamailio
	locals   []any                     // the modules' per-VM state (LocalOf)
	faked    *Msg
}

// NewEnv returns the private state of one VM.
func NewEnv(d *Deps, name, group string, index int) *Env {
	e := &Env{D: d, Name: name, Group: group, Index: index,
		vars: map[string]lua.LValue{}, pvCache: map[string]*pvSpec{}}
	for k, v := range d.VarInit {
		e.vars[k] = fromGo(v)
	}
	return e
}

// Faked returns a fresh faked-request context for events without a message
// (Kamailio's faked OPTIONS request).
func (e *Env) Faked(route RouteType) *Msg {
	return &Msg{Req: sipnet.NewFakeRequest(fakedRequest()), Route: route, Faked: true, Time: e.D.Now()}
}

// fakedRaw is Kamailio's faked request (core/fmsg.c).
const fakedRaw = "OPTIONS sip:you@kamailio.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n" +
	"From: <sip:you@kamailio.org>;tag=notag\r\nTo: <sip:you@kamailio.org>;tag=notag\r\n" +
	"Call-ID: 0\r\nMax-Forwards: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"

func fakedRequest() *sip.Request {
	m, err := sip.ParseMessage([]byte(fakedRaw))
	if err != nil {
		panic("ksr: faked request does not parse: " + err.Error())
	}
	return m.(*sip.Request)
}

// SharedVars holds $shv values (string or int64), shared by every VM.
type SharedVars struct {
	mu sync.RWMutex
	m  map[string]any
}

// NewSharedVars returns an empty $shv store.
func NewSharedVars() *SharedVars { return &SharedVars{m: map[string]any{}} }

// Get returns the value of name (string or int64) or nil.
func (s *SharedVars) Get(name string) any {
	s.mu.RLock()
	v := s.m[name]
	s.mu.RUnlock()
	return v
}

// Set sets name; a nil value unsets it.
func (s *SharedVars) Set(name string, v any) {
	s.mu.Lock()
	if v == nil {
		delete(s.m, name)
	} else {
		s.m[name] = v
	}
	s.mu.Unlock()
}

// srcAddr is the source of the current message ($si/$sp).
func (e *Env) srcAddr() (netip.AddrPort, bool) {
	switch {
	case e.Msg == nil:
	case e.Msg.Req != nil && e.Msg.Req.Src.IsValid():
		return e.Msg.Req.Src, true
	case e.Msg.Res != nil && e.Msg.Res.Src.IsValid():
		return e.Msg.Res.Src, true
	}
	return netip.AddrPort{}, false
}

// rcvAddr is the local socket the current message came in on ($Ri/$Rp).
func (e *Env) rcvAddr() (netip.AddrPort, bool) {
	switch {
	case e.Msg == nil:
	case e.Msg.Req != nil && e.Msg.Req.Listener != nil:
		return e.Msg.Req.Listener.Addr, true
	case e.Msg.Res != nil && e.Msg.Res.Listener != nil:
		return e.Msg.Res.Listener.Addr, true
	}
	return netip.AddrPort{}, false
}

// PVString returns the value of the pseudo-variable name as a string
// (false when it is null or invalid).
func (e *Env) PVString(name string) (string, bool) {
	s, err := e.pvParse(name)
	if err != nil {
		return "", false
	}
	v := s.get(e, s)
	if v == lua.LNil {
		return "", false
	}
	return v.String(), true
}

// SetPV sets a writable pseudo-variable to v (an empty string stays a
// string: $avp(x) gets "" on top).
func (e *Env) SetPV(name string, v lua.LValue) bool {
	s, err := e.pvParse(name)
	if err != nil || s.set == nil {
		return false
	}
	return s.set(e, s, v)
}

// SetPVString sets a writable pseudo-variable; an empty value sets it to
// null, as sworker's xdata does.
func (e *Env) SetPVString(name, val string) bool {
	s, err := e.pvParse(name)
	if err != nil || s.set == nil {
		return false
	}
	var v lua.LValue = lua.LNil
	if val != "" {
		v = lua.LString(val)
	}
	return s.set(e, s, v)
}
