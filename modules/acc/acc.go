// Package acc is Kamailio's acc module in kemi: transaction accounting to
// the log and to the database (acc and missed_calls, Kamailio's layout,
// through package kdb), driven by message flags as Kamailio 5.6 does it
// (log_flag, log_missed_flag, db_flag, db_missed_flag,
// failed_transaction_flag, failed_filter) with log_extra/db_extra values
// read from the request's pseudo-variables; and KSR.acc.acc_log_request,
// acc_db_request and acc_request. The relay tells the module when a
// transaction fails or completes through ksr.TMCallback (ksr/tmcb.go).
// See docs/accounting.md.
//
// Files: settings and exports (this file), records (record.go).
//
// Concurrency: a Module is configured by one goroutine; afterwards its
// callbacks and exports run on any worker (the database is safe for
// concurrent use, the settings are read only).
package acc

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	"kemi/config"
	"kemi/kdb"
	"kemi/ksr"
)

// Settings are the module's parameters.
type Settings struct {
	LogFlag, LogMissedFlag, DBFlag, DBMissedFlag, FailedFlag int // -1: none
	FailedFilter                                             []int
	LogLevel                                                 slog.Level
	LogExtra, DBExtra                                        []extra
	ExtraNullable                                            bool
	DBURL                                                    string
	TableAcc, TableMissed                                    string
	// Cols are the core columns: method, from_tag, to_tag, callid,
	// sip_code, sip_reason (acc_*_column).
	Cols    [6]string
	TimeCol string
}

// extra is one log_extra/db_extra pair: a column (or log attribute) and
// the pseudo-variable giving its value.
type extra struct{ name, spec string }

// Module is one configuration's acc.
type Module struct {
	set Settings
	db  atomic.Pointer[kdb.DB]
	lg  *slog.Logger
}

var (
	_ ksr.Provisioner = (*Module)(nil)
	_ ksr.Starter     = (*Module)(nil)
)

// New returns an acc module with Kamailio's defaults.
func New() *Module {
	return &Module{set: Settings{
		LogFlag: -1, LogMissedFlag: -1, DBFlag: -1, DBMissedFlag: -1, FailedFlag: -1,
		LogLevel: ksr.LevelNotice, TableAcc: "acc", TableMissed: "missed_calls",
		Cols:    [6]string{"method", "from_tag", "to_tag", "callid", "sip_code", "sip_reason"},
		TimeCol: "time",
	}}
}

// Settings returns the module's parameters.
func (m *Module) Settings() *Settings { return &m.set }

func (m *Module) log() *slog.Logger {
	if m.lg == nil {
		return slog.Default()
	}
	return m.lg
}

func intOf(st config.Stmt) (int, error) {
	n, err := strconv.Atoi(st.Value.String())
	if err != nil {
		return 0, config.Errorf(st.Pos, "acc %s: %q is not an integer", st.Name, st.Value.String())
	}
	return n, nil
}

