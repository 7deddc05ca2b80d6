package acc

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
)

// The texts of acc.h.
const (
	textRequest  = "ACC: request accounted: "
	textMissed   = "ACC: call missed: "
	textAnswered = "ACC: transaction answered: "
)

// record is acc_env plus core2strar: the core values of one accounting
// record. A value that is null in Kamailio (no tag, no Call-ID) is "".
type record struct {
	method, fromTag, toTag, callID, code, reason string
	at                                           time.Time
}

// tagOf returns the tag parameter of a From or To header.
func tagOf(params sip.HeaderParams) string {
	if params == nil {
		return ""
	}
	t, _ := params.Get("tag")
	return t
}

// core fills the request's values of r (core2strar): the method from the
// CSeq, the From tag, the To tag of to (the reply's To, or the request's),
// the Call-ID. fallbackTag is acc_env.to_tag (tm's tag of its local
// replies, for missed calls).
func core(req *sip.Request, to *sip.ToHeader, fallbackTag string) record {
	var r record
	if cs := req.CSeq(); cs != nil {
		r.method = string(cs.MethodName)
	}
	if f := req.From(); f != nil {
		r.fromTag = tagOf(f.Params)
	}
	if to == nil {
		to = req.To()
	}
	if to != nil {
		r.toTag = tagOf(to.Params)
	}
	if r.toTag == "" {
		r.toTag = fallbackTag
	}
	if id := req.CallID(); id != nil {
		r.callID = string(*id)
	}
	return r
}

// values evaluates extras on e's message: the value, and whether it is
// null (extra2strar).
func values(e *ksr.Env, xs []extra) ([]string, []bool) {
	vs, nulls := make([]string, len(xs)), make([]bool, len(xs))
	for i, x := range xs {
		v := e.PVValue(x.spec)
		if v == lua.LNil {
			nulls[i] = true
			continue
		}
		vs[i] = v.String()
	}
	return vs, nulls
}

// logRecord is acc_log_request: text, the timestamp, the core attributes
// and log_extra, as one line at log_level.
func (m *Module) logRecord(e *ksr.Env, text string, r record) {
	var b strings.Builder
	b.WriteString(text)
	b.WriteString("timestamp=")
	b.WriteString(strconv.FormatInt(r.at.Unix(), 10))
	for _, kv := range [...][2]string{{"method", r.method}, {"from_tag", r.fromTag}, {"to_tag", r.toTag},
		{"call_id", r.callID}, {"code", r.code}, {"reason", r.reason}} {
		b.WriteByte(';')
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(kv[1])
	}
	vs, _ := values(e, m.set.LogExtra)
	for i, x := range m.set.LogExtra {
		b.WriteByte(';')
		b.WriteString(x.name)
		b.WriteByte('=')
		b.WriteString(vs[i])
	}
	m.log().Log(context.Background(), m.set.LogLevel, b.String())
}

// dbRecord is acc_db_request: one row of table with the core columns,
// the time and db_extra. It returns 1, or -1 when the insert fails.
func (m *Module) dbRecord(e *ksr.Env, table string, r record) int {
	db := m.db.Load()
	if db == nil {
		m.log().Error("acc: db support not configured (db_url)", "table", table)
		return -1
	}
	c := m.set.Cols
	cols := append(c[:], make([]string, 0, len(m.set.DBExtra))...)
	vals := []any{r.method, r.fromTag, r.toTag, r.callID, r.code, r.reason}
	vs, nulls := values(e, m.set.DBExtra)
	for i, x := range m.set.DBExtra {
		cols = append(cols, x.name)
		if nulls[i] && m.set.ExtraNullable {
			vals = append(vals, nil)
		} else {
			vals = append(vals, vs[i])
		}
	}
	if err := db.InsertAcc(table, cols, vals, m.set.TimeCol, r.at); err != nil {
		m.log().Error("acc: failed to insert into database", "table", table, "error", err)
		return -1
	}
	return 1
}

// isSet is is_acc_flag_set.
func isSet(flags uint32, f int) bool { return f >= 0 && flags&(1<<uint(f)) != 0 }

