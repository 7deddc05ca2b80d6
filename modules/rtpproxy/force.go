package rtpproxy

import (
	"context"
	"strconv"
	"strings"

	lua "github.com/yuin/gopher-lua"

	"kemi/ksr"
	"kemi/modules/internal/rtprelay"
)

// The KSR functions, as rtpproxy.c's ki_* wrappers at 5.6.3.

func (m *Module) manage0(e *ksr.Env) int              { return m.doManage(e, "", "", false) }
func (m *Module) manage(e *ksr.Env, flags string) int { return m.doManage(e, flags, "", false) }
func (m *Module) manageIP(e *ksr.Env, flags, ip string) int {
	return m.doManage(e, flags, ip, ip != "")
}

func (m *Module) offer0(e *ksr.Env) int { return m.force(e, "", dstIP(e), true, false) }
func (m *Module) offer(e *ksr.Env, flags string) int {
	return m.force(e, flags, dstIP(e), true, false)
}
func (m *Module) offerIP(e *ksr.Env, flags, ip string) int { return m.force(e, flags, ip, true, true) }
func (m *Module) answer0(e *ksr.Env) int                   { return m.answer(e, "") }
func (m *Module) answer(e *ksr.Env, flags string) int {
	if r := e.Msg.Request(); r != nil && r.Method != "ACK" {
		return -1
	}
	return m.force(e, flags, dstIP(e), false, false)
}
func (m *Module) answerIP(e *ksr.Env, flags, ip string) int {
	return m.force(e, flags, ip, false, true)
}
func (m *Module) destroy0(e *ksr.Env) int              { return m.unforce(e, "") }
func (m *Module) destroy(e *ksr.Env, flags string) int { return m.unforce(e, flags) }

// dstIP is the address the message came in on ($Ri).
func dstIP(e *ksr.Env) string {
	ip, _ := e.PVString("$Ri")
	return ip
}

// hasSDP is parse_sdp's success: a body that holds an m= line.
func hasSDP(e *ksr.Env) bool {
	m := e.Msg.SIP()
	if m == nil || len(m.Body()) == 0 {
		return false
	}
	if ct, ok := e.HdrValue("Content-Type"); ok {
		ct, _, _ = strings.Cut(ct, ";")
		if !strings.EqualFold(strings.TrimSpace(ct), "application/sdp") {
			return false
		}
	}
	return parseSDP(string(m.Body())) != nil
}

// doManage is rtpproxy_manage: offer, answer or delete as the method and
// the reply say.
func (m *Module) doManage(e *ksr.Env, flags, ip string, forced bool) int {
	c, del, ok := rtprelay.Managed(e, m.log, "rtpproxy: ")
	if !ok {
		return -1
	}
	if del {
		return m.unforce(e, flags)
	}
	if !forced {
		ip = dstIP(e)
	}
	sdp := hasSDP(e)
	if !c.Reply {
		switch {
		case !sdp:
		case c.Method == "ACK":
			return m.force(e, flags, ip, false, forced)
		case c.Method == "PRACK", c.Method == "UPDATE":
			return m.force(e, flags, ip, true, forced)
		case c.Method == "INVITE":
			if e.Msg.Route == ksr.RouteFailure {
				return m.unforce(e, flags)
			}
			return m.force(e, flags, ip, true, forced)
		}
		return -1
	}
	if c.Status >= 300 {
		return m.unforce(e, flags)
	}
	if !sdp {
		return -1
	}
	if c.Method == "PRACK" || c.Method == "UPDATE" {
		return m.force(e, flags, ip, false, forced)
	}
	if had, known := rtprelay.TxHadSDP(e); !known || had {
		return m.force(e, flags, ip, false, forced)
	}
	return m.force(e, flags, ip, true, forced)
}

// viaFlag reads the 1/2/3 flags: which Via's branch joins the Call-ID.
func viaFlag(ch byte, reply bool) int {
	switch ch {
	case '1':
		return 1
	case '2':
		return 2
	}
	if reply {
		return 2
	}
	return 1
}

