package sipnet

import (
	"net"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// encodeMessage writes msg into buf byte for byte as sipgo's StringWrite
// does, without its allocations: sipgo formats ports and numbers with
// strconv.Itoa, copies the body into a string, and tells IPv6 hosts apart
// with net.ParseIP (an error value for every host name). Header types it
// does not know are written with their Name and Value, which is what their
// StringWrite writes. encode_test.go compares it with sipgo's.
func encodeMessage(buf *replyBuf, msg sip.Message) {
	switch m := msg.(type) {
	case *sip.Request:
		if m.CompactHeaders {
			m.StringWrite(buf)
			return
		}
		buf.WriteString(string(m.Method))
		buf.WriteByte(' ')
		writeURI(buf, &m.Recipient)
		buf.WriteByte(' ')
		buf.WriteString(m.SipVersion)
		buf.WriteString("\r\n")
		writeHeaders(buf, m.Headers())
		buf.WriteString("\r\n")
		buf.Write(m.Body())
	case *sip.Response:
		if m.CompactHeaders {
			m.StringWrite(buf)
			return
		}
		buf.WriteString(m.SipVersion)
		buf.WriteByte(' ')
		writeInt(buf, int(m.StatusCode))
		buf.WriteByte(' ')
		buf.WriteString(m.Reason)
		buf.WriteString("\r\n")
		writeHeaders(buf, m.Headers())
		buf.WriteString("\r\n")
		buf.Write(m.Body())
	default:
		msg.StringWrite(buf)
	}
}

func writeInt(buf *replyBuf, n int) {
	buf.b = strconv.AppendInt(buf.b, int64(n), 10)
}

// writeHeaders is sipgo's headers.StringWrite (non-compact).
func writeHeaders(buf *replyBuf, hs []sip.Header) {
	for i, h := range hs {
		if i > 0 {
			buf.WriteString("\r\n")
		}
		buf.WriteString(h.Name())
		buf.WriteString(": ")
		switch x := h.(type) {
		case *sip.ViaHeader:
			writeViaSentBy(buf, x)
			writeHeaderParams(buf, x.Params)
		case *sip.FromHeader:
			writeNameAddr(buf, x.DisplayName, &x.Address, x.Params)
		case *sip.ToHeader:
			writeNameAddr(buf, x.DisplayName, &x.Address, x.Params)
		case *sip.ContactHeader:
			if x.Address.Wildcard {
				buf.WriteByte('*')
				break
			}
			writeNameAddr(buf, x.DisplayName, &x.Address, x.Params)
		case *sip.RouteHeader:
			buf.WriteByte('<')
			writeURI(buf, &x.Address)
			buf.WriteByte('>')
		case *sip.RecordRouteHeader:
			buf.WriteByte('<')
			writeURI(buf, &x.Address)
			buf.WriteByte('>')
		case *sip.CSeqHeader:
			writeInt(buf, int(x.SeqNo))
			buf.WriteByte(' ')
			buf.WriteString(string(x.MethodName))
		case *sip.CallIDHeader:
			buf.WriteString(string(*x))
		case *sip.MaxForwardsHeader:
			writeInt(buf, int(*x))
		case *sip.ContentLengthHeader:
			writeInt(buf, int(*x))
		default:
			buf.WriteString(h.Value())
		}
	}
	buf.WriteString("\r\n")
}

// writeViaSentBy is a Via's protocol and sent-by, as sipgo writes them.
func writeViaSentBy(buf *replyBuf, v *sip.ViaHeader) {
	buf.WriteString(v.ProtocolName)
	buf.WriteByte('/')
	buf.WriteString(v.ProtocolVersion)
	buf.WriteByte('/')
	buf.WriteString(v.Transport)
	buf.WriteByte(' ')
	writeHostPort(buf, v.Host, v.Port)
}

// writeNameAddr is the value of sipgo's From, To and Contact headers.
func writeNameAddr(buf *replyBuf, display string, u *sip.Uri, params sip.HeaderParams) {
	if display != "" {
		buf.WriteByte('"')
		buf.WriteString(display)
		buf.WriteString(`" `)
	}
	buf.WriteByte('<')
	writeURI(buf, u)
	buf.WriteByte('>')
	writeHeaderParams(buf, params)
}

// writeHeaderParams writes ";" and params, when there are any.
func writeHeaderParams(buf *replyBuf, params sip.HeaderParams) {
	if len(params) > 0 {
		buf.WriteByte(';')
		writeParams(buf, params, ';')
	}
}

// writeParams is sipgo's HeaderParams.ToStringWrite.
func writeParams(buf *replyBuf, params sip.HeaderParams, sep byte) {
	for i, kv := range params {
		if i > 0 {
			buf.WriteByte(sep)
		}
		buf.WriteString(kv.K)
		switch {
		case kv.V == "":
		case strings.ContainsAny(kv.V, " \t"):
			buf.WriteString(`="`)
			buf.WriteString(kv.V)
			buf.WriteByte('"')
		default:
			buf.WriteByte('=')
			buf.WriteString(kv.V)
		}
	}
}

// writeURI is sipgo's Uri.StringWrite.
func writeURI(buf *replyBuf, u *sip.Uri) {
	if u.Scheme == "" {
		buf.WriteString("sip")
	} else {
		buf.WriteString(u.Scheme)
	}
	buf.WriteByte(':')
	if raw := u.Raw(); raw != "" {
		buf.WriteString(raw)
		return
	}
	if u.HierarhicalSlashes {
		buf.WriteString("//")
	}
	if u.User != "" {
		buf.WriteString(u.User)
		if u.Password != "" {
			buf.WriteByte(':')
			buf.WriteString(u.Password)
		}
		buf.WriteByte('@')
	}
	writeHostPort(buf, u.Host, u.Port)
	if len(u.UriParams) > 0 {
		buf.WriteByte(';')
		writeParams(buf, u.UriParams, ';')
	}
	if len(u.Headers) > 0 {
		buf.WriteByte('?')
		writeParams(buf, u.Headers, '&')
	}
}

// writeHostPort is a host as sipgo's uriIP writes it (an IPv6 address in
// brackets), then ":port" when port is set, as in its Via and URIs.
func writeHostPort(buf *replyBuf, host string, port int) {
	if isIPv6Host(host) {
		buf.WriteByte('[')
		buf.WriteString(host)
		buf.WriteByte(']')
	} else {
		buf.WriteString(host)
	}
	if port > 0 {
		buf.WriteByte(':')
		writeInt(buf, port)
	}
}

// isIPv6Host is sipgo's isIPV6, which ranges over the host's byte indexes
// (not its bytes): a host of more than 46 bytes is never IPv6 to it. A
// host without a colon is an IPv4 address or a name: no IPv6 either, and
// no net.ParseIP to find out.
func isIPv6Host(host string) bool {
	if len(host) > 46 || strings.IndexByte(host, ':') < 0 {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.To4() == nil
}
