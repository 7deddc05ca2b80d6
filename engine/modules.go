package engine

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"kemi/config"
	"kemi/queues"

	"kemi/ksr"
	"kemi/modules/acc"
	"kemi/modules/applua"
	"kemi/modules/async"
	"kemi/modules/auth"
	"kemi/modules/auth_db"
	"kemi/modules/corex"
	"kemi/modules/ctl"
	"kemi/modules/db_mysql"
	"kemi/modules/htable"
	"kemi/modules/jsonrpcs"
	"kemi/modules/kx"
	"kemi/modules/maxfwd"
	"kemi/modules/mqueue"
	"kemi/modules/nathelper"
	"kemi/modules/permissions"
	"kemi/modules/pike"
	"kemi/modules/pv"
	"kemi/modules/registrar"
	"kemi/modules/rr"
	"kemi/modules/rtimer"
	"kemi/modules/rtpengine"
	"kemi/modules/rtpproxy"
	"kemi/modules/runtimefree"
	"kemi/modules/sanity"
	"kemi/modules/siputils"
	"kemi/modules/sl"
	"kemi/modules/statistics"
	"kemi/modules/sworker"
	"kemi/modules/textops"
	tlsmod "kemi/modules/tls"
	"kemi/modules/tm"
	"kemi/modules/usrloc"
	"kemi/modules/websocket"
	"kemi/modules/xhttp"
	"kemi/modules/xhttp_prom"
	"kemi/modules/xlog"
)

// moduleTable returns a fresh instance of every module that has a home of
// its own, in order: the configuration's modparams are read into them,
// their runtimes are provisioned and started in this order, and stopped in
// reverse. Adding a module is one line here (and its home under modules/).
// Modules are made fresh for each configuration: they hold its settings.
func moduleTable() []ksr.Module {
	ul := usrloc.New()
	au := auth.New()
	mods := []ksr.Module{
		ksr.Core(),
		applua.New(),
		pv.New(),       // $shv's shvset values, before any runtime reads them
		db_mysql.New(), // provisioned first: usrloc, auth_db... open mysql:// db_urls with its settings
		mqueue.New(),   // first runtime started, last stopped: queues load before traffic, save after it
		async.New(),    // started before the worker groups, stopped after: handlers release suspended requests until they stop
		rtimer.New(),   // timers start after the workers groups (engine.go), with the receivers
		sworker.New(),
		maxfwd.New(),
		sl.New(),
		tm.New(),
		tm.NewTMX(),
		rr.New(),
		kx.New(),
		siputils.New(),
		sanity.New(),
		htable.New(), // tables load from db_url before traffic, save after it
		pike.New(),
		rtpproxy.New(), // relay sockets opened and tested before traffic
		rtpengine.New(),
		ul,                // the location table: loaded from db_url before traffic, flushed after it
		registrar.New(ul), // binds usrloc, as Kamailio's registrar does
		nathelper.New(ul), // its keepalives read usrloc's contacts
		au,
		auth_db.New(au),   // binds auth's digest check
		permissions.New(), // the address table: loaded from db_url before traffic
		acc.New(),         // told of relayed transactions by the relay (ksr.TMCallback)
		tlsmod.New(),      // read before the listeners start (they take its sipnet.TLSConfig)
		xhttp.New(),       // HTTP on the tcp/tls listeners (sipnet.Options.HTTP)
		websocket.New(),
		xlog.New(),
		corex.New(),
		textops.New(),
		ctl.New(),
		jsonrpcs.New(),
		xhttp_prom.New(),
		statistics.New(),
	}
	return append(mods, runtimefree.Modules()...)
}

// module returns the configuration's module named name, or nil. It is on
// per-message paths (Settings.TM for every relay), and a module's Info
// builds its export table: the index built by wireModules answers without
// calling Info.
func (s *Settings) module(name string) ksr.Module {
	if m, ok := s.modIdx[name]; ok {
		return m
	}
	for _, m := range s.Mods {
		if m.Info().Name == name {
			return m
		}
	}
	return nil
}

// indexModules builds the name index of s.Mods that module reads (the
// first module of a name wins, as in the table's order).
func (s *Settings) indexModules() {
	s.modIdx = make(map[string]ksr.Module, len(s.Mods))
	for _, m := range s.Mods {
		if n := m.Info().Name; s.modIdx[n] == nil {
			s.modIdx[n] = m
		}
	}
}

// AppLua returns the configuration's app_lua settings: the scripts and
// their bounds.
func (s *Settings) AppLua() *applua.Settings {
	return s.module("app_lua").(*applua.Module).Settings()
}

// Mqueue returns the configuration's mqueue settings.
func (s *Settings) Mqueue() *mqueue.Settings {
	return s.module("mqueue").(*mqueue.Module).Settings()
}

// giveDefines is the one hook for modules that read the configuration's
// #!define names at run time (kemix: KSR.kx.ifdef, get_def): FromConfig
// calls it once the whole file is read, with the defines in force at its
// end, to which it adds the names Kamailio 5.6.3 defines itself at run
// time: KAMAILIO_5, KAMAILIO_5_6, KAMAILIO_5_6_3 and MOD_<name> for each
// loaded module (kemi's preprocessor does not know them while reading).
func (s *Settings) giveDefines(defs map[string]string) {
	all := map[string]string{"KAMAILIO_5": "", "KAMAILIO_5_6": "", "KAMAILIO_5_6_3": ""}
	for m := range s.Modules {
		all["MOD_"+m] = ""
	}
	for k, v := range defs {
		all[k] = v
	}
	s.module("kemix").(*kx.Module).SetDefines(all)
}