// unforce is unforce_rtp_proxy: "D callid[;branch] fromtag [totag]".
func (m *Module) unforce(e *ksr.Env, flags string) int {
	c, why := rtprelay.CallOf(e)
	if why != "" {
		m.log.Error("rtpproxy: " + why)
		return -1
	}
	via, to := 0, true
	for i := 0; i < len(flags); i++ {
		switch ch := flags[i]; ch {
		case '1', '2', '3':
			via = viaFlag(ch, c.Reply)
		case 't', 'T':
			to = false
		case 'b', 'a', 'A', 'i', 'I', 'e', 'E', 'l', 'L', 'f', 'F', 'r', 'R', 'c', 'C', 'o', 'O', 'x', 'X', 'w', 'W', 'z', 'Z':
		default:
			m.log.Error("rtpproxy: unknown option", "option", string(ch))
			return -1
		}
	}
	id, ok := m.callKey(c, via)
	if !ok {
		return -1
	}
	cmd := "D " + id + " " + c.FromTag
	if to && c.ToTag != "" {
		cmd += " " + c.ToTag
	}
	n := m.sets.Select(context.Background(), m.set(e), c.CallID, nil)
	if n == nil {
		m.log.Error("rtpproxy: no available proxies")
		return -1
	}
	if _, err := m.sets.Send(context.Background(), n, []byte(cmd), true); err != nil {
		m.log.Error("rtpproxy: proxy does not respond, disable it", "url", n.URL, "error", err)
	}
	return 1
}

// startRecording is ki_start_recording: "R callid fromtag [totag]", the
// tags swapped in a reply.
func (m *Module) startRecording(e *ksr.Env) int {
	c, why := rtprelay.CallOf(e)
	if why != "" {
		m.log.Error("rtpproxy: " + why)
		return -1
	}
	n := m.sets.Select(context.Background(), m.set(e), c.CallID, nil)
	if n == nil {
		m.log.Error("rtpproxy: no available proxies")
		return -1
	}
	cmd := "R " + c.CallID + " " + c.FromTag + " " + c.ToTag
	if c.Reply {
		if c.ToTag == "" {
			return -1
		}
		cmd = "R " + c.CallID + " " + c.ToTag + " " + c.FromTag
	} else if c.ToTag == "" {
		cmd = "R " + c.CallID + " " + c.FromTag
	}
	if _, err := m.sets.Send(context.Background(), n, []byte(cmd), true); err != nil {
		m.log.Error("rtpproxy: proxy does not respond, disable it", "url", n.URL, "error", err)
	}
	return 1
}

// rtpstat is $rtpstat (pv_get_rtppstat_f): the relay's answer to
// "Q callid fromtag;1 totag" (the tags swapped in a reply), null when
// there is none.
func (m *Module) rtpstat(e *ksr.Env, _ string) lua.LValue {
	c, why := rtprelay.CallOf(e)
	if why != "" {
		m.log.Error("rtpproxy: " + why)
		return lua.LNil
	}
	cmd := "Q " + c.CallID + " " + c.FromTag + ";1 " + c.ToTag
	if c.Reply {
		if c.ToTag == "" {
			return lua.LNil
		}
		cmd = "Q " + c.CallID + " " + c.ToTag + ";1 " + c.FromTag
	} else if c.ToTag == "" {
		cmd = "Q " + c.CallID + " " + c.FromTag
	}
	n := m.sets.Select(context.Background(), m.set(e), c.CallID, nil)
	if n == nil {
		m.log.Error("rtpproxy: no available proxies")
		return lua.LNil
	}
	r, err := m.sets.Send(context.Background(), n, []byte(cmd), true)
	if err != nil {
		m.log.Error("rtpproxy: proxy does not respond, disable it", "url", n.URL, "error", err)
		return lua.LNil
	}
	return lua.LString(r)
}