// onTM is acc's tm callback: on_missed for a failed INVITE with a missed
// flag (TMCB_ON_FAILURE, then cleared so a serial fork is reported once),
// and acc_onreply for the final reply sent upstream (TMCB_RESPONSE_OUT):
// a missed call not reported yet, then the transaction when its flags ask
// (a negative one only with failed_transaction_flag and a code not in
// failed_filter).
func (m *Module) onTM(e *ksr.Env, ev *ksr.TMEvent) {
	req := ev.Req.Request()
	if req == nil {
		return
	}
	flags := ev.Req.Flags
	invite := req.IsInvite()
	s := &m.set
	missed := invite && ev.Code >= 300 && (isSet(flags, s.LogMissedFlag) || isSet(flags, s.DBMissedFlag))
	if ev.Type == ksr.TMOnFailure {
		if missed {
			ev.ResetFlags |= m.onMissed(e, ev, req, flags)
		}
		return
	}
	if missed {
		m.onMissed(e, ev, req, flags)
	}
	if !m.shouldAcc(flags, ev.Code) {
		return
	}
	r := m.replyRecord(e, ev, req, localTag(ev))
	if isSet(flags, s.LogFlag) {
		m.logRecord(e, textAnswered, r)
	}
	if isSet(flags, s.DBFlag) {
		m.dbRecord(e, s.TableAcc, r)
	}
}

// replyRecord is the record of a transaction's reply: the To of the
// reply (the request's for a local one), the code and reason (a local
// reply's reason is Kamailio's error_text of its code).
func (m *Module) replyRecord(e *ksr.Env, ev *ksr.TMEvent, req *sip.Request, toTag string) record {
	var to *sip.ToHeader
	reason := ev.Reason
	if ev.Res != nil {
		to = ev.Res.To()
	} else {
		reason = errorText(ev.Code)
	}
	r := core(req, to, toTag)
	r.code, r.reason, r.at = strconv.Itoa(ev.Code), reason, e.D.Now()
	return r
}

// localTag is the To tag of tm's local reply when the reply is local
// (acc's env_set_totag; Kamailio keeps it in a per-process variable that
// the transaction's later records reuse), else "".
func localTag(ev *ksr.TMEvent) string {
	if ev.Res == nil {
		return ev.ToTag
	}
	return ""
}

// onMissed reports a missed call and returns the flags to clear.
func (m *Module) onMissed(e *ksr.Env, ev *ksr.TMEvent, req *sip.Request, flags uint32) uint32 {
	s := &m.set
	r := m.replyRecord(e, ev, req, localTag(ev))
	var reset uint32
	if isSet(flags, s.LogMissedFlag) {
		m.logRecord(e, textMissed, r)
		reset |= 1 << uint(s.LogMissedFlag)
	}
	if isSet(flags, s.DBMissedFlag) {
		m.dbRecord(e, s.TableMissed, r)
		reset |= 1 << uint(s.DBMissedFlag)
	}
	return reset
}

// shouldAcc is should_acc_reply for a final reply.
func (m *Module) shouldAcc(flags uint32, code int) bool {
	s := &m.set
	if code >= 300 {
		if !isSet(flags, s.FailedFlag) {
			return false
		}
		for _, f := range s.FailedFilter {
			if f == code {
				return false
			}
		}
		return true
	}
	return isSet(flags, s.LogFlag) || isSet(flags, s.DBFlag)
}

// comment is acc_param_parse: "code reason" or a reason alone.
func comment(s string) (code, reason string, ok bool) {
	if s == "" || strings.Contains(s, "$") {
		return "", "", false
	}
	if len(s) >= 3 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) {
		return s[:3], strings.TrimLeft(s[3:], " \t\r\n\v\f"), true
	}
	return "", s, true
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// requestRecord is the record of the current request for the KSR.acc
// functions, or false when there is none.
func (m *Module) requestRecord(e *ksr.Env, cmt string) (record, bool) {
	code, reason, ok := comment(cmt)
	if !ok {
		m.log().Error("acc: invalid comment (a cfg variable, or empty)", "comment", cmt)
		return record{}, false
	}
	req := e.Msg.Request()
	if req == nil {
		m.log().Error("acc: failed to preparse request")
		return record{}, false
	}
	r := core(req, nil, "")
	r.code, r.reason, r.at = code, reason, e.D.Now()
	return r, true
}