// wireModules gives the modules that use another module their hooks, before
// the configuration is read (the hooks read the other module's settings or
// runtime when called):
//
//   - async's 100 on a suspended INVITE carries tm's auto_inv_100_reason, as
//     Kamailio's t_suspend sends it;
//   - rtimer's cluster=one timers take their leases on the NATS connection
//     of mqueue's nats:// db_url (mqueueCluster);
//   - htable's dmqreplicate tables, without htable's own nats_url, are
//     replicated on that connection too.
func (s *Settings) wireModules() {
	s.module("async").(*async.Module).SetInv100Reason(func() string { return s.TM().Inv100Reason })
	s.module("rtimer").(*rtimer.Module).SetCluster(&mqueueCluster{s: s})
	s.module("htable").(*htable.Module).SetCluster(&mqueueCluster{s: s})
}

// mqueueCluster is rtimer's cluster hook (rtimer.Cluster): the leases of
// cluster=one timers live in JetStream key-value buckets, on the connection
// mqueue opens for its nats:// db_url (docs/cluster.md). mqueue starts before
// rtimer and stops after it, so the connection is up while timers run.
type mqueueCluster struct {
	s      *Settings
	holder string // this engine in the leases, made at the first Lease
}

// Configured reports whether mqueue is loaded with a nats:// db_url.
func (c *mqueueCluster) Configured() bool {
	_, ok := c.s.Modules["mqueue"]
	return ok && queues.IsNATSURL(c.s.Mqueue().DBURL)
}

// Lease returns the lease called name on mqueue's JetStream connection. The
// holder is unique per engine: host name, process id and a random part (two
// engines of one process, as in tests, are two holders).
func (c *mqueueCluster) Lease(name string, ttl time.Duration) (rtimer.Lease, error) {
	js := c.s.module("mqueue").(*mqueue.Module).JetStream()
	if js == nil {
		return nil, errors.New("mqueue's nats db_url is not connected")
	}
	if c.holder == "" {
		host, _ := os.Hostname()
		c.holder = fmt.Sprintf("%s pid %d %s", host, os.Getpid(), rand.Text())
	}
	return js.Lease(name, c.holder, ttl)
}

// JetStream returns mqueue's NATS connection once started, else nil
// (htable.Cluster).
func (c *mqueueCluster) JetStream() *queues.JetStream {
	return c.s.module("mqueue").(*mqueue.Module).JetStream()
}

// tlsModule returns the tls module when the configuration loads it, else nil.
func (s *Settings) tlsModule() *tlsmod.Module {
	if _, ok := s.Modules["tls"]; !ok {
		return nil
	}
	return s.module("tls").(*tlsmod.Module)
}

// xhttpModule returns the xhttp module when the configuration loads it, else nil.
func (s *Settings) xhttpModule() *xhttp.Module {
	if _, ok := s.Modules["xhttp"]; !ok {
		return nil
	}
	return s.module("xhttp").(*xhttp.Module)
}

// Modules returns every module kemi has, in table order (fresh values).
func Modules() []ksr.Module { return moduleTable() }

// Exports returns the export table of every module kemi has, loaded or
// not: what `kemi stubs` declares.
func Exports() (*ksr.Table, error) { return ksr.NewTable(moduleTable()...) }

// moduleNames lists the modules a configuration may load.
func (s *Settings) moduleNames() string {
	var n []string
	for _, m := range s.Mods {
		if info := m.Info(); info.Name != "core" {
			n = append(n, info.Name)
		}
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// TM returns the configuration's tm settings: fr_timer and fr_inv_timer,
// which the relay (relay.go) honours.
func (s *Settings) TM() *tm.Settings {
	return s.module("tm").(*tm.Module).Settings()
}

// Rtimer returns the configuration's rtimer settings.
func (s *Settings) Rtimer() *rtimer.Settings {
	return s.module("rtimer").(*rtimer.Module).Settings()
}

// RtimerStat holds the counters of one rtimer timer.
type RtimerStat = rtimer.Stat

// RtimerStats returns the counters of each rtimer timer, in definition
// order (none before Start or without timers). Safe for concurrent use.
func (e *Engine) RtimerStats() []RtimerStat {
	return e.set.module("rtimer").(*rtimer.Module).Stats()
}

// Sworker returns the configuration's sworker settings.
func (s *Settings) Sworker() *sworker.Settings {
	return s.module("sworker").(*sworker.Module).Settings()
}

// Async returns the configuration's async settings.
func (s *Settings) Async() *async.Settings {
	return s.module("async").(*async.Module).Settings()
}

// asyncModule returns the async module when it is loaded, else nil.
func (e *Engine) asyncModule() *async.Module {
	if _, ok := e.set.Modules["async"]; !ok {
		return nil
	}
	return e.set.module("async").(*async.Module)
}

// Jsonrpcs returns the configuration's jsonrpcs settings.
func (s *Settings) Jsonrpcs() *jsonrpcs.Settings {
	return s.module("jsonrpcs").(*jsonrpcs.Module).Settings()
}

// rpcListen is the HTTP control plane's address and where the
// configuration set it: jsonrpcs' http_listen, else the core's rpc_listen.
func (s *Settings) rpcListen() (string, config.Pos) {
	if j := s.Jsonrpcs(); j.HTTPListen != "" {
		return j.HTTPListen, j.HTTPListenAt
	}
	return s.RPCListen, s.RPCListenAt
}
