// Package xlog is Kamailio's xlog module in kemi: KSR.xlog, log messages
// whose text is a Kamailio format string ($ru, $hdr(From), $var(x)... are
// replaced by their values, a null one by "<null>"; ksr.Env.Format). The
// exports are sr_kemi_xlog_exports of xlog.c at 5.6.3: xdbg, xinfo,
// xnotice, xwarn, xerr, xalert, xcrit and xlog(level, text); each returns
// 1, or -1 when the text does not parse as a format (nothing is logged
// then), as ki_xlog_ex does. A message below the log level is neither
// formatted nor logged, and still gives 1.
//
// Concurrency: the module is configured once; its exports only read its
// settings and the calling VM's message (the parsed formats are cached
// per VM).
package xlog

import (
	"context"
	"log/slog"
	"strings"

	"kemi/config"
	"kemi/ksr"
)

// Module is one configuration's xlog.
type Module struct {
	prefix     string // prefix: put before every message ("" unless set)
	prefixMode int    // prefix_mode: 1 evaluates prefix as a format
}

// New returns xlog with kemi's default prefix: none (kemi's log lines
// say where they come from in their attributes).
func New() *Module { return &Module{} }

// Info describes the module. prefix and prefix_mode are honoured; the
// other modparams of xlog.c params[] at 5.6.3 are accepted and ignored:
// buf_size (kemi's messages have no length limit), force_color,
// long_format, log_colors and log_facility (kemi's log is slog, without
// colours or syslog facilities), methods_filter (it filters only the
// cfg functions in Kamailio, never the KEMI ones).
func (m *Module) Info() ksr.ModuleInfo {
	text := []string{"text"}
	return ksr.ModuleInfo{
		Name: "xlog",
		Doc:  "log messages with pseudo-variables",
		Params: []ksr.Param{
			{Name: "prefix", Set: m.setPrefix},
			{Name: "prefix_mode", Set: m.setPrefixMode},
		},
		Ignored: []string{"buf_size", "force_color", "long_format", "log_facility", "log_colors", "methods_filter"},
		Exports: []ksr.Submodule{{Name: "xlog", Funcs: []ksr.Export{
			{Name: "xdbg", Func: m.xdbg, Ret: ksr.Int, Args: text, Doc: "Log the formatted text at debug level: 1, or -1 if it does not parse."},
			{Name: "xinfo", Func: m.xinfo, Ret: ksr.Int, Args: text, Doc: "Log the formatted text at info level: 1, or -1 if it does not parse."},
			{Name: "xnotice", Func: m.xnotice, Ret: ksr.Int, Args: text, Doc: "Log the formatted text at notice level: 1, or -1 if it does not parse."},
			{Name: "xwarn", Func: m.xwarn, Ret: ksr.Int, Args: text, Doc: "Log the formatted text at warning level: 1, or -1 if it does not parse."},
			{Name: "xerr", Func: m.xerr, Ret: ksr.Int, Args: text, Doc: "Log the formatted text at error level: 1, or -1 if it does not parse."},
			{Name: "xalert", Func: m.xalert, Ret: ksr.Int, Args: text, Doc: "Log the formatted text at alert level: 1, or -1 if it does not parse."},
			{Name: "xcrit", Func: m.xcrit, Ret: ksr.Int, Args: text, Doc: "Log the formatted text at critical level: 1, or -1 if it does not parse."},
			{Name: "xlog", Func: m.xlog, Ret: ksr.Int, Args: []string{"level", "text"},
				Doc: "Log the formatted text at level L_ALERT, L_BUG, L_CRIT2, L_CRIT, L_ERR, L_WARN, L_NOTICE, L_INFO or L_DBG (any case; else L_ERR): 1, or -1."},
		}}},
	}
}

func (m *Module) setPrefix(_ *ksr.Setup, st config.Stmt) error {
	m.prefix = st.Value.String()
	return nil
}

func (m *Module) setPrefixMode(_ *ksr.Setup, st config.Stmt) (err error) {
	m.prefixMode, err = config.IntParam(st, "xlog", 0, 1)
	return err
}

func (m *Module) xdbg(e *ksr.Env, text string) int    { return m.log(e, ksr.LevelDbg, text) }
func (m *Module) xinfo(e *ksr.Env, text string) int   { return m.log(e, ksr.LevelInfo, text) }
func (m *Module) xnotice(e *ksr.Env, text string) int { return m.log(e, ksr.LevelNotice, text) }
func (m *Module) xwarn(e *ksr.Env, text string) int   { return m.log(e, ksr.LevelWarn, text) }
func (m *Module) xerr(e *ksr.Env, text string) int    { return m.log(e, ksr.LevelErr, text) }
func (m *Module) xalert(e *ksr.Env, text string) int  { return m.log(e, ksr.LevelAlert, text) }
func (m *Module) xcrit(e *ksr.Env, text string) int   { return m.log(e, ksr.LevelCrit, text) }

// xlog is ki_xlog: the level by name, L_ERR for an unknown one. L_BUG and
// L_CRIT2 are logged at critical level (Kamailio's -4 and -3 fall in
// between L_ALERT and L_CRIT; kemi has no such slog level).
func (m *Module) xlog(e *ksr.Env, level, text string) int {
	return m.log(e, levelOf(level), text)
}

func levelOf(name string) slog.Level {
	switch strings.ToLower(name) {
	case "l_alert":
		return ksr.LevelAlert
	case "l_bug", "l_crit2", "l_crit":
		return ksr.LevelCrit
	case "l_warn":
		return ksr.LevelWarn
	case "l_notice":
		return ksr.LevelNotice
	case "l_info":
		return ksr.LevelInfo
	case "l_dbg":
		return ksr.LevelDbg
	}
	return ksr.LevelErr
}

// log is ki_xlog_ex: 1 when the level is not printed, without parsing;
// -1 (logged) when text is not a valid format; else the text formatted
// and logged, and 1.
func (m *Module) log(e *ksr.Env, level slog.Level, text string) int {
	ctx := context.Background()
	if !e.D.Log.Enabled(ctx, level) {
		return 1
	}
	s, err := e.Format(text)
	if err != nil {
		e.D.Log.Error("xlog: error in parsing the format", "error", err)
		return -1
	}
	if m.prefix != "" {
		p := m.prefix
		if m.prefixMode == 1 {
			if p, err = e.Format(m.prefix); err != nil {
				p = m.prefix
			}
		}
		s = p + s
	}
	e.D.Log.Log(ctx, level, strings.TrimSuffix(s, "\n"), "worker", e.Name)
	return 1
}