func (m *Module) accLogRequest(e *ksr.Env, cmt string) int {
	r, ok := m.requestRecord(e, cmt)
	if !ok {
		return -1
	}
	m.logRecord(e, textRequest, r)
	return 1
}

// tableTooBig is acc's check of a table name given to a function (it must
// fit Kamailio's 64-byte buffer), logged.
func (m *Module) tableTooBig(table string) bool {
	if len(table) >= 64 {
		m.log().Error("acc: db table name too big", "table", table)
		return true
	}
	return false
}

func (m *Module) accDBRequest(e *ksr.Env, cmt, table string) int {
	r, ok := m.requestRecord(e, cmt)
	if !ok {
		return -1
	}
	if m.tableTooBig(table) {
		return -1
	}
	return m.dbRecord(e, table, r)
}

func (m *Module) accRequest(e *ksr.Env, cmt, table string) int {
	r, ok := m.requestRecord(e, cmt)
	if !ok {
		return -1
	}
	if m.tableTooBig(table) {
		return -1
	}
	m.logRecord(e, textRequest, r)
	ret := 1
	if m.db.Load() != nil {
		ret = m.dbRecord(e, table, r)
	}
	return ret
}

// errorText is Kamailio's error_text (core/error.c): the reason acc
// records for a locally generated reply.
func errorText(code int) string {
	if t, ok := reasonOf(code); ok {
		return t
	}
	switch {
	case code >= 600:
		return "Global Failure"
	case code >= 500:
		return "Server Failure"
	case code >= 400:
		return "Request Failure"
	case code >= 300:
		return "Redirection"
	case code >= 200:
		return "Successful"
	case code >= 100:
		return "Provisional"
	}
	return "Unspecified"
}

// reasonOf is error_text's table.
func reasonOf(code int) (string, bool) {
	switch code {
	case 100:
		return "Trying", true
	case 180:
		return "Ringing", true
	case 181:
		return "Call Is Being Forwarded", true
	case 182:
		return "Queued", true
	case 183:
		return "Session Progress", true
	case 200:
		return "OK", true
	case 300:
		return "Multiple Choices", true
	case 301:
		return "Moved Permanently", true
	case 302:
		return "Moved Temporarily", true
	case 305:
		return "Use Proxy", true
	case 380:
		return "Alternative Service", true
	case 400:
		return "Bad Request", true
	case 401:
		return "Unauthorized", true
	case 402:
		return "Payment Required", true
	case 403:
		return "Forbidden", true
	case 404:
		return "Not Found", true
	case 405:
		return "Method Not Allowed", true
	case 406:
		return "Not Acceptable", true
	case 407:
		return "Proxy Authentication Required", true
	case 408:
		return "Request Timeout", true
	case 410:
		return "Gone", true
	case 413:
		return "Request Entity Too Large", true
	case 414:
		return "Request-URI Too Long", true
	case 415:
		return "Unsupported Media Type", true
	case 416:
		return "Unsupported URI Scheme", true
	case 417:
		return "Bad Extension", true
	case 421:
		return "Extension Required", true
	case 423:
		return "Interval Too Brief", true
	case 480:
		return "Temporarily Unavailable", true
	case 481:
		return "Call/Transaction Does Not Exist", true
	case 482:
		return "Loop Detected", true
	case 483:
		return "Too Many Hops", true
	case 484:
		return "Address Incomplete", true
	case 485:
		return "Ambiguous", true
	case 486:
		return "Busy Here", true
	case 487:
		return "Request Terminated", true
	case 488:
		return "Not Acceptable Here", true
	case 491:
		return "Request Pending", true
	case 500:
		return "Server Internal Error", true
	case 501:
		return "Not Implemented", true
	case 502:
		return "Bad Gateway", true
	case 503:
		return "Service Unavailable", true
	case 504:
		return "Server Time-Out", true
	case 505:
		return "Version Not Supported", true
	case 513:
		return "Message Too Large", true
	case 600:
		return "Busy Everywhere", true
	case 603:
		return "Decline", true
	case 604:
		return "Does Not Exist Anywhere", true
	case 606:
		return "Not Acceptable", true
	}
	return "", false
}
