package rtpengine

import (
	"context"
	"errors"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/modules/internal/rtprelay"
)

// The ng commands (command_strings at 5.6.3).
const (
	opOffer  = "offer"
	opAnswer = "answer"
	opDelete = "delete"
	opQuery  = "query"
)

var transports = map[int]string{0: "RTP/AVP", 1: "RTP/SAVP", 2: "RTP/AVPF", 3: "RTP/SAVPF", 4: "UDP/TLS/RTP/SAVP", 6: "UDP/TLS/RTP/SAVPF"}

// ngFlags is ng_flags_parse: what the flags string adds to the
// dictionary besides its generic entries.
type ngFlags struct {
	d                         *dict
	direction, flags, replace []string
	rtcpMux, sdes, t38        []string
	codec                     *dict
	codecLists                map[string]*[]string
	transport                 int
	callID, fromTag, toTag    string
	to, directional           bool
	via                       int
}

// keyValPrefix is str_key_val_prefix: key is q with value v, or q-suffix.
func keyValPrefix(key, q, val string, hasVal bool) (string, bool) {
	if key == q {
		if !hasVal || val == "" {
			return "", false
		}
		return val, true
	}
	if !strings.HasPrefix(key, q) {
		return "", false
	}
	rest := key[len(q):]
	if len(rest) < 2 || rest[0] != '-' {
		return "", false
	}
	return rest[1:], true
}

func (f *ngFlags) codecFlag(key, val string, hasVal bool, cmp1, cmp2, name string) bool {
	s, ok := keyValPrefix(key, cmp1, val, hasVal)
	if !ok && cmp2 != "" {
		s, ok = keyValPrefix(key, cmp2, val, hasVal)
	}
	if !ok {
		return false
	}
	if f.codec == nil { // not an offer or answer: the flag is dropped
		return true
	}
	l := f.codecLists[name]
	if l == nil {
		l = &[]string{}
		f.codecLists[name] = l
		f.codec.add(name, l)
	}
	*l = append(*l, s)
	return true
}