// force is force_rtp_proxy: per m= line a U (offer) or L (answer)
// command, then the SDP rewritten with the port and address the relay
// gave. ip is the address put in the SDP when the relay gives none, or
// always when forced.
func (m *Module) force(e *ksr.Env, flags, ip string, offer, forced bool) int {
	opts := []byte{'?'}
	var rep []byte
	var flookup, force, real, commip, autobridge bool
	via := 0
	c, why := rtprelay.CallOf(e)
	if c.Msg == nil {
		m.log.Error("rtpproxy: " + why)
		return -1
	}
	for i := 0; i < len(flags); i++ {
		switch ch := flags[i]; ch {
		case '1', '2', '3':
			via = viaFlag(ch, c.Reply)
		case 'a', 'A':
			opts = append(opts, 'A')
			real = true
		case 'b':
		case 'i', 'I':
			opts = append(opts, 'I')
		case 'e', 'E':
			opts = append(opts, 'E')
		case 'l', 'L':
			if !offer {
				return -1
			}
			flookup = true
		case 'f', 'F':
			force = true
		case 'r', 'R':
			real = true
		case 'c', 'C':
			commip = true
		case 'o', 'O':
		case 'x', 'X':
			autobridge = true
		case 'w', 'W':
			opts = append(opts, 'S')
		case 'z', 'Z':
			rep = append(rep, 'Z')
			for i+1 < len(flags) && flags[i+1] >= '0' && flags[i+1] <= '9' {
				i++
				rep = append(rep, flags[i])
			}
		case 't', 'T':
		default:
			m.log.Error("rtpproxy: unknown option", "option", string(ch))
			return -1
		}
	}
	create := offer
	body := rtprelay.Body(c.Msg)
	if strings.TrimRight(body, "\r\n") == "" {
		m.log.Error("rtpproxy: can't extract body from the message")
		return -1
	}
	if why != "" {
		m.log.Error("rtpproxy: " + why)
		return -1
	}
	id, ok := m.callKey(c, via)
	if !ok {
		return -1
	}
	from, to := c.FromTag, c.ToTag
	if flookup {
		if to == "" {
			return -1
		}
		if !c.Reply {
			from, to = to, from
		}
		create = false
	} else if c.Reply == offer {
		if to == "" {
			return -1
		}
		from, to = to, from
	}
	proxied := false
	if m.nortpproxy != "" {
		trimmed := strings.TrimRight(body, "\r\n")
		for at := 0; ; {
			k := strings.Index(trimmed[at:], m.nortpproxy)
			if k < 0 {
				break
			}
			if p := at + k; p > 0 && (trimmed[p-1] == '\n' || trimmed[p-1] == '\r') {
				proxied = true
				break
			}
			at += k + len(m.nortpproxy)
		}
	}
	if proxied && !force {
		return -2
	}
	sessions := parseSDP(body)
	if sessions == nil {
		m.log.Error("rtpproxy: sdp w/o streams")
		return -1
	}
	if create {
		opts[0] = 'U'
	} else {
		opts[0] = 'L'
	}
	srcIP, _ := e.PVString("$si")
	srcV6 := strings.Contains(srcIP, ":")
	set := m.set(e)
	var es edits
	medianum := 0
	for si := range sessions {
		sess := &sessions[si]
		cAltered, oDone := false, false
		for _, st := range sess.streams {
			a := sess.c
			if st.hasC {
				a = st.c
			}
			hasAddr := st.hasC || sess.hasC
			oldIP := ""
			if hasAddr {
				oldIP = body[a.ip.off : a.ip.off+a.ip.n]
			}
			oldPort := body[st.port.off : st.port.off+st.port.n]
			medianum++
			newIP, newV6 := srcIP, srcV6
			if real {
				newIP, newV6 = oldIP, a.v6
			}
			if a.v6 {
				if autobridge {
					opts = append(opts, 'E', 'I')
					autobridge = false
				}
				opts = append(opts, '6')
			} else if autobridge {
				opts = append(opts, 'I', 'E')
				autobridge = false
			}
			num := strconv.Itoa(medianum)
			var reply string
			for {
				n := m.sets.Select(context.Background(), set, c.CallID, nil)
				if n == nil {
					m.log.Error("rtpproxy: no available proxies")
					return -3
				}
				var cmd strings.Builder
				cmd.Write(opts)
				if len(rep) > 0 && n.Cap(repVersion) {
					cmd.Write(rep)
				} else if len(rep) > 0 {
					m.log.Warn("rtpproxy: re-packetization is requested but is not supported by the selected RTP proxy node")
				}
				if strings.Contains(st.transport, "RTP/") && st.payloads != "" && n.Cap(ptlVersion) {
					cmd.WriteByte('c')
					cmd.WriteString(strings.Join(strings.Fields(st.payloads), ","))
				}
				cmd.WriteString(" " + id + " " + newIP + " " + oldPort + " " + from + ";" + num)
				if to != "" {
					cmd.WriteString(" " + to + ";" + num)
					if opts[0] == 'U' && m.timeoutSock != "" {
						cmd.WriteString(" " + m.timeoutSock)
					}
				}
				r, err := m.sets.Send(context.Background(), n, []byte(cmd.String()), true)
				if err == nil {
					reply = string(r)
					break
				}
				m.log.Error("rtpproxy: proxy does not respond, disable it", "url", n.URL, "error", err)
			}
			argv := strings.Fields(reply)
			if len(argv) < 1 {
				m.log.Error("rtpproxy: no reply from rtp proxy")
				return -1
			}
			port := atoi(argv[0])
			if port <= 0 || port > 65535 {
				if port != 0 || !flookup {
					m.log.Error("rtpproxy: incorrect port in reply from rtp proxy", "port", port)
				}
				return -1
			}
			switch {
			case len(argv) == 2:
				newV6 = false
			case len(argv) >= 3:
				newV6 = argv[2] != "" && argv[2][0] == '6'
			}
			switch {
			case hasAddr && isNullAddr(oldIP, a.v6):
				newIP = "0.0.0.0"
				if newV6 {
					newIP = "::"
				}
			case forced:
				newIP = ip
			case len(argv) < 2:
				newIP = ip
			default:
				newIP = argv[1]
			}
			newPort := strconv.Itoa(port)
			if oldPort != "0" && oldPort != newPort {
				es.add(st.port, newPort)
			}
			if st.rtcp.ok() {
				if r := strconv.Itoa(port + 1); body[st.rtcp.off:st.rtcp.off+st.rtcp.n] != r {
					es.add(st.rtcp, r)
				}
			}
			if st.hasC || (sess.hasC && !cAltered) {
				alterIP(&es, body, a, newIP, newV6)
				if !st.hasC {
					cAltered = true
				}
			}
			if commip && sess.hasC && !cAltered {
				alterIP(&es, body, sess.c, newIP, newV6)
				cAltered = true
			}
			if sess.hasO && !oDone {
				alterIP(&es, body, sess.o, newIP, newV6)
				oDone = true
			}
		}
	}
	if !proxied && m.nortpproxy != "" {
		// after the body without its trailing CR/LF (extract_body)
		es.add(span{len(strings.TrimRight(body, "\r\n")), 0}, "\r\n"+m.nortpproxy)
	}
	rtprelay.SetBody(c.Msg, es.apply(body))
	return 1
}

// callKey is the Call-ID a command names the session by, with the top Via
// branch appended for the via flags (1-3): false when there is no branch.
func (m *Module) callKey(c rtprelay.Call, via int) (string, bool) {
	if via == 0 {
		return c.CallID, true
	}
	b := rtprelay.ViaBranch(c.Msg, via)
	if b == "" {
		m.log.Error("rtpproxy: can't get Via branch")
		return "", false
	}
	return c.CallID + ";" + b, true
}