// Info describes the module.
func (m *Module) Info() ksr.ModuleInfo {
	flag := func(dst *int) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error {
			n, err := intOf(st)
			if err != nil {
				return err
			}
			if n < -1 || n > 31 {
				return config.Errorf(st.Pos, "acc %s: flag %d out of range (-1..31)", st.Name, n)
			}
			*dst = n
			return nil
		}
	}
	str := func(dst *string) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error { *dst = st.Value.String(); return nil }
	}
	extras := func(dst *[]extra) func(*ksr.Setup, config.Stmt) error {
		return func(_ *ksr.Setup, st config.Stmt) error {
			x, err := parseExtra(st.Value.String())
			if err != nil {
				return config.Errorf(st.Pos, "acc %s: %v", st.Name, err)
			}
			*dst = x
			return nil
		}
	}
	// only0 is a parameter kemi honours at its default only.
	only0 := func(what string) func(*ksr.Setup, config.Stmt) error {
		return func(c *ksr.Setup, st config.Stmt) error {
			n, err := intOf(st)
			if err != nil {
				return err
			}
			if n != 0 {
				c.Notice(st.Pos, "acc %s %d: kemi does not account %s; the parameter is ignored", st.Name, n, what)
			}
			return nil
		}
	}
	col := func(i int) func(*ksr.Setup, config.Stmt) error { return str(&m.set.Cols[i]) }
	return ksr.ModuleInfo{
		Name: "acc",
		Doc:  "transaction accounting to the log and to the acc and missed_calls tables",
		Params: []ksr.Param{
			{Name: "log_flag", Set: flag(&m.set.LogFlag)},
			{Name: "log_missed_flag", Set: flag(&m.set.LogMissedFlag)},
			{Name: "db_flag", Set: flag(&m.set.DBFlag)},
			{Name: "db_missed_flag", Set: flag(&m.set.DBMissedFlag)},
			{Name: "failed_transaction_flag", Set: flag(&m.set.FailedFlag)},
			{Name: "failed_filter", Set: func(_ *ksr.Setup, st config.Stmt) error {
				var codes []int
				for _, f := range strings.Split(st.Value.String(), ",") {
					n, err := strconv.Atoi(strings.TrimSpace(f))
					if err != nil || n < 300 || n > 999 {
						return config.Errorf(st.Pos, "acc failed_filter: invalid code %q", f)
					}
					codes = append(codes, n)
				}
				m.set.FailedFilter = codes
				return nil
			}},
			{Name: "log_level", Set: func(_ *ksr.Setup, st config.Stmt) error {
				n, err := intOf(st)
				if err != nil {
					return err
				}
				m.set.LogLevel = ksr.LevelFromDebug(n) // L_NOTICE=1 ... as debug= reads them
				return nil
			}},
			{Name: "log_extra", Set: extras(&m.set.LogExtra)},
			{Name: "db_extra", Set: extras(&m.set.DBExtra)},
			{Name: "acc_extra_nullable", Set: func(_ *ksr.Setup, st config.Stmt) error {
				n, err := intOf(st)
				m.set.ExtraNullable = n == 1
				return err
			}},
			{Name: "db_url", Set: func(c *ksr.Setup, st config.Stmt) error {
				m.set.DBURL = kdb.Resolve(st.Value.String(), c.File)
				return nil
			}},
			{Name: "db_table_acc", Set: str(&m.set.TableAcc)},
			{Name: "db_table_missed_calls", Set: str(&m.set.TableMissed)},
			{Name: "acc_method_column", Set: col(0)},
			{Name: "acc_from_tag_column", Set: col(1)},
			{Name: "acc_to_tag_column", Set: col(2)},
			{Name: "acc_callid_column", Set: col(3)},
			{Name: "acc_sip_code_column", Set: col(4)},
			{Name: "acc_sip_reason_column", Set: col(5)},
			{Name: "acc_time_column", Set: str(&m.set.TimeCol)},
			{Name: "early_media", Set: only0("early media (1xx with a body)")},
			{Name: "report_ack", Set: only0("end-to-end ACKs")},
			{Name: "report_cancels", Set: only0("CANCELs")},
			{Name: "detect_direction", Set: only0("with the direction detected (From/To swapped upstream)")},
			{Name: "time_mode", Set: only0("time_mode other than 0 (the time column only)")},
		},
		// Kamailio 5.6.3's other acc parameters: multi-leg info, the
		// prepare flags, the Reason header, the syslog facility, the CDR
		// (dialog) accounting, insert modes, time formats and buffer
		// sizes change nothing in kemi.
		Ignored: []string{"multi_leg_info", "acc_prepare_flag", "acc_prepare_always", "reason_from_hf", "log_facility",
			"cdr_enable", "cdr_skip", "cdr_log_enable", "cdr_start_on_confirmed", "cdr_facility", "cdr_extra",
			"cdr_extra_nullable", "cdr_start_id", "cdr_end_id", "cdr_duration_id", "cdr_expired_dlg_enable",
			"db_insert_mode", "time_attr", "time_exten", "cdrs_table", "time_format", "clone_msg", "cdr_on_failed",
			"acc_extra_size", "cdr_extra_size"},
		Exports: []ksr.Submodule{{Name: "acc", Funcs: []ksr.Export{
			{Name: "acc_log_request", Func: m.accLogRequest, Ret: ksr.Int, Args: []string{"comment"},
				Doc: `Log the request as "ACC: request accounted:" with comment ("code reason" or a reason): 1, or -1 on error.`},
			{Name: "acc_db_request", Func: m.accDBRequest, Ret: ksr.Int, Args: []string{"comment", "dbtable"},
				Doc: "Write the request to dbtable with comment and db_extra: 1, or -1 on error."},
			{Name: "acc_request", Func: m.accRequest, Ret: ksr.Int, Args: []string{"comment", "dbtable"},
				Doc: "acc_log_request, then acc_db_request when db_url is set: the last one's result."},
		}}},
	}
}

// parseExtra is parse_acc_extra: "name=$pv;name2=$pv2".
func parseExtra(s string) ([]extra, error) {
	var out []extra
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("parse failed in <%s>: empty item", s)
		}
		name, spec, ok := strings.Cut(part, "=")
		name, spec = strings.TrimSpace(name), strings.TrimSpace(spec)
		if !ok || name == "" || strings.ContainsAny(name, " \t") || !strings.HasPrefix(spec, "$") {
			return nil, fmt.Errorf("parse failed in <%s> around %q", s, part)
		}
		out = append(out, extra{name, spec})
	}
	return out, nil
}

// Provision registers the transaction callbacks for the flags set.
func (m *Module) Provision(h ksr.Host) error {
	m.lg = h.Logger()
	if m.set.DBURL == "" {
		// Kamailio's mod_init: no database, no database flags.
		m.set.DBFlag, m.set.DBMissedFlag = -1, -1
	}
	var watched uint32
	for _, f := range []int{m.set.LogFlag, m.set.LogMissedFlag, m.set.DBFlag, m.set.DBMissedFlag, m.set.FailedFlag} {
		if f >= 0 {
			watched |= 1 << uint(f)
		}
	}
	if watched != 0 {
		h.Deps().AddTMCallback(watched, m.onTM)
	}
	return nil
}

// Start opens db_url: an unusable database fails the start.
func (m *Module) Start(ctx context.Context) error {
	if m.set.DBURL == "" {
		return nil
	}
	db, err := kdb.Open(m.set.DBURL)
	if err != nil {
		return fmt.Errorf("acc: %w", err)
	}
	m.db.Store(db)
	return nil
}

// Stop closes the database.
func (m *Module) Stop(ctx context.Context) error {
	if db := m.db.Swap(nil); db != nil {
		return db.Close()
	}
	return nil
}