// parse is parse_flags; op may become answer (force-answer).
func (f *ngFlags) parse(s string, op *string) error {
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return nil
		}
		end := strings.IndexAny(s, " =")
		key, val, hasVal := s, "", false
		rest := ""
		if end < 0 {
			key = s
		} else if s[end] == '=' {
			key = s[:end]
			v := s[end+1:]
			e := strings.IndexByte(v, ' ')
			if e < 0 {
				e = len(v)
			}
			val, hasVal, rest = v[:e], true, v[e:]
		} else {
			key, rest = s[:end], s[end:]
		}
		if key == "" {
			return nil
		}
		s = rest
		if v, ok := keyValPrefix(key, "replace", val, hasVal); ok {
			f.replace = append(f.replace, v)
			continue
		}
		if v, ok := keyValPrefix(key, "SDES", val, hasVal); ok {
			f.sdes = append(f.sdes, v)
			continue
		}
		if v, ok := keyValPrefix(key, "T38", val, hasVal); ok {
			f.t38 = append(f.t38, v)
			continue
		} else if v, ok := keyValPrefix(key, "T.38", val, hasVal); ok {
			f.t38 = append(f.t38, v)
			continue
		}
		if v, ok := keyValPrefix(key, "rtcp-mux", val, hasVal); ok {
			f.rtcpMux = append(f.rtcpMux, v)
			continue
		}
		if f.codecFlag(key, val, hasVal, "transcode", "codec-transcode", "transcode") ||
			f.codecFlag(key, val, hasVal, "codec-strip", "", "strip") ||
			f.codecFlag(key, val, hasVal, "codec-offer", "", "offer") ||
			f.codecFlag(key, val, hasVal, "codec-mask", "", "mask") ||
			f.codecFlag(key, val, hasVal, "codec-set", "", "set") ||
			f.codecFlag(key, val, hasVal, "codec-except", "", "except") {
			continue
		}
		handled := true
		switch {
		case key == "RTP" && !hasVal:
			f.transport = (f.transport | 0x100) &^ 0x001
		case key == "AVP" && !hasVal:
			f.transport = (f.transport | 0x100) &^ 0x002
		case key == "TOS" && hasVal:
			f.d.add("TOS", atoi(val))
		case key == "SRTP" && !hasVal:
			f.transport |= 0x101
		case key == "AVPF" && !hasVal:
			f.transport |= 0x102
		case key == "DTLS" && !hasVal:
			f.transport |= 0x104
		case key == "to-tag":
			if hasVal {
				f.toTag = val
			}
			f.to = true
		case key == "RTP/AVP" && !hasVal:
			f.transport = 0x100
		case key == "call-id":
			if !hasVal {
				return errors.New("error processing flag `call-id': missing value")
			}
			f.callID = val
		case key == "internal" || key == "external":
			f.direction = append(f.direction, key)
		case key == "RTP/AVPF" && !hasVal:
			f.transport = 0x102
		case key == "RTP/SAVP" && !hasVal:
			f.transport = 0x101
		case key == "from-tag":
			if !hasVal {
				return errors.New("error processing flag `from-tag': missing value")
			}
			f.fromTag, f.directional = val, true
		case key == "RTP/SAVPF" && !hasVal:
			f.transport = 0x103
		case key == "direction":
			f.direction = append(f.direction, val)
		case key == "via-branch":
			if !hasVal {
				return errors.New("error processing flag `via-branch': missing value")
			}
			switch {
			case val == "":
				return errors.New("error processing flag `via-branch' (value ''): invalid value")
			case val[0] == '1' || val[0] == '2':
				f.via = int(val[0] - '0')
			case val == "auto":
				f.via = 3
			case val == "extra":
				f.via = -1
			case val == "next":
				f.via = -2
			case val == "auto-next" || val == "next-auto":
				f.via = -3
			case val == "auto-extra" || val == "extra-auto":
				f.via = -4
			default:
				return errors.New("error processing flag `via-branch' (value '" + val + "'): invalid value")
			}
		case key == "repacketize":
			if !hasVal {
				return errors.New("error processing flag `repacketize': missing value")
			}
			n := atoi(val)
			if n <= 0 {
				return errors.New("error processing flag `repacketize' (value '" + val + "'): invalid value")
			}
			f.d.add("repacketize", n)
		case key == "directional":
			f.directional = true
		case key == "force-answer":
			if *op != opOffer {
				return errors.New("error processing flag `force-answer': cannot force answer in non-offer command")
			}
			*op = opAnswer
		case key == "delete-delay" && hasVal:
			f.d.add("delete delay", atoi(val))
			handled = false // and as a generic entry too (the C switch breaks into generic)
		case key == "UDP/TLS/RTP/SAVP" && !hasVal:
			f.transport = 0x104
		case key == "UDP/TLS/RTP/SAVPF" && !hasVal:
			f.transport = 0x106
		default:
			handled = false
		}
		if handled {
			continue
		}
		if !hasVal {
			f.flags = append(f.flags, key)
		} else {
			f.d.add(key, val)
		}
	}
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// call is rtpp_function_call: the dictionary built and sent, the reply
// decoded; body is the SDP sent (offer, answer).
func (m *Module) call(e *ksr.Env, op, flags string) (map[string]any, error) {
	raw, err := m.callRaw(e, op, flags)
	if err != nil {
		return nil, err
	}
	res, err := decodeDict(raw)
	if err != nil {
		return nil, errors.New("failed to decode bencoded reply from proxy")
	}
	if res["result"] != "ok" {
		return nil, errors.New("proxy didn't return \"ok\" result")
	}
	return res, nil
}

// callRaw is rtpp_function_call_ok returning the reply as received.
func (m *Module) callRaw(e *ksr.Env, op, flags string) ([]byte, error) {
	c, why := rtprelay.CallOf(e)
	if why != "" {
		return nil, errors.New(why)
	}
	f := &ngFlags{d: &dict{}, callID: c.CallID, fromTag: c.FromTag, toTag: c.ToTag}
	f.d.add("supports", []string{"load limit"})
	if op == opOffer || op == opAnswer {
		f.codec = &dict{}
		f.codecLists = map[string]*[]string{}
		body := rtprelay.Body(c.Msg)
		if body == "" {
			return nil, errors.New("can't extract body from the message")
		}
		f.d.add("sdp", body)
	}
	f.to = op != opDelete
	if err := f.parse(flags, &op); err != nil {
		return nil, err
	}
	// the lists other than flags exist for offer and answer only: the
	// flags meant for them are dropped from other commands (as Kamailio's
	// bencode_list_add_str on a NULL list)
	oa := f.codec != nil
	if oa && len(f.direction) > 0 {
		f.d.add("direction", f.direction)
	}
	if len(f.flags) > 0 {
		f.d.add("flags", f.flags)
	}
	if oa && len(f.replace) > 0 {
		f.d.add("replace", f.replace)
	}
	if oa && len(f.codec.e) > 0 {
		f.d.add("codec", f.codec)
	}
	if f.transport&0x100 != 0 {
		f.d.add("transport-protocol", transports[f.transport&7])
	}
	if oa && len(f.rtcpMux) > 0 {
		f.d.add("rtcp-mux", f.rtcpMux)
	}
	if oa && len(f.sdes) > 0 {
		f.d.add("SDES", f.sdes)
	}
	if oa && len(f.t38) > 0 {
		f.d.add("T.38", f.t38)
	}
	f.d.add("call-id", f.callID)
	branch := ""
	if f.via != 0 {
		switch f.via {
		case 3:
			f.via = 1
			if c.Reply {
				f.via = 2
			}
		case -3, -4:
			if c.Reply {
				f.via = 1
			}
		}
		if f.via > 0 {
			branch = rtprelay.ViaBranch(c.Msg, f.via)
		}
		if branch == "" {
			return nil, errors.New("can't get Via branch/extra ID")
		}
		f.d.add("via-branch", branch)
	}
	src, _ := e.PVString("$si")
	fam := "IP4"
	if strings.Contains(src, ":") {
		fam = "IP6"
	}
	f.d.add("received-from", []string{fam, src})
	switch {
	case op == "block DTMF" || op == "block media" || op == "unblock DTMF" || op == "unblock media" ||
		op == "start forwarding" || op == "stop forwarding" || op == "silence media" || op == "unsilence media":
		if f.directional {
			f.d.add("from-tag", f.fromTag)
		}
	case !c.Reply && op != opAnswer || c.Reply && (op == opDelete || op == opAnswer) || f.directional:
		f.d.add("from-tag", f.fromTag)
		if f.to && f.toTag != "" {
			f.d.add("to-tag", f.toTag)
		}
	default:
		if f.toTag == "" {
			return nil, errors.New("No to-tag present")
		}
		f.d.add("from-tag", f.toTag)
		f.d.add("to-tag", f.fromTag)
	}
	f.d.add("command", op)
	cmd := f.d.encode(nil)

	key := f.callID + "\x00" + branch
	set := m.set(e)
	var queried []*rtprelay.Node
	for {
		if len(queried) >= m.queriedLimit {
			return nil, errors.New("queried nodes limit reached")
		}
		n := m.node(e, set, key, f.callID, queried)
		if n == nil {
			return nil, errors.New("no available proxies")
		}
		queried = append(queried, n)
		r, err := m.sets.Send(context.Background(), n, cmd, false)
		if err != nil {
			if st := n.State(); !st.Permanent {
				m.sets.Disable(n)
			}
			m.log.Error("rtpengine: no reply from RTPEngine", "url", n.URL, "command", op, "error", err)
			continue
		}
		res, err := decodeDict(r)
		if err != nil {
			return nil, errors.New("failed to decode bencoded reply from proxy")
		}
		result, _ := res["result"].(string)
		switch result {
		case "":
			return nil, errors.New("no 'result' dictionary entry in response from proxy " + n.URL)
		case "load limit":
			m.log.Info("rtpengine: proxy has reached its load limit - trying next one", "url", n.URL)
			continue
		case "error":
			reason, _ := res["error-reason"].(string)
			if reason == "Parallel session limit reached" || reason == "Ran out of ports" {
				m.log.Warn("rtpengine: proxy "+n.URL+": "+reason, "url", n.URL)
				continue
			}
			return nil, errors.New("proxy replied with error: " + reason)
		}
		m.remember(key, n, op == opDelete)
		if result != "ok" {
			return nil, errors.New("proxy didn't return \"ok\" result")
		}
		return r, nil
	}
}

// node is select_rtpp_node: the relay that took the call when it is in
// the set, else one chosen among the set's enabled relays.
func (m *Module) node(e *ksr.Env, set *rtprelay.Set, key, callID string, queried []*rtprelay.Node) *rtprelay.Node {
	if set == nil {
		return nil
	}
	m.mu.Lock()
	ce, ok := m.calls[key]
	m.mu.Unlock()
	if ok && len(queried) == 0 {
		for _, n := range set.Nodes {
			if n == ce.node {
				if n.Enabled() {
					return n
				}
				break
			}
		}
	}
	return m.sets.Select(context.Background(), set, callID, queried)
}

// remember keeps the call on the relay that answered (rtpengine_hash),
// forgetting it on delete, and entries older than hash_table_tout.
func (m *Module) remember(key string, n *rtprelay.Node, del bool) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if del {
		delete(m.calls, key)
		return
	}
	if _, ok := m.calls[key]; ok {
		return
	}
	if len(m.calls) >= 1024 && len(m.calls)%1024 == 0 {
		for k, v := range m.calls {
			if now.Sub(v.at).Seconds() > float64(m.tableTout) {
				delete(m.calls, k)
			}
		}
	}
	m.calls[key] = callEntry{node: n, at: now}
}

// simple is rtpp_function_call_simple: 1 when rtpengine says ok.
func (m *Module) simple(e *ksr.Env, op, flags string) int {
	if _, err := m.call(e, op, flags); err != nil {
		m.log.Error("rtpengine: "+op+": "+err.Error(), "command", op)
		return -1
	}
	return 1
}

// rtpestat is $rtpestat (rtpengine_rtpstat_wrap): the query's totals,
// "RTP: <bytes> bytes, <packets> packets, <errors> errors; RTCP: ...",
// -1 for a count rtpengine left out; null without totals.
func (m *Module) rtpestat(e *ksr.Env, _ string) lua.LValue {
	res, err := m.call(e, opQuery, "")
	if err != nil {
		m.log.Error("rtpengine: query: "+err.Error(), "command", opQuery)
		return lua.LNil
	}
	tot, _ := res["totals"].(map[string]any)
	rtp, ok1 := tot["RTP"].(map[string]any)
	rtcp, ok2 := tot["RTCP"].(map[string]any)
	if !ok1 || !ok2 {
		return lua.LNil
	}
	n := func(d map[string]any, k string) string {
		if v, ok := d[k].(int64); ok {
			return strconv.FormatInt(v, 10)
		}
		return "-1"
	}
	return lua.LString("RTP: " + n(rtp, "bytes") + " bytes, " + n(rtp, "packets") + " packets, " + n(rtp, "errors") + " errors; " +
		"RTCP: " + n(rtcp, "bytes") + " bytes, " + n(rtcp, "packets") + " packets, " + n(rtcp, "errors") + " errors")
}

// queryV is ki_rtpengine_query_v: the query's reply, as JSON (fmt "j",
// or "jp" formatted), stored in the variable dpv.
func (m *Module) queryV(e *ksr.Env, format, dpv string) int {
	if _, err := e.PVGet(dpv); err != nil {
		m.log.Error("rtpengine: failed to get pv spec", "pv", dpv)
		return -1
	}
	raw, err := m.callRaw(e, opQuery, "")
	if err != nil {
		m.log.Error("rtpengine: query: "+err.Error(), "command", opQuery)
		return -1
	}
	v, _, err := decodeOrdered(raw)
	if err != nil {
		m.log.Error("rtpengine: failed to decode bencoded reply from proxy")
		return -1
	}
	if format == "" || format[0] != 'j' && format[0] != 'J' {
		m.log.Error("rtpengine: invalid format parameter value", "format", format)
		return -1
	}
	pretty := len(format) > 1 && (format[1] == 'p' || format[1] == 'P')
	if !e.SetPVString(dpv, string(toJSON(nil, v, pretty, 0))) {
		m.log.Warn("rtpengine: target pv is not writable", "pv", dpv)
	}
	return 1
}

// offerAnswer is rtpengine_offer_answer: the message's SDP replaced by
// rtpengine's.
func (m *Module) offerAnswer(e *ksr.Env, flags, op string) int {
	res, err := m.call(e, op, flags)
	if err != nil {
		m.log.Error("rtpengine: "+op+": "+err.Error(), "command", op)
		return -1
	}
	sdp, ok := res["sdp"].(string)
	if !ok {
		m.log.Error("rtpengine: failed to extract sdp body from proxy reply")
		return -1
	}
	rtprelay.SetBody(e.Msg.SIP(), sdp)
	return 1
}

// manage is rtpengine_manage.
func (m *Module) manage(e *ksr.Env, flags string) int {
	c, del, ok := rtprelay.Managed(e, m.log, "rtpengine: ")
	if !ok {
		return -1
	}
	if del {
		return m.simple(e, opDelete, flags)
	}
	sdp := hasSDP(e)
	if !c.Reply {
		switch {
		case !sdp:
		case c.Method == "ACK" || c.Method == "PRACK":
			return m.offerAnswer(e, flags, opAnswer)
		case c.Method == "UPDATE":
			return m.offerAnswer(e, flags, opOffer)
		case c.Method == "INVITE":
			if e.Msg.Route == ksr.RouteFailure {
				return m.simple(e, opDelete, flags)
			}
			return m.offerAnswer(e, flags, opOffer)
		}
		return -1
	}
	if c.Status >= 300 {
		return m.simple(e, opDelete, flags)
	}
	if !sdp {
		return -1
	}
	if c.Method == "UPDATE" {
		return m.offerAnswer(e, flags, opAnswer)
	}
	if had, known := rtprelay.TxHadSDP(e); !known || had {
		return m.offerAnswer(e, flags, opAnswer)
	}
	return m.offerAnswer(e, flags, opOffer)
}

// hasSDP is parse_sdp's success: a body of type application/sdp (or
// without Content-Type).
func hasSDP(e *ksr.Env) bool {
	msg := e.Msg.SIP()
	if msg == nil || len(msg.Body()) == 0 {
		return false
	}
	if ct, ok := e.HdrValue("Content-Type"); ok {
		ct, _, _ = strings.Cut(ct, ";")
		return strings.EqualFold(strings.TrimSpace(ct), "application/sdp")
	}
	return true
}
